package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// validation is the --format json output of validate.
type validation struct {
	File     string    `json:"file"`
	Valid    bool      `json:"valid"`
	Topology string    `json:"topology,omitempty"`
	Hosts    int       `json:"hosts"`
	Networks int       `json:"networks"`
	Problems []problem `json:"problems"`
}

// problem is one thing wrong with the file: where (YAML path and line,
// when known) and what.
type problem struct {
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

func newValidateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a topology file and print every problem",
		Long: `Check a topology file and print every problem, each with its YAML path and
line. Exit status 0 when the file is valid, 1 when it is not. With --format json
it prints {"file", "valid", "topology", "hosts", "networks", "problems": [{"path",
"line", "message"}]} in both cases.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.loadTopology()
			if g.format != "json" {
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (topology %s: %d hosts, %d networks)\n",
					g.file, t.Name, len(t.Hosts), len(t.Networks))
				return nil
			}
			v := validationOf(g.file, t, err)
			if err := writeJSON(cmd.OutOrStdout(), v); err != nil {
				return err
			}
			if !v.Valid {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: invalid topology (%d problems)", g.file, len(v.Problems))}
			}
			return nil
		},
	}
}

// validationOf is the JSON form of loading file: t, or the error that
// loading it returned (each problem apart when the file was read but is
// invalid; the error as one problem when it could not be read).
func validationOf(file string, t *topology.Topology, err error) validation {
	v := validation{File: file, Valid: err == nil, Problems: []problem{}}
	var te *topology.Errors
	switch {
	case err == nil:
		v.Topology, v.Hosts, v.Networks = t.Name, len(t.Hosts), len(t.Networks)
	case errors.As(err, &te):
		for _, p := range te.List {
			v.Problems = append(v.Problems, problem{Path: p.Path, Line: p.Line, Message: p.Msg})
		}
	default:
		v.Problems = append(v.Problems, problem{Message: err.Error()})
	}
	return v
}

package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
)

func newDiffFlowsCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "diff-flows -f FILE [--host H]",
		Short: "Compare compiled with installed flows (exit 2 when they differ)",
		Long: `Compare the flows ovs-vxctl compiles for this host with the flows it owns on
br-int and br-tun. Lines only installed start with '-', lines only compiled with
'+'. Exit status: 0 same, 2 different, 1 error (as ovs-ofctl diff-flows).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, ctx, done, err := g.hostOptions(false)
			if err != nil {
				return err
			}
			defer done()
			res, err := agent.DiffFlows(ctx, o)
			if err != nil {
				return fmt.Errorf("comparing flows on host %s: %w", o.Host.Name, err)
			}
			differ := false
			w := cmd.OutOrStdout()
			jsonOut := map[string]map[string][]string{}
			for _, bf := range res {
				if bf.Diff.Empty() {
					continue
				}
				differ = true
				jsonOut[bf.Bridge] = map[string][]string{"add": texts(bf.Diff.Add), "modify": texts(bf.Diff.Modify), "delete": texts(bf.Diff.Delete)}
				if g.format == "table" {
					fmt.Fprintf(w, "%s:\n", bf.Bridge)
					for _, line := range strings.Split(strings.TrimRight(bf.Diff.String(), "\n"), "\n") {
						fmt.Fprintln(w, line)
					}
				}
			}
			if g.format == "json" {
				if err := writeJSON(w, map[string]any{"host": o.Host.Name, "differ": differ, "bridges": jsonOut}); err != nil {
					return err
				}
			}
			if differ {
				return &exitError{code: 2}
			}
			return nil
		},
	}
}

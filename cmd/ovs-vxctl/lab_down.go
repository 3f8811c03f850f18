package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// newLabDownCmd is `lab down`: remove everything lab up made. A lab must go
// even when its topology file no longer loads, so down falls back to what
// lab up recorded in the lab's state directory (lab.Record).
func newLabDownCmd(l *labCmd) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "down {-f FILE | --name NAME | --lab-dir DIR}",
		Short: "Remove the lab: namespaces, OVS instances, links, state",
		Long: `Remove the lab: namespaces, OVS instances, links, state.

The lab is named by its topology file (-f), or by what lab up recorded in its
state directory: --name NAME (the directory /run/ovs-vxctl/lab/NAME, or
--lab-dir), or --lab-dir DIR alone. When -f FILE no longer loads (edited,
broken or deleted), the lab brought up from FILE is found by its record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := l.context(cmd)
			defer cancel()
			start := time.Now()
			which, err := l.down(ctx, name, cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("lab down: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s: down in %s\n", which, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the lab's topology name, when no topology file is at hand")
	return cmd
}

// down removes the lab named by -f, --name or --lab-dir and returns its
// name. A note on w says when it used the lab's record instead of -f.
func (l *labCmd) down(ctx context.Context, name string, w io.Writer) (string, error) {
	log := l.g.logger()
	if l.g.file == "" || name != "" {
		r, err := l.recorded(name)
		if err != nil {
			return "", err
		}
		return r.Topology, lab.DownRecorded(ctx, r.Topology, r.Dir, log)
	}
	o, err := l.options()
	if err == nil {
		return o.Topology.Name, lab.Down(ctx, o)
	}
	file, aerr := filepath.Abs(l.g.file)
	if aerr != nil {
		return "", err
	}
	var r *lab.Record
	var ferr error
	if l.dir != "" {
		r, ferr = lab.ReadRecord(l.dir)
	} else {
		r, ferr = lab.FindRecord("", file)
	}
	if ferr != nil {
		if errors.Is(ferr, lab.ErrNoRecord) {
			return "", fmt.Errorf("%w; and no lab brought up from %s is recorded: name it with --name NAME (or --lab-dir DIR)", err, file)
		}
		return "", fmt.Errorf("%w; and the lab's record: %w", err, ferr)
	}
	fmt.Fprintf(w, "lab down: %v\nlab down: removing lab %s as recorded in %s (topology copy: %s)\n",
		err, r.Topology, r.Dir, filepath.Join(r.Dir, lab.TopologyCopy))
	return r.Topology, lab.DownRecorded(ctx, r.Topology, r.Dir, log)
}

// recorded finds the lab of --name and --lab-dir without a topology file.
func (l *labCmd) recorded(name string) (*lab.Record, error) {
	switch {
	case name != "" && l.dir != "":
		return &lab.Record{Topology: name, Dir: l.dir}, nil
	case name != "":
		return &lab.Record{Topology: name, Dir: filepath.Join(lab.DefaultRoot, name)}, nil
	case l.dir != "":
		r, err := lab.ReadRecord(l.dir)
		if err != nil {
			return nil, fmt.Errorf("--lab-dir %s: %w (a lab brought up before records were kept: add --name NAME)", l.dir, err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("no lab named: give -f FILE, --name NAME or --lab-dir DIR")
}

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// newLabDownCmd is `lab down`: remove everything lab up made.
func newLabDownCmd(l *labCmd) *cobra.Command {
	return &cobra.Command{
		Use:   "down -f FILE",
		Short: "Remove the lab: namespaces, OVS instances, links, state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := l.options()
			if err != nil {
				return err
			}
			ctx, cancel := l.context(cmd)
			defer cancel()
			start := time.Now()
			if err := lab.Down(ctx, o); err != nil {
				return fmt.Errorf("lab down: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s: down in %s\n", o.Topology.Name, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

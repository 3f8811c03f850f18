package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// newLabUpCmd is `lab up`: build the topology on this machine.
func newLabUpCmd(l *labCmd) *cobra.Command {
	var agents bool
	cmd := &cobra.Command{
		Use:   "up -f FILE",
		Short: "Build the topology on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := l.options()
			if err != nil {
				return err
			}
			o.Agents = agents
			ctx, cancel := l.context(cmd)
			defer cancel()
			rep, err := lab.Up(ctx, o)
			if err != nil {
				return fmt.Errorf("lab up: %w", err)
			}
			if l.g.format == "json" {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&agents, "agents", false,
		"after the apply, run `ovs-vxctl agent` in every host (logs in the lab directory, <host>/"+lab.AgentLog+"), so that changes of the file and plugged iface_id ports are applied at once")
	return cmd
}

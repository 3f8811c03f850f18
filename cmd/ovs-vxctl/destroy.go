package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
)

func newDestroyCmd(g *globalOptions) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "destroy -f FILE [--host H]",
		Short: "Remove everything apply created on this host, and nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := g.loadTopology()
			if err != nil {
				return err
			}
			h, err := g.managedHost(t)
			if err != nil {
				return err
			}
			log := g.logger()
			defer log.Sync()
			ctx, cancel := g.context()
			defer cancel()
			rep, err := agent.Destroy(ctx, agent.Options{Topology: t, Host: h, DB: g.dbEndpoint(), RunDir: rundir(), DryRun: dryRun, Log: log})
			if err != nil {
				return fmt.Errorf("destroying topology %s on host %s: %w", t.Name, h.Name, err)
			}
			return printReport(cmd.OutOrStdout(), g.format, h.Name, dryRun, rep)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be removed; remove nothing")
	return cmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

func newDestroyCmd(g *globalOptions) *cobra.Command {
	var dryRun bool
	var hwTLS *ovsdb.SSLFiles // set below, once cmd exists
	cmd := &cobra.Command{
		Use:   "destroy -f FILE [--host H]",
		Short: "Remove everything apply created on this host, and nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if handled, err := g.hardwareVTEP(cmd, hwDestroy, dryRun, hwTLS); handled {
				return err
			}
			o, ctx, done, err := g.hostOptions(dryRun)
			if err != nil {
				return err
			}
			defer done()
			rep, err := agent.Destroy(ctx, o)
			if err != nil {
				return fmt.Errorf("destroying topology %s on host %s: %w", o.Topology.Name, o.Host.Name, err)
			}
			return printReport(cmd.OutOrStdout(), g.format, o.Host.Name, dryRun, rep)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be removed; remove nothing")
	hwTLS = hardwareTLSFlags(cmd)
	return cmd
}

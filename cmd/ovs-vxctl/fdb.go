package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
)

func newFdbCmd(g *globalOptions) *cobra.Command {
	var vni uint32
	cmd := &cobra.Command{
		Use:   "fdb [-f FILE] [--host H] [--vni N]",
		Short: "Print br-tun's unicast table: MAC, VNI, remote VTEP, learned or installed, age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := g.readOptions()
			if err != nil {
				return err
			}
			defer o.Log.Sync()
			ctx, cancel := g.context()
			defer cancel()
			entries, err := agent.FDB(ctx, o, vni)
			if err != nil {
				return fmt.Errorf("fdb: %w", err)
			}
			if g.format == "json" {
				if entries == nil {
					entries = []agent.FDBEntry{}
				}
				return writeJSON(cmd.OutOrStdout(), entries)
			}
			w := cmd.OutOrStdout()
			// AGE is the time since the entry was first installed or learned
			// (OpenFlow 1.3 flow stats do not say when learn() last refreshed
			// it); TIMEOUT is its hard timeout, "-" for none.
			fmt.Fprintf(w, "%-17s %-8s %-4s %-12s %-16s %-6s %-9s %-6s %s\n", "MAC", "VNI", "VLAN", "PEER", "REMOTE VTEP", "OFPORT", "ORIGIN", "AGE", "TIMEOUT")
			for _, e := range entries {
				timeout := "-"
				if e.HardTimeout != 0 {
					timeout = fmt.Sprintf("%ds", e.HardTimeout)
				}
				fmt.Fprintf(w, "%-17s %-8d %-4d %-12s %-16s %-6d %-9s %-6s %s\n", e.MAC, e.VNI, e.LocalVLAN, e.Peer, e.RemoteVTEP, e.OFPort, e.Origin,
					fmt.Sprintf("%ds", e.AgeSeconds), timeout)
			}
			return nil
		},
	}
	cmd.Flags().Uint32Var(&vni, "vni", 0, "only this VNI")
	return cmd
}

package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func newShowCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show [-f FILE] [--host H]",
		Short: "Show bridges, peers and networks that ovs-vxctl configured on this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := g.readOptions()
			if err != nil {
				return err
			}
			defer o.Log.Sync()
			ctx, cancel := g.context()
			defer cancel()
			st, err := agent.Show(ctx, o)
			if err != nil {
				return fmt.Errorf("show: %w", err)
			}
			if g.format == "json" {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "topology %s, host %s\n\nBRIDGES\n", st.Topology, st.Host)
			fmt.Fprintf(w, "  %-8s %-9s %-18s %-9s %s\n", "NAME", "DATAPATH", "DATAPATH-ID", "FAIL", "CONTROLLER")
			for _, b := range st.Bridges {
				var ctl []string
				for _, c := range b.Controllers {
					s := c.Target + " (not connected)"
					if c.Connected {
						s = c.Target + " (connected)"
					}
					ctl = append(ctl, s)
				}
				fmt.Fprintf(w, "  %-8s %-9s %-18s %-9s %s\n", b.Name, b.DatapathType, b.DatapathID, b.FailMode, strings.Join(ctl, ", "))
			}
			fmt.Fprintf(w, "\nPEERS\n  %-12s %-15s %-16s %-8s %-6s %s\n", "PEER", "TUNNEL PORT", "REMOTE VTEP", "DST_PORT", "OFPORT", "STATE")
			for _, p := range st.Peers {
				fmt.Fprintf(w, "  %-12s %-15s %-16s %-8d %-6d %s\n", p.Peer, p.Port, p.RemoteIP, p.DstPort, p.OFPort, p.State)
			}
			fmt.Fprintf(w, "\nNETWORKS\n  %-16s %-9s %-10s %s\n", "NAME", "VNI", "LOCAL VLAN", "PORTS (type, ofport, state)")
			for _, n := range st.Networks {
				var ports []string
				for _, p := range n.Ports {
					ports = append(ports, fmt.Sprintf("%s (%s, %d, %s)", p.Name, p.Type, p.OFPort, p.State))
				}
				fmt.Fprintf(w, "  %-16s %-9d %-10d %s\n", n.Name, n.VNI, n.LocalVLAN, strings.Join(ports, ", "))
			}
			return nil
		},
	}
}

// readOptions builds agent options for read-only verbs: -f and --host are
// optional there, the owner marks in OVSDB say which topology and host this is.
func (g *globalOptions) readOptions() (agent.Options, error) {
	o := agent.Options{DB: g.dbEndpoint(), RunDir: rundir(), Log: g.logger()}
	if g.file == "" {
		if g.host != "" {
			o.Host = &topology.Host{Name: g.host}
		}
		return o, nil
	}
	t, err := g.loadTopology()
	if err != nil {
		return o, err
	}
	h, err := g.managedHost(t)
	if err != nil {
		return o, err
	}
	o.Topology, o.Host = t, h
	return o, nil
}

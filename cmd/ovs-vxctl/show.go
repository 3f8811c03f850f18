package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func newShowCmd(g *globalOptions) *cobra.Command {
	var hwTLS *ovsdb.SSLFiles // set below, once cmd exists
	cmd := &cobra.Command{
		Use:   "show [-f FILE] [--host H]",
		Short: "Show bridges, peers and networks that ovs-vxctl configured on this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if handled, err := g.hardwareVTEP(cmd, hwShow, false, hwTLS); handled {
				return err
			}
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
			return printShow(cmd.OutOrStdout(), st)
		},
	}
	hwTLS = hardwareTLSFlags(cmd)
	return cmd
}

// printShow prints show's table form: three sections, each in aligned columns.
func printShow(out io.Writer, st *ovsdb.State) error {
	w := newTable(out)
	fmt.Fprintf(w, "topology %s, host %s\n\nBRIDGES\n", st.Topology, st.Host)
	fmt.Fprintf(w, "  NAME\tDATAPATH\tDATAPATH-ID\tFAIL\tCONTROLLER\n")
	for _, b := range st.Bridges {
		var ctl []string
		for _, c := range b.Controllers {
			s := c.Target + " (not connected)"
			if c.Connected {
				s = c.Target + " (connected)"
			}
			ctl = append(ctl, s)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", b.Name, b.DatapathType, orDash(b.DatapathID), orDash(b.FailMode), orDash(strings.Join(ctl, ", ")))
	}
	fmt.Fprintf(w, "\nPEERS\n  PEER\tTUNNEL PORT\tREMOTE VTEP\tDST_PORT\tOFPORT\tSTATE\n")
	for _, p := range st.Peers {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%d\t%s\n", p.Peer, p.Port, p.RemoteIP, p.DstPort, p.OFPort, p.State)
	}
	fmt.Fprintf(w, "\nNETWORKS\n  NAME\tVNI\tLOCAL VLAN\tMTU\tPORTS (type, ofport, state)\n")
	for _, n := range st.Networks {
		var ports []string
		for _, p := range n.Ports {
			typ := p.Type
			if p.Interface != "" {
				typ += " on " + p.Interface // bound by iface_id
			}
			ports = append(ports, fmt.Sprintf("%s (%s, %d, %s)", p.Name, typ, p.OFPort, p.State))
		}
		mtu := "-" // apply did not know it
		if n.MTU > 0 {
			mtu = strconv.Itoa(n.MTU)
		}
		fmt.Fprintf(w, "  %s\t%d\t%d\t%s\t%s\n", n.Name, n.VNI, n.LocalVLAN, mtu, orDash(strings.Join(ports, ", ")))
	}
	return w.Flush()
}

// orDash is s, or "-" for nothing: an empty cell would leave its row
// ending in the padding of the cell before.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readOptions builds agent options for read-only verbs: -f and --host are
// optional there, the owner marks in OVSDB say which topology and host this is.
func (g *globalOptions) readOptions() (agent.Options, error) {
	o := agent.Options{DB: g.dbEndpoint(), DBTLS: g.dbTLS(), RunDir: rundir(), Log: g.logger()}
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

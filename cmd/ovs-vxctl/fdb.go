package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/agent"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
)

func newFdbCmd(g *globalOptions) *cobra.Command {
	var vni uint32
	var hwTLS *ovsdb.SSLFiles // set below, once cmd exists
	cmd := &cobra.Command{
		Use:   "fdb [-f FILE] [--host H] [--vni N]",
		Short: "Print the MACs this host knows: br-tun's unicast table (remote VTEP, learned or installed, IPs) and its local MACs",
		Long: `Print the MACs this host knows: br-tun's unicast table (remote VTEP, learned
or installed, IPs) and its local MACs. For a hardware VTEP host (hardware_vtep
in the file), what its switch learned (Ucast_Macs_Local, origin "learned"), what
it was told (Ucast_Macs_Remote, origin "installed") and the flood list of each
logical switch (Mcast_Macs_Remote unknown-dst, origin "flood"); an ssl:
hardware_vtep.ovsdb needs --private-key, --certificate and --ca-cert, as apply.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ho, ok, err := g.hardwareOptions(hwTLS); ok {
				if err != nil {
					return fmt.Errorf("fdb: %w", err)
				}
				return g.runHardwareFDB(cmd, ho, vni)
			}
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
			return printFDB(cmd.OutOrStdout(), entries)
		},
	}
	cmd.Flags().Uint32Var(&vni, "vni", 0, "only this VNI")
	hwTLS = hardwareTLSFlags(cmd)
	return cmd
}

// printFDB prints fdb's table form in aligned columns. AGE is the time
// since the entry was first installed or learned (OpenFlow 1.3 flow stats
// do not say when learn() last refreshed it), for a local MAC the time
// since br-int last saw it; TIMEOUT is its hard timeout, "-" for none. A
// local MAC's PEER is the br-int port it is behind; IPS are the addresses
// the controller answers ARP and neighbour discovery for.
func printFDB(out io.Writer, entries []agent.FDBEntry) error {
	w := newTable(out)
	fmt.Fprintln(w, "MAC\tVNI\tVLAN\tPEER\tREMOTE VTEP\tOFPORT\tORIGIN\tAGE\tTIMEOUT\tIPS")
	for _, e := range entries {
		timeout := "-"
		if e.HardTimeout != 0 {
			timeout = fmt.Sprintf("%ds", e.HardTimeout)
		}
		peer, vtep := e.Peer, e.RemoteVTEP
		if e.Origin == "local" {
			peer, vtep = "local", "-"
			if e.Port != "" {
				peer = "local:" + e.Port
			}
		}
		ips := strings.Join(e.IPs, ",")
		if ips == "" {
			ips = "-"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%d\t%s\t%ds\t%s\t%s\n", e.MAC, e.VNI, e.LocalVLAN, peer, vtep, e.OFPort, e.Origin,
			e.AgeSeconds, timeout, ips)
	}
	return w.Flush()
}

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// hardwareOptions returns the hwvtep options of -f and --host when that
// host is a hardware VTEP; ok is false for any other host or without -f,
// and the caller goes on with the OVS host path (which reports a bad file
// or host). fdb and diff-flows connect without TLS files: an ssl: database
// target fails with the error that names the flags apply takes.
func (g *globalOptions) hardwareOptions() (o hwvtep.Options, ok bool) {
	if g.file == "" {
		return o, false
	}
	t, err := g.loadTopology()
	if err != nil {
		return o, false
	}
	h, err := g.resolveHost(t)
	if err != nil || !h.IsHardwareVTEP() {
		return o, false
	}
	return hwvtep.Options{Topology: t, Host: h, Log: g.logger()}, true
}

// hwFDBEntry is one row of fdb for a hardware VTEP: a MAC the switch
// learned (Ucast_Macs_Local, origin "learned"), one it was told
// (Ucast_Macs_Remote, origin "installed"), or one VTEP of a logical
// switch's flood list (Mcast_Macs_Remote unknown-dst, origin "flood").
type hwFDBEntry struct {
	MAC           string `json:"mac"`
	VNI           int    `json:"vni"` // the tunnel_key; -1 when the logical switch has none
	LogicalSwitch string `json:"logical_switch"`
	// Peer is the topology host whose vtep the locator is, "local" for a
	// learned MAC, "" when no host has that vtep.
	Peer       string `json:"peer"`
	RemoteVTEP string `json:"remote_vtep,omitempty"` // installed and flood entries
	// Locator is the tunnel endpoint of the row: the switch's own for a
	// learned MAC, the remote VTEP otherwise.
	Locator string `json:"locator"`
	Origin  string `json:"origin"`
	// Ports are the physical port/VLAN bindings of the logical switch on
	// this switch, for a learned MAC: the schema does not say which of
	// them the MAC was seen on.
	Ports []string `json:"ports,omitempty"`
	IPs   []string `json:"ips,omitempty"`
}

// hardwareFDB lists the MACs of st's logical switches (only VNI vni's
// unless 0) in tunnel_key order: learned, installed, then the flood list.
func hardwareFDB(st *hwvtep.State, t *topology.Topology, vni uint32) []hwFDBEntry {
	peers := map[string]string{}
	for _, h := range t.Hosts {
		peers[h.VTEP.String()] = h.Name
	}
	out := []hwFDBEntry{}
	for _, s := range st.Switches {
		if vni != 0 && s.TunnelKey != int(vni) {
			continue
		}
		row := func(mac, origin, peer, locator, ip string) hwFDBEntry {
			e := hwFDBEntry{MAC: mac, VNI: s.TunnelKey, LogicalSwitch: s.Name, Peer: peer, Locator: locator, Origin: origin}
			if origin != "learned" {
				e.RemoteVTEP = locator
			} else {
				e.Ports = s.Bindings
			}
			if ip != "" {
				e.IPs = []string{ip}
			}
			return e
		}
		for _, m := range s.LocalMACs {
			out = append(out, row(m.MAC, "learned", "local", m.Locator, m.IP))
		}
		for _, m := range s.RemoteMACs {
			out = append(out, row(m.MAC, "installed", peers[m.Locator], m.Locator, m.IP))
		}
		for _, a := range s.Flood {
			out = append(out, row(hwvtep.UnknownDst, "flood", peers[a], a, ""))
		}
	}
	return out
}

// printHardwareFDB prints fdb's table form for a hardware VTEP. A learned
// MAC's PEER lists the switch ports bound to its logical switch
// ("local:p0.0" is port p0, untagged); LOCATOR is the tunnel endpoint of
// the row (the switch's own for a learned MAC).
func printHardwareFDB(out io.Writer, entries []hwFDBEntry) error {
	w := newTable(out)
	fmt.Fprintln(w, "MAC\tVNI\tLOGICAL SWITCH\tPEER\tLOCATOR\tORIGIN\tIPS")
	for _, e := range entries {
		peer := orDash(e.Peer)
		if e.Origin == "learned" && len(e.Ports) > 0 {
			var ports []string
			for _, p := range e.Ports {
				port, vlan, _ := strings.Cut(p, " vlan ")
				ports = append(ports, port+"."+vlan)
			}
			peer = "local:" + strings.Join(ports, ",")
		}
		vni := "-"
		if e.VNI >= 0 {
			vni = fmt.Sprint(e.VNI)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.MAC, vni, e.LogicalSwitch, peer, e.Locator, e.Origin,
			orDash(strings.Join(e.IPs, ",")))
	}
	return w.Flush()
}

// runHardwareFDB is fdb for hardware VTEP host o.Host.
func (g *globalOptions) runHardwareFDB(cmd *cobra.Command, o hwvtep.Options, vni uint32) error {
	defer o.Log.Sync()
	ctx, cancel := g.context()
	defer cancel()
	st, err := hwvtep.Show(ctx, o)
	if err != nil {
		return fmt.Errorf("fdb: hardware VTEP %s: %w", o.Host.Name, err)
	}
	entries := hardwareFDB(st, o.Topology, vni)
	if g.format == "json" {
		return writeJSON(cmd.OutOrStdout(), entries)
	}
	return printHardwareFDB(cmd.OutOrStdout(), entries)
}

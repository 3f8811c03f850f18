package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// hardwareOptions returns the hwvtep options of -f and --host when that
// host is a hardware VTEP, with the client side of an ssl: database from
// files (hardwareTLSFlags); ok is false for any other host or without -f,
// and the caller goes on with the OVS host path (which reports a bad file
// or host). Incomplete files are an error, as for apply.
func (g *globalOptions) hardwareOptions(files *ovsdb.SSLFiles) (o hwvtep.Options, ok bool, err error) {
	if g.file == "" {
		return o, false, nil
	}
	t, err := g.loadTopology()
	if err != nil {
		return o, false, nil
	}
	h, err := g.resolveHost(t)
	if err != nil || !h.IsHardwareVTEP() {
		return o, false, nil
	}
	o = hwvtep.Options{Topology: t, Host: h, Log: g.logger()}
	if o.TLS, err = hardwareTLS(h, files); err != nil {
		return o, true, fmt.Errorf("hardware VTEP %s: %w", h.Name, err)
	}
	return o, true, nil
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
				ports = append(ports, clean(port)+"."+vlan)
			}
			peer = "local:" + strings.Join(ports, ",")
		}
		vni := "-"
		if e.VNI >= 0 {
			vni = fmt.Sprint(e.VNI)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(e.MAC), vni, clean(e.LogicalSwitch), peer, clean(e.Locator), e.Origin,
			clean(orDash(strings.Join(e.IPs, ","))))
	}
	return w.Flush()
}

// clean makes a string read from a switch's database safe for a table: one
// with control or non-printable characters (a terminal escape, a newline
// breaking the columns) is shown quoted, one longer than a column should
// be is cut. JSON output escapes what it must by itself.
func clean(s string) string {
	const max = 64
	cut := len(s) > max
	if cut {
		s = s[:max]
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 || !utf8.ValidString(s) {
		s = strconv.Quote(s)
	}
	if cut {
		s += "..."
	}
	return s
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

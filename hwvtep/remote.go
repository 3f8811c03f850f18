package hwvtep

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// Controller mode: the controller tells a hardware VTEP where the MACs of
// the other hosts are (Ucast_Macs_Remote of our logical switches) and reads
// what the switch learned behind its own ports (Ucast_Macs_Local), so that
// known unicast between servers and VMs never floods. Sync does both in one
// read and at most one transaction.

// RemoteMAC is a MAC on another VTEP that a hardware VTEP is told of.
type RemoteMAC struct {
	VNI  uint32
	MAC  net.HardwareAddr
	IP   netip.Addr // !IsValid() when unknown
	VTEP netip.Addr // the locator: the VTEP of the host the MAC sits on
}

// LocalMAC is a MAC a hardware VTEP learned behind one of its ports, in
// one of our logical switches.
type LocalMAC struct {
	VNI uint32
	MAC net.HardwareAddr
	IP  netip.Addr // !IsValid() when the switch reports none
}

// Sync reads the database once and returns the local MACs of our logical
// switches (those apply created for host of topology); unless dry, it
// then makes their Ucast_Macs_Remote rows equal to want in one transaction
// (none when they are) and returns the changes. MACs of networks without
// a logical switch of ours on the switch are ignored.
func (c *Client) Sync(ctx context.Context, topology, host string, want []RemoteMAC, dry bool) ([]LocalMAC, []string, error) {
	m := marks{owner: topology, host: host}
	gen := c.changes.Load() // before the read: a change during it is seen next time
	l := &c.local
	fresh := !l.valid || l.m != m || l.gen != gen || time.Since(l.at) > localRefresh
	snap, err := c.read(ctx, fresh)
	if err != nil {
		return nil, nil, err
	}
	c.lswitches = snap.lswitches
	if fresh {
		macs, refused := snap.index().localMACsKnown(m, c.maxLocal, c.admitted)
		c.report(refused)
		c.admitted = make(map[macKey]bool, len(macs))
		for _, l := range macs {
			c.admitted[keyOfLocal(l)] = true
		}
		*l = localCache{valid: true, m: m, gen: gen, at: time.Now(), macs: macs}
	}
	local := slices.Clone(l.macs)
	if dry {
		return local, nil, nil
	}
	plan := planRemote(snap, m, want)
	if err := c.Apply(ctx, plan); err != nil {
		return local, nil, err
	}
	return local, plan.Changes, nil
}

// vnis maps our logical switches' UUIDs to their tunnel keys.
func (x *index) vnis(m marks) map[string]uint32 {
	out := map[string]uint32{}
	for _, ls := range x.ours(m) {
		if ls.TunnelKey != nil && *ls.TunnelKey > 0 {
			out[ls.UUID] = uint32(*ls.TunnelKey)
		}
	}
	return out
}

// localMACs lists the Ucast_Macs_Local rows of our logical switches,
// sorted and once per (VNI, MAC), at most max of them (admit, with nothing
// known: the lowest). Rows whose MAC is malformed are refused, and so is a
// malformed IP (the MAC is taken without it); refused says how many.
func (x *index) localMACs(m marks, max int) (out []LocalMAC, refused refusals) {
	return x.localMACsKnown(m, max, nil)
}

// localMACsKnown is localMACs where the MACs of known (those taken at the
// previous read) keep their place over the bound.
func (x *index) localMACsKnown(m marks, max int, known map[macKey]bool) (out []LocalMAC, refused refusals) {
	vni := x.vnis(m)
	for _, r := range x.ucastLocal {
		v, ok := vni[r.LogicalSwitch]
		if !ok {
			continue
		}
		mac, ip, reason := parseLocalMAC(r.MAC, r.Ipaddr)
		if reason != "" {
			refused.add(reason, fmt.Sprintf("%s %s", quote(r.MAC), quote(r.Ipaddr)))
		}
		if mac != nil {
			out = append(out, LocalMAC{VNI: v, MAC: mac, IP: ip})
		}
	}
	slices.SortFunc(out, func(a, b LocalMAC) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), bytes.Compare(a.MAC, b.MAC), a.IP.Compare(b.IP))
	})
	out = slices.CompactFunc(out, func(a, b LocalMAC) bool { return a.VNI == b.VNI && bytes.Equal(a.MAC, b.MAC) })
	out, over := admit(out, known, max)
	for range over {
		refused.add(RefusedLimit, "")
	}
	return out, refused
}

// macKey identifies a local MAC for admission.
type macKey struct {
	vni uint32
	mac [6]byte
}

func keyOfLocal(l LocalMAC) macKey {
	k := macKey{vni: l.VNI}
	copy(k.mac[:], l.MAC)
	return k
}

// admit keeps at most max (0: all) of cands, which are sorted and unique,
// like a switch's FDB: every MAC of known (taken at an earlier read and
// still reported) stays, then new ones are taken in order while room
// remains. A flood of new MACs behind one port thus cannot push out a
// server the controller already knows, however its MACs sort. It returns
// the MACs taken, sorted, and how many were refused.
func admit(cands []LocalMAC, known map[macKey]bool, max int) ([]LocalMAC, int) {
	if max <= 0 || len(cands) <= max {
		return cands, 0
	}
	take := make([]bool, len(cands))
	n := 0
	for i, l := range cands {
		if n < max && known[keyOfLocal(l)] {
			take[i] = true
			n++
		}
	}
	for i := range cands {
		if n >= max {
			break
		}
		if !take[i] {
			take[i] = true
			n++
		}
	}
	out := make([]LocalMAC, 0, n)
	for i, l := range cands {
		if take[i] {
			out = append(out, l)
		}
	}
	return out, len(cands) - n
}

// planRemote computes the operations that make the Ucast_Macs_Remote rows
// of our logical switches equal to want: one row per (logical switch, MAC)
// with the VTEP's locator and the IP. Rows of other logical switches are
// never touched.
func planRemote(s *snapshot, m marks, want []RemoteMAC) *Plan {
	p := newPlanner(s, m)
	lsOf := map[uint32]*hwvtep.LogicalSwitch{}
	for _, ls := range p.x.ours(m) {
		if ls.TunnelKey != nil {
			lsOf[uint32(*ls.TunnelKey)] = ls
		}
	}
	type key struct{ ls, mac string }
	wanted := map[key]RemoteMAC{}
	for _, w := range want {
		if ls := lsOf[w.VNI]; ls != nil && len(w.MAC) == 6 && w.VTEP.Is4() {
			wanted[key{ls.UUID, w.MAC.String()}] = w
		}
	}
	have := map[key]bool{}
	rows := slices.Clone(p.x.ucastRemote)
	slices.SortFunc(rows, func(a, b *hwvtep.UcastMacsRemote) int { return strings.Compare(a.MAC, b.MAC) })
	for _, r := range rows {
		ls := p.x.lsByUUID[r.LogicalSwitch]
		if ls == nil || !m.owns(ls) {
			continue
		}
		k := key{ls.UUID, strings.ToLower(r.MAC)}
		w, ok := wanted[k]
		if !ok || have[k] {
			p.deleteRow(hwvtep.UcastMacsRemoteTable, r.UUID)
			p.change("- ucast remote %s %s -> %s", ls.Name, r.MAC, p.x.locatorAddr(r.Locator))
			continue
		}
		have[k] = true
		ip := ipString(w.IP)
		if p.x.locatorAddr(r.Locator) == w.VTEP.String() && r.Ipaddr == ip && r.MAC == k.mac {
			continue
		}
		p.op(libovsdb.Operation{Op: libovsdb.OperationUpdate, Table: hwvtep.UcastMacsRemoteTable, Where: whereUUID(r.UUID),
			Row: libovsdb.Row{"MAC": k.mac, "locator": libovsdb.UUID{GoUUID: p.locator(w.VTEP.String())}, "ipaddr": ip}})
		p.change("~ ucast remote %s %s -> %s %s", ls.Name, k.mac, w.VTEP, ip)
	}
	keys := make([]key, 0, len(wanted))
	for k := range wanted {
		if !have[k] {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.ls, b.ls), strings.Compare(a.mac, b.mac)) })
	for _, k := range keys {
		w := wanted[k]
		p.op(libovsdb.Operation{Op: libovsdb.OperationInsert, Table: hwvtep.UcastMacsRemoteTable, Row: libovsdb.Row{
			"MAC": k.mac, "logical_switch": libovsdb.UUID{GoUUID: k.ls}, "locator": libovsdb.UUID{GoUUID: p.locator(w.VTEP.String())},
			"ipaddr": ipString(w.IP)}})
		p.change("+ ucast remote %s %s -> %s %s", p.x.lsByUUID[k.ls].Name, k.mac, w.VTEP, ipString(w.IP))
	}
	plan, _ := p.finish()
	return plan
}

func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.String()
}

// String renders a remote MAC for logs.
func (r RemoteMAC) String() string {
	return fmt.Sprintf("%d/%s@%s", r.VNI, r.MAC, r.VTEP)
}

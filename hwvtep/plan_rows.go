package hwvtep

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// bindings makes the vlan_bindings entries of our logical switches equal to
// want (port UUID -> VLAN -> logical switch UUID or named UUID) on every
// physical port of the database; entries bound to logical switches that
// are not ours are left alone (conflicts refused any we need).
func (p *planner) bindings(want map[string]map[int]string) {
	ports := slices.Clone(p.x.ports)
	slices.SortFunc(ports, func(a, b *hwvtep.PhysicalPort) int { return strings.Compare(a.Name, b.Name) })
	for _, port := range ports {
		var del []any
		ins := map[any]any{}
		w := want[port.UUID]
		for _, vlan := range slices.Sorted(maps.Keys(port.VLANBindings)) {
			u := port.VLANBindings[vlan]
			ls := p.x.lsByUUID[u]
			if ls == nil || !p.m.owns(ls) {
				continue
			}
			if ref, ok := w[vlan]; !ok || ref != u {
				del = append(del, vlan)
				p.change("- binding %s vlan %d (logical_switch %s)", port.Name, vlan, ls.Name)
			}
		}
		for _, vlan := range slices.Sorted(maps.Keys(w)) {
			if cur, ok := port.VLANBindings[vlan]; ok && cur == w[vlan] {
				continue
			}
			ins[vlan] = libovsdb.UUID{GoUUID: w[vlan]}
			p.change("+ binding %s vlan %d -> logical_switch %s", port.Name, vlan, p.refName(w[vlan]))
		}
		var muts []libovsdb.Mutation
		if len(del) > 0 {
			muts = append(muts, *libovsdb.NewMutation("vlan_bindings", libovsdb.MutateOperationDelete, libovsdb.OvsSet{GoSet: del}))
		}
		if len(ins) > 0 {
			muts = append(muts, *libovsdb.NewMutation("vlan_bindings", libovsdb.MutateOperationInsert, libovsdb.OvsMap{GoMap: ins}))
		}
		if len(muts) > 0 {
			p.op(libovsdb.Operation{Op: libovsdb.OperationMutate, Table: hwvtep.PhysicalPortTable, Where: whereUUID(port.UUID), Mutations: muts})
		}
	}
}

// refName names the logical switch behind a UUID or a named UUID of this
// plan, for change lines.
func (p *planner) refName(ref string) string {
	if ls := p.x.lsByUUID[ref]; ls != nil {
		return ls.Name
	}
	for i := len(p.plan.Ops) - 1; i >= 0; i-- {
		if o := p.plan.Ops[i]; o.UUIDName == ref && o.Table == hwvtep.LogicalSwitchTable {
			return fmt.Sprint(o.Row["name"])
		}
	}
	return ref
}

// unknownDst makes the Mcast_Macs_Remote unknown-dst row of logical switch
// w (ref: its UUID or named UUID) point at a locator set of exactly w's
// flood list. Locator sets are immutable: a new list is a new set, and
// OVSDB collects the old one.
func (p *planner) unknownDst(w LogicalSwitch, ref string) {
	var rows []*hwvtep.McastMacsRemote
	for _, r := range p.x.mcastRemote {
		if r.LogicalSwitch == ref && r.MAC == UnknownDst {
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(a, b *hwvtep.McastMacsRemote) int { return strings.Compare(a.UUID, b.UUID) })
	want := addrStrings(w.Flood)
	if len(want) == 0 {
		for _, r := range rows {
			p.deleteRow(hwvtep.McastMacsRemoteTable, r.UUID)
			p.change("- unknown-dst %s (%s)", w.Name, strings.Join(p.x.setAddrs(r.LocatorSet), ", "))
		}
		return
	}
	if len(rows) > 0 && slices.Equal(p.x.setAddrs(rows[0].LocatorSet), want) && rows[0].Ipaddr == "" {
		for _, r := range rows[1:] {
			p.deleteRow(hwvtep.McastMacsRemoteTable, r.UUID)
			p.change("- unknown-dst %s duplicate (%s)", w.Name, strings.Join(p.x.setAddrs(r.LocatorSet), ", "))
		}
		return
	}
	var locs []any
	for _, a := range want {
		locs = append(locs, libovsdb.UUID{GoUUID: p.locator(a)})
	}
	set := p.newName()
	p.op(libovsdb.Operation{Op: libovsdb.OperationInsert, Table: hwvtep.PhysicalLocatorSetTable, UUIDName: set,
		Row: libovsdb.Row{"locators": libovsdb.OvsSet{GoSet: locs}}})
	if len(rows) == 0 {
		p.op(libovsdb.Operation{Op: libovsdb.OperationInsert, Table: hwvtep.McastMacsRemoteTable, Row: libovsdb.Row{
			"MAC": UnknownDst, "logical_switch": libovsdb.UUID{GoUUID: ref}, "locator_set": libovsdb.UUID{GoUUID: set}}})
		p.change("+ unknown-dst %s -> %s", w.Name, strings.Join(want, ", "))
		return
	}
	p.op(libovsdb.Operation{Op: libovsdb.OperationUpdate, Table: hwvtep.McastMacsRemoteTable, Where: whereUUID(rows[0].UUID),
		Row: libovsdb.Row{"locator_set": libovsdb.UUID{GoUUID: set}, "ipaddr": ""}})
	p.change("~ unknown-dst %s %s -> %s", w.Name, listOrNone(p.x.setAddrs(rows[0].LocatorSet)), strings.Join(want, ", "))
	for _, r := range rows[1:] {
		p.deleteRow(hwvtep.McastMacsRemoteTable, r.UUID)
		p.change("- unknown-dst %s duplicate (%s)", w.Name, strings.Join(p.x.setAddrs(r.LocatorSet), ", "))
	}
}

// locator returns the UUID of the vxlan_over_ipv4 locator of addr, creating
// it (once per plan) when the database has none.
func (p *planner) locator(addr string) string {
	if u, ok := p.loc[addr]; ok {
		return u
	}
	ref := p.newName()
	p.op(libovsdb.Operation{Op: libovsdb.OperationInsert, Table: hwvtep.PhysicalLocatorTable, UUIDName: ref,
		Row: libovsdb.Row{"encapsulation_type": EncapVXLAN, "dst_ip": addr}})
	p.change("+ locator %s %s", EncapVXLAN, addr)
	p.loc[addr] = ref
	return ref
}

// removeLogicalSwitch deletes our logical switch ls and every MAC row that
// refers to it: the remote ones are ours, and the switch's local reports
// for it cannot outlive it (the references are strong). Its bindings go in
// bindings(), which runs for every plan.
func (p *planner) removeLogicalSwitch(ls *hwvtep.LogicalSwitch) {
	type row struct{ table, uuid, what string }
	var rows []row
	for _, r := range p.x.mcastRemote {
		if r.LogicalSwitch == ls.UUID {
			rows = append(rows, row{hwvtep.McastMacsRemoteTable, r.UUID, fmt.Sprintf("- mcast remote %s %s (%s)", ls.Name, r.MAC, strings.Join(p.x.setAddrs(r.LocatorSet), ", "))})
		}
	}
	for _, r := range p.x.ucastRemote {
		if r.LogicalSwitch == ls.UUID {
			rows = append(rows, row{hwvtep.UcastMacsRemoteTable, r.UUID, fmt.Sprintf("- ucast remote %s %s -> %s", ls.Name, r.MAC, p.x.locatorAddr(r.Locator))})
		}
	}
	for _, r := range p.x.mcastLocal {
		if r.LogicalSwitch == ls.UUID {
			rows = append(rows, row{hwvtep.McastMacsLocalTable, r.UUID, fmt.Sprintf("- mcast local %s %s (the switch's report for a logical switch that goes)", ls.Name, r.MAC)})
		}
	}
	for _, r := range p.x.ucastLocal {
		if r.LogicalSwitch == ls.UUID {
			rows = append(rows, row{hwvtep.UcastMacsLocalTable, r.UUID, fmt.Sprintf("- ucast local %s %s (the switch's report for a logical switch that goes)", ls.Name, r.MAC)})
		}
	}
	p.change("- logical_switch %s (tunnel_key %s)", ls.Name, showIntPtr(ls.TunnelKey))
	p.plan.removed = append(p.plan.removed, ls.UUID)
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.what, b.what) })
	for _, r := range rows {
		p.deleteRow(r.table, r.uuid)
		p.change("%s", r.what)
	}
	p.deleteRow(hwvtep.LogicalSwitchTable, ls.UUID)
}

func (p *planner) deleteRow(table, uuid string) {
	p.op(libovsdb.Operation{Op: libovsdb.OperationDelete, Table: table, Where: whereUUID(uuid)})
}

func whereUUID(u string) []libovsdb.Condition {
	return []libovsdb.Condition{libovsdb.NewCondition("_uuid", libovsdb.ConditionEqual, libovsdb.UUID{GoUUID: u})}
}

func ovsMap(m map[string]string) libovsdb.OvsMap {
	g := make(map[any]any, len(m))
	for k, v := range m {
		g[k] = v
	}
	return libovsdb.OvsMap{GoMap: g}
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	slices.Sort(out)
	return out
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func showIntPtr(i *int) string {
	if i == nil {
		return "(none)"
	}
	return strconv.Itoa(*i)
}

func showStrPtr(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

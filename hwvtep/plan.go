package hwvtep

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// EncapVXLAN is the only encapsulation of the hardware_vtep schema.
const EncapVXLAN = "vxlan_over_ipv4"

// Plan is one reconcile of a hardware VTEP: the operations of one OVSDB
// transaction and what they change, for people.
type Plan struct {
	// Changes describes every change, one per line: "+ " adds, "- "
	// removes, "~ " changes in place. Empty when there is nothing to do.
	Changes []string
	// Ops is the transaction.
	Ops []libovsdb.Operation
	// Notes are things worth knowing that change nothing.
	Notes []string
	// removed are the UUIDs of the logical switches the plan removes.
	removed []string
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Ops) == 0 }

// planner builds a Plan from an indexed snapshot.
type planner struct {
	x    *index
	m    marks
	plan *Plan
	n    int               // named UUIDs handed out
	loc  map[string]string // dst_ip -> locator UUID or named UUID
}

func newPlanner(s *snapshot, m marks) *planner {
	p := &planner{x: s.index(), m: m, plan: &Plan{}, loc: map[string]string{}}
	// Reuse the switch's locators: the table has a unique index on
	// (encapsulation_type, dst_ip, tunnel_key), and a locator is shared
	// by whoever points at it.
	for _, l := range s.locators {
		if l.EncapsulationType == EncapVXLAN && l.TunnelKey == nil {
			p.loc[l.DstIP] = l.UUID
		}
	}
	return p
}

func (p *planner) change(format string, args ...any) {
	p.plan.Changes = append(p.plan.Changes, fmt.Sprintf(format, args...))
}

func (p *planner) op(o libovsdb.Operation) { p.plan.Ops = append(p.plan.Ops, o) }

// newName returns a fresh named UUID (OVSDB wants identifiers).
func (p *planner) newName() string {
	p.n++
	return fmt.Sprintf("row%d", p.n)
}

// planFrom computes the transaction that makes the database in snapshot s
// match want. It fails, changing nothing, when the physical switch or one
// of its ports is missing, or when a name, VNI or binding it needs belongs
// to a logical switch that is not ours.
func planFrom(s *snapshot, want Config) (*Plan, error) {
	p := newPlanner(s, marks{owner: want.Topology, host: want.Host})
	ps := p.x.switchNamed[want.PhysicalSwitch]
	if ps == nil {
		var names []string
		for _, sw := range s.switches {
			names = append(names, sw.Name)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("the hardware VTEP's database has no physical switch %q (it has: %s)", want.PhysicalSwitch, listOrNone(names))
	}
	if want.VTEP.IsValid() && !slices.Contains(ps.TunnelIPs, want.VTEP.String()) {
		p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("physical switch %s has tunnel_ips %s, not the host's vtep %s: the peers tunnel to %s",
			ps.Name, listOrNone(ps.TunnelIPs), want.VTEP, want.VTEP))
	}
	ports := p.x.switchPorts(ps)
	if err := p.conflicts(want, ps.Name, ports); err != nil {
		return nil, fmt.Errorf("host %s of topology %s: %w", want.Host, want.Topology, err)
	}
	refs := map[string]string{} // logical switch name -> UUID or named UUID
	for _, ls := range want.Switches {
		refs[ls.Name] = p.logicalSwitch(want, ls)
	}
	bound := map[string]map[int]string{} // port UUID -> VLAN -> logical switch ref
	for _, ls := range want.Switches {
		for _, b := range ls.Bindings {
			u := ports[b.Port].UUID
			if bound[u] == nil {
				bound[u] = map[int]string{}
			}
			bound[u][int(b.VLAN)] = refs[ls.Name]
		}
	}
	p.bindings(bound)
	for _, ls := range want.Switches {
		p.unknownDst(ls, refs[ls.Name])
	}
	wanted := map[string]bool{}
	for _, ls := range want.Switches {
		wanted[ls.Name] = true
	}
	for _, ls := range p.x.ours(p.m) {
		if !wanted[ls.Name] {
			p.removeLogicalSwitch(ls)
		}
	}
	return p.finish()
}

// planDestroy computes the transaction that removes our logical switches
// with their bindings and the MAC rows that refer to them.
func planDestroy(s *snapshot, m marks) *Plan {
	p := newPlanner(s, m)
	p.bindings(nil)
	for _, ls := range p.x.ours(m) {
		p.removeLogicalSwitch(ls)
	}
	plan, _ := p.finish()
	return plan
}

func (p *planner) finish() (*Plan, error) {
	if len(p.plan.Ops) > 0 && len(p.plan.Changes) == 0 {
		return nil, errors.New("internal error: operations without a described change")
	}
	if len(p.plan.Ops) == 0 {
		p.plan.Changes = nil
	}
	return p.plan, nil
}

// conflicts reports every port that is missing and every name, VNI or
// binding we need that a logical switch not ours holds.
func (p *planner) conflicts(want Config, switchName string, ports map[string]*hwvtep.PhysicalPort) error {
	var errs []error
	for _, w := range want.Switches {
		if ls := p.x.lsByName[w.Name]; ls != nil && !p.m.owns(ls) {
			errs = append(errs, fmt.Errorf("logical switch %s already exists and %s", w.Name, ownerOf(ls)))
		}
		for _, ls := range p.x.lswitches {
			if !p.m.owns(ls) && ls.Name != w.Name && ls.TunnelKey != nil && *ls.TunnelKey == int(w.VNI) {
				errs = append(errs, fmt.Errorf("logical switch %s already has tunnel_key %d (network %s's VNI) and %s", ls.Name, w.VNI, w.Network, ownerOf(ls)))
			}
		}
		for _, b := range w.Bindings {
			port := ports[b.Port]
			if port == nil {
				errs = append(errs, fmt.Errorf("physical switch %s has no port %s (it has: %s)", switchName, b.Port, listOrNone(slices.Sorted(maps.Keys(ports)))))
				continue
			}
			if u, ok := port.VLANBindings[int(b.VLAN)]; ok {
				if ls := p.x.lsByUUID[u]; ls == nil || !p.m.owns(ls) {
					errs = append(errs, fmt.Errorf("port %s vlan %d is already bound to logical switch %s, which is not ours", b.Port, b.VLAN, p.lsName(u)))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (p *planner) lsName(u string) string {
	if ls := p.x.lsByUUID[u]; ls != nil {
		return ls.Name
	}
	return u
}

// lsMarks are the other_config marks of our logical switch for network.
func (p *planner) lsMarks(network string) map[string]string {
	return map[string]string{ovsdb.KeyOwner: p.m.owner, ovsdb.KeyHost: p.m.host, ovsdb.KeyNetwork: network}
}

func description(c Config, ls LogicalSwitch) string {
	return fmt.Sprintf("ovs-vxctl: network %s of topology %s", ls.Network, c.Topology)
}

// logicalSwitch creates logical switch w or updates ours in place, and
// returns its UUID or named UUID.
func (p *planner) logicalSwitch(c Config, w LogicalSwitch) string {
	mode := hwvtep.LogicalSwitchReplicationModeSourceNode
	cur := p.x.lsByName[w.Name]
	if cur == nil {
		ref := p.newName()
		p.op(libovsdb.Operation{Op: libovsdb.OperationInsert, Table: hwvtep.LogicalSwitchTable, UUIDName: ref, Row: libovsdb.Row{
			"name": w.Name, "description": description(c, w), "tunnel_key": int(w.VNI), "replication_mode": mode,
			"other_config": ovsMap(p.lsMarks(w.Network)),
		}})
		p.change("+ logical_switch %s (tunnel_key %d, replication_mode %s)", w.Name, w.VNI, mode)
		return ref
	}
	subject := "logical_switch " + w.Name
	row := libovsdb.Row{}
	if d := description(c, w); cur.Description != d {
		row["description"] = d
		p.change("~ %s description %q -> %q", subject, cur.Description, d)
	}
	if cur.TunnelKey == nil || *cur.TunnelKey != int(w.VNI) {
		row["tunnel_key"] = int(w.VNI)
		p.change("~ %s tunnel_key %s -> %d", subject, showIntPtr(cur.TunnelKey), w.VNI)
	}
	if cur.ReplicationMode == nil || *cur.ReplicationMode != mode {
		row["replication_mode"] = mode
		p.change("~ %s replication_mode %s -> %s", subject, showStrPtr(cur.ReplicationMode), mode)
	}
	if len(row) > 0 {
		p.op(libovsdb.Operation{Op: libovsdb.OperationUpdate, Table: hwvtep.LogicalSwitchTable, Where: whereUUID(cur.UUID), Row: row})
	}
	p.reconcileMarks(subject, cur, p.lsMarks(w.Network))
	return cur.UUID
}

// reconcileMarks makes the ovs-vxctl keys of cur's other_config equal to
// want, leaving every other key alone.
func (p *planner) reconcileMarks(subject string, cur *hwvtep.LogicalSwitch, want map[string]string) {
	var del []any
	ins := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(cur.OtherConfig)) {
		if v, ok := want[k]; strings.HasPrefix(k, "ovs-vxctl-") && (!ok || v != cur.OtherConfig[k]) {
			del = append(del, k)
			p.change("~ %s other_config:%s %q -> %q", subject, k, cur.OtherConfig[k], v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := cur.OtherConfig[k]; !ok || v != want[k] {
			ins[k] = want[k]
			if !ok {
				p.change("~ %s other_config:%s (none) -> %q", subject, k, want[k])
			}
		}
	}
	var muts []libovsdb.Mutation
	if len(del) > 0 {
		muts = append(muts, *libovsdb.NewMutation("other_config", libovsdb.MutateOperationDelete, libovsdb.OvsSet{GoSet: del}))
	}
	if len(ins) > 0 {
		muts = append(muts, *libovsdb.NewMutation("other_config", libovsdb.MutateOperationInsert, ovsMap(ins)))
	}
	if len(muts) > 0 {
		p.op(libovsdb.Operation{Op: libovsdb.OperationMutate, Table: hwvtep.LogicalSwitchTable, Where: whereUUID(cur.UUID), Mutations: muts})
	}
}

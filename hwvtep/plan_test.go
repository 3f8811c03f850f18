package hwvtep

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func parse(t *testing.T, y string) *topology.Topology {
	t.Helper()
	top, err := topology.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

const unitTopology = "name: u\nhosts:\n" +
	"  - {name: h1, vtep: 10.0.0.10}\n  - {name: h2, vtep: 10.0.0.2}\n  - {name: h3, vtep: 10.0.0.3}\n" +
	"  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640', physical_switch: leaf}}\n" +
	"networks:\n" +
	"  - {name: b, vni: 200, ports: [{host: tor1, name: p1, vlan: 10}, {host: tor1, name: p0, vlan: 20}, {host: h2, name: vm2}]}\n" +
	"  - {name: a, vni: 100, ports: [{host: h1, name: vm1}, {host: tor1, name: p0, vlan: 0}, {host: h2, name: vm4}]}\n" +
	"  - {name: c, vni: 300, ports: [{host: h3, name: vm3}, {host: h1, name: vm5}]}\n" +
	"  - {name: d, vni: 400, ports: [{host: tor1, name: p2, vlan: 0}]}\n"

func TestDesired(t *testing.T) {
	top := parse(t, unitTopology)
	c, err := Desired(top, top.Host("tor1"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ls := range c.Switches {
		got = append(got, fmt.Sprintf("%s/%d %v %v", ls.Name, ls.VNI, ls.Bindings, ls.Flood))
	}
	want := []string{
		"a/100 [p0 vlan 0] [10.0.0.2 10.0.0.10]",
		"b/200 [p0 vlan 20 p1 vlan 10] [10.0.0.2]",
		"d/400 [p2 vlan 0] []",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Desired:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.PhysicalSwitch != "leaf" || c.VTEP != netip.MustParseAddr("10.0.0.9") || c.Topology != "u" || c.Host != "tor1" {
		t.Errorf("Desired = %+v", c)
	}
	if _, err := Desired(top, top.Host("h1")); err == nil {
		t.Error("Desired of a managed host succeeded")
	}
	if _, err := Desired(top, &topology.Host{Name: "tor1"}); err == nil {
		t.Error("Desired of a host that is not the topology's succeeded")
	}
}

// emptySwitch is a database holding physical switch leaf with ports p0..p2
// and nothing else.
func emptySwitch() *snapshot {
	s := &snapshot{}
	ps := &hwvtep.PhysicalSwitch{UUID: uuid(1), Name: "leaf", TunnelIPs: []string{"10.0.0.9"}}
	for i, name := range []string{"p0", "p1", "p2"} {
		p := &hwvtep.PhysicalPort{UUID: uuid(10 + i), Name: name, VLANBindings: map[int]string{}}
		s.ports = append(s.ports, p)
		ps.Ports = append(ps.Ports, p.UUID)
	}
	s.switches = []*hwvtep.PhysicalSwitch{ps}
	return s
}

func uuid(n int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }

// commit plays plan's operations on snapshot s the way ovsdb-server would,
// for the operations the planner emits, giving inserted rows fresh UUIDs.
func commit(t *testing.T, s *snapshot, plan *Plan) {
	t.Helper()
	names := map[string]string{}
	next := 1000 + len(s.lswitches)*10 + len(s.locatorSets)*10 + len(s.mcastRemote)*10
	ref := func(v any) string {
		u := v.(interface{ MarshalJSON() ([]byte, error) })
		b, _ := u.MarshalJSON()
		var pair [2]string
		json.Unmarshal(b, &pair)
		if pair[0] == "named-uuid" {
			return names[pair[1]]
		}
		return pair[1]
	}
	for _, op := range plan.Ops {
		uuidOf := ""
		if op.Op == "insert" {
			next++
			uuidOf = uuid(next)
			if op.UUIDName != "" {
				names[op.UUIDName] = uuidOf
			}
		}
		applyOp(t, s, op.Op, op.Table, uuidOf, whereOf(op.Where), op.Row, op.Mutations, ref)
	}
}

func TestPlanIsIdempotentAndKeepsOthers(t *testing.T) {
	top := parse(t, unitTopology)
	want, _ := Desired(top, top.Host("tor1"))
	s := emptySwitch()
	theirs := &hwvtep.LogicalSwitch{UUID: uuid(500), Name: "theirs", OtherConfig: map[string]string{}}
	s.lswitches = append(s.lswitches, theirs)
	s.ports[2].VLANBindings[5] = theirs.UUID
	s.ucastLocal = append(s.ucastLocal, &hwvtep.UcastMacsLocal{UUID: uuid(501), MAC: "00:00:00:00:00:01", LogicalSwitch: theirs.UUID})

	plan, err := planFrom(s, want)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Empty() || len(plan.Changes) == 0 {
		t.Fatal("first plan is empty")
	}
	commit(t, s, plan)
	if again, err := planFrom(s, want); err != nil || !again.Empty() {
		t.Fatalf("second plan: %v, changes %q; want nothing", err, again.Changes)
	}
	for _, ls := range s.lswitches {
		if ls.Name == "theirs" {
			continue
		}
		if ls.OtherConfig[ovsdb.KeyOwner] != "u" || ls.OtherConfig[ovsdb.KeyHost] != "tor1" || *ls.ReplicationMode != "source_node" {
			t.Errorf("logical switch %s: other_config %v, replication_mode %v", ls.Name, ls.OtherConfig, *ls.ReplicationMode)
		}
	}
	if got := s.ports[0].VLANBindings; len(got) != 2 {
		t.Errorf("p0 bindings = %v, want vlan 0 and 20", got)
	}

	// Someone changes our tunnel_key and flood list: one plan puts both back.
	for _, ls := range s.lswitches {
		if ls.Name == "a" {
			k := 7
			ls.TunnelKey = &k
		}
	}
	s.locatorSets[0].Locators = s.locatorSets[0].Locators[:1]
	plan, _ = planFrom(s, want)
	if !slices.ContainsFunc(plan.Changes, func(c string) bool { return strings.HasPrefix(c, "~ logical_switch a tunnel_key 7 -> 100") }) {
		t.Errorf("changes %q lack the tunnel_key fix", plan.Changes)
	}
	commit(t, s, plan)
	if again, _ := planFrom(s, want); !again.Empty() {
		t.Errorf("after the fix: changes %q, want nothing", again.Changes)
	}

	// Destroy touches nothing of theirs.
	d := planDestroy(s, marks{owner: "u", host: "tor1"})
	for _, op := range d.Ops {
		if w := whereOf(op.Where); w == theirs.UUID || w == uuid(501) {
			t.Errorf("destroy touches their row %s: %+v", w, op)
		}
	}
	commit(t, s, d)
	if len(s.lswitches) != 1 || s.ports[2].VLANBindings[5] != theirs.UUID || len(s.ucastLocal) != 1 || len(s.ports[0].VLANBindings) != 0 {
		t.Errorf("after destroy: %d logical switches, p2 bindings %v, %d local MACs, p0 bindings %v",
			len(s.lswitches), s.ports[2].VLANBindings, len(s.ucastLocal), s.ports[0].VLANBindings)
	}
	if again := planDestroy(s, marks{owner: "u", host: "tor1"}); !again.Empty() {
		t.Errorf("second destroy: %q", again.Changes)
	}
}

func TestPlanRefusals(t *testing.T) {
	top := parse(t, unitTopology)
	want, _ := Desired(top, top.Host("tor1"))
	s := emptySwitch()
	s.switches[0].Name = "other"
	if _, err := planFrom(s, want); err == nil || !strings.Contains(err.Error(), `no physical switch "leaf" (it has: other)`) {
		t.Errorf("missing switch: %v", err)
	}
	s = emptySwitch()
	s.ports = s.ports[:2]
	s.switches[0].Ports = s.switches[0].Ports[:2]
	if _, err := planFrom(s, want); err == nil || !strings.Contains(err.Error(), "physical switch leaf has no port p2 (it has: p0, p1)") {
		t.Errorf("missing port: %v", err)
	}
	s = emptySwitch()
	s.switches[0].TunnelIPs = []string{"10.9.9.9"}
	plan, err := planFrom(s, want)
	if err != nil || len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "not the host's vtep 10.0.0.9") {
		t.Errorf("tunnel_ips note: %v %q", err, plan.Notes)
	}
}

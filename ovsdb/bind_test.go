package ovsdb

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// plugLibvirt plugs a veth into br-int as libvirt does: a Port it names,
// with external_ids:iface-id and attached-mac on the Interface, plus
// settings of its own that binding must leave alone.
func (l *lab) plugLibvirt(name, ifaceID, mac string) {
	l.t.Helper()
	l.vethPair(name)
	l.vsctl("add-port", "br-int", name,
		"--", "set", "Interface", name, "external_ids:iface-id="+ifaceID, "external_ids:attached-mac="+mac,
		"external_ids:vm-uuid=0f0e", "other_config:foo=bar",
		"--", "set", "Port", name, "external_ids:owner=libvirt", "other_config:priority-tags=true")
}

// foreignColumns is every configured column of a plugged Port and its
// Interface except the Port's tag and our external_ids keys: what binding
// must never change.
func (l *lab) foreignColumns(name string) string {
	l.t.Helper()
	var out []string
	for _, col := range []string{"name", "interfaces", "trunks", "vlan_mode", "other_config", "bond_mode", "lacp", "mac"} {
		out = append(out, "Port."+col+"="+l.get("Port", name, col))
	}
	var ext []string
	for _, kv := range strings.Split(strings.Trim(l.get("Port", name, "external_ids"), "{}"), ", ") {
		if !strings.HasPrefix(kv, keyPrefix) {
			ext = append(ext, kv)
		}
	}
	out = append(out, "Port.external_ids(others)="+strings.Join(ext, ", "))
	for _, col := range []string{"name", "type", "options", "external_ids", "other_config", "mac", "ofport_request", "mtu_request"} {
		out = append(out, "Interface."+col+"="+l.get("Interface", name, col))
	}
	return strings.Join(out, "\n")
}

// bindTopo is topo with a tenant-a port "web" on host1 given by iface_id.
func bindTopo(ifaceID string) *topology.Topology {
	tp := topo(topology.ModeLearn)
	if ifaceID != "" {
		addPort(tp.Networks[0], tp.Host("host1"), "web", topology.PortVM).IfaceID = ifaceID
	}
	return tp
}

// h1 is tp with its host1, for the lab's helpers.
func h1(tp *topology.Topology) (*topology.Topology, *topology.Host) { return tp, tp.Host("host1") }

func hasWarning(p *Plan, parts ...string) bool {
	return slices.ContainsFunc(p.Warnings, func(w string) bool {
		for _, s := range parts {
			if !strings.Contains(w, s) {
				return false
			}
		}
		return true
	})
}

// A port given by iface_id binds whichever interface on br-int carries the
// iface-id, plugged libvirt-style after apply: only the tag and our keys
// change on that foreign row. Removed from the file, the port goes to the
// dead VLAN and loses our keys; the row itself stays.
func TestBindPortPluggedLibvirtStyle(t *testing.T) {
	l := newLab(t)
	tp := bindTopo("vm-web-01")
	h := tp.Host("host1")
	l.vethPair("hxvm1")

	plan := l.reconcile(tp, h)
	if !hasWarning(plan, "port web (iface-id vm-web-01)", "no interface carries external_ids:iface-id=vm-web-01 yet") {
		t.Fatalf("apply before the VM is plugged: warnings %q, want one saying web is not plugged yet", plan.Warnings)
	}
	l.plugLibvirt("vnet0", "vm-web-01", "52:54:00:aa:bb:01")
	before := l.foreignColumns("vnet0")

	plan = l.reconcile(tp, h)
	alloc, err := l.c.CurrentAllocation(tp, h)
	if err != nil {
		t.Fatal(err)
	}
	vlan := strconv.Itoa(int(alloc.LocalVLAN[100]))
	wantChanges(t, plan, "~ port br-int vnet0 (iface-id vm-web-01) bound as web (network tenant-a, tag (none) -> "+vlan+")")
	wantEqual(t, "vnet0 tag", l.get("Port", "vnet0", "tag"), vlan)
	wantEqual(t, "vnet0 bound port", l.get("Port", "vnet0", "external_ids:"+KeyBoundPort), "web")
	wantEqual(t, "vnet0 bound host", l.get("Port", "vnet0", "external_ids:"+KeyBoundHost), "host1")
	if after := l.foreignColumns("vnet0"); after != before {
		t.Errorf("binding changed the foreign rows:\n%s\nwas:\n%s", after, before)
	}
	if l.get("Port", "vnet0", "external_ids:"+KeyOwner) != "" {
		t.Error("the bound port carries KeyOwner: it would count as a row of ours")
	}
	if p := l.planOnly(tp, h); !p.Empty() || len(p.Warnings) != 0 {
		t.Errorf("re-plan once bound: changes %q warnings %q, want none", p.Changes, p.Warnings)
	}
	bs, err := l.c.Bindings(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Interface != "vnet0" || !bs[0].Bound || bs[0].AttachedMAC != "52:54:00:aa:bb:01" || bs[0].OFPort <= 0 || strconv.Itoa(bs[0].Tag) != vlan {
		t.Errorf("Bindings = %+v, want web bound to vnet0 (attached, tag %s, attached-mac 52:54:00:aa:bb:01)", bs, vlan)
	}

	st, err := l.c.Show(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, n := range st.Networks {
		for _, p := range n.Ports {
			shown = append(shown, fmt.Sprintf("%s %s on %q tag %d", n.Name, p.Name, p.Interface, p.Tag))
		}
	}
	if !slices.Contains(shown, fmt.Sprintf(`tenant-a web on "vnet0" tag %s`, vlan)) {
		t.Errorf("show lists %q, want web bound to vnet0 under its file name", shown)
	}

	// Removed from the file: dead VLAN, our keys gone, the row kept.
	plan = l.reconcile(h1(bindTopo("")))
	wantChanges(t, plan, "~ port br-int vnet0 unbound from web (tag "+vlan+" -> 4095)")
	wantEqual(t, "vnet0 tag", l.get("Port", "vnet0", "tag"), "4095")
	if ext := l.get("Port", "vnet0", "external_ids"); strings.Contains(ext, keyPrefix) || !strings.Contains(ext, "owner=libvirt") {
		t.Errorf("vnet0 external_ids after unbinding: %s, want owner=libvirt and none of ours", ext)
	}
	if after := l.foreignColumns("vnet0"); after != before {
		t.Errorf("unbinding changed the foreign rows:\n%s\nwas:\n%s", after, before)
	}
	if ports := l.vsctl("list-ports", "br-int"); !strings.Contains(ports, "vnet0") {
		t.Errorf("vnet0 is gone from br-int: %s", ports)
	}
	if p := l.planOnly(h1(bindTopo(""))); !p.Empty() {
		t.Errorf("re-plan after unbinding: %q, want nothing", p.Changes)
	}
}

// Changing the port's iface_id in the file unbinds the old interface and
// binds the new one; a port named like the interface it binds is not
// refused as "not created by ovs-vxctl"; destroy unbinds and keeps the
// foreign row (and br-int, which holds it).
func TestBindFollowsIfaceIDAndDestroyUnbinds(t *testing.T) {
	l := newLab(t)
	l.vethPair("hxvm1")
	l.reconcile(h1(bindTopo("")))
	l.plugLibvirt("vnet0", "id-a", "52:54:00:aa:bb:01")
	l.plugLibvirt("vnet1", "id-b", "52:54:00:aa:bb:02")

	tp := bindTopo("id-a")
	h := tp.Host("host1")
	l.reconcile(tp, h)
	vlan := l.get("Port", "vnet0", "tag")
	if vlan == "" || vlan == "4095" {
		t.Fatalf("vnet0 tag %q after binding", vlan)
	}

	plan := l.reconcile(h1(bindTopo("id-b")))
	wantChanges(t, plan,
		"~ port br-int vnet1 (iface-id id-b) bound as web (network tenant-a, tag (none) -> "+vlan+")",
		"~ port br-int vnet0 unbound from web (tag "+vlan+" -> 4095)")

	// The file names the port like its interface: still bound, not refused.
	same := topo(topology.ModeLearn)
	addPort(same.Networks[0], same.Host("host1"), "vnet1", topology.PortVM).IfaceID = "id-b"
	if p := l.planOnly(h1(same)); len(p.Changes) != 1 || !strings.Contains(p.Changes[0], "external_ids:"+KeyBoundPort+` "web" -> "vnet1"`) {
		t.Errorf("renaming the bound port in the file: %q, want only %s changed", p.Changes, KeyBoundPort)
	}

	plan, err := l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan.Changes, "~ port br-int vnet1 unbound from web (tag "+vlan+" -> 4095)") {
		t.Errorf("destroy: %q, want vnet1 unbound", plan.Changes)
	}
	wantEqual(t, "vnet1 tag after destroy", l.get("Port", "vnet1", "tag"), "4095")
	if ext := l.get("Port", "vnet1", "external_ids"); strings.Contains(ext, keyPrefix) {
		t.Errorf("vnet1 keeps our keys after destroy: %s", ext)
	}
	if ports := l.vsctl("list-ports", "br-int"); ports != "vnet0\nvnet1" {
		t.Errorf("br-int after destroy holds %q, want only the foreign vnet0 and vnet1", ports)
	}
}

// Interfaces that carry a wanted iface-id but cannot be bound are warnings
// and stay untouched: on another bridge, or a trunk.
func TestBindRefusesWhatItCannotIsolate(t *testing.T) {
	l := newLab(t)
	tp := bindTopo("id-a")
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.reconcile(tp, h)
	l.plugLibvirt("vnet0", "id-a", "52:54:00:aa:bb:01")
	l.vsctl("set", "Port", "vnet0", "vlan_mode=trunk")

	plan := l.reconcile(tp, h)
	if !plan.Empty() || !hasWarning(plan, "interface vnet0 not bound", "vlan_mode trunk") {
		t.Errorf("trunk port: changes %q warnings %q, want none and a warning", plan.Changes, plan.Warnings)
	}
	l.vsctl("del-port", "vnet0")
	l.vsctl("add-br", "br-x", "--", "set", "Bridge", "br-x", "datapath_type=netdev",
		"--", "add-port", "br-x", "vnet0", "--", "set", "Interface", "vnet0", "external_ids:iface-id=id-a")
	plan = l.reconcile(tp, h)
	if !plan.Empty() || !hasWarning(plan, "sits on bridge br-x, not br-int") {
		t.Errorf("port on br-x: changes %q warnings %q, want none and a warning", plan.Changes, plan.Warnings)
	}
	wantEqual(t, "vnet0 tag on br-x", l.get("Port", "vnet0", "tag"), "[]")
}

// A wanted iface-id on an interface that is no VM's, or on a row another
// topology's ovs-vxctl created, or on a trunk without vlan_mode, binds
// nothing: each is a warning and its Port keeps its tag.
func TestBindRefusesNonVMsAndOthersRows(t *testing.T) {
	l := newLab(t)
	tp := bindTopo("id-a")
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.reconcile(tp, h)

	l.plugLibvirt("vnet0", "id-a", "52:54:00:aa:bb:01")
	l.vsctl("set", "Port", "vnet0", "trunks=10,20")
	plan := l.reconcile(tp, h)
	if !plan.Empty() || !hasWarning(plan, "interface vnet0 not bound", "is a trunk") {
		t.Errorf("trunk without vlan_mode: changes %q warnings %q, want none and a warning", plan.Changes, plan.Warnings)
	}
	wantEqual(t, "trunk's tag", l.get("Port", "vnet0", "tag"), "[]")
	l.vsctl("del-port", "vnet0")

	l.vsctl("add-port", "br-int", "hxpatch", "--", "set", "Interface", "hxpatch", "type=patch", "options:peer=nowhere",
		"external_ids:iface-id=id-a")
	plan = l.reconcile(tp, h)
	if !plan.Empty() || !hasWarning(plan, "interface hxpatch not bound", "patch interface") {
		t.Errorf("patch port: changes %q warnings %q, want none and a warning", plan.Changes, plan.Warnings)
	}
	wantEqual(t, "patch port's tag", l.get("Port", "hxpatch", "tag"), "[]")
	l.vsctl("del-port", "hxpatch")

	l.vethPair("hxoth")
	l.vsctl("add-port", "br-int", "hxoth", "--", "set", "Interface", "hxoth", "external_ids:iface-id=id-a",
		"--", "set", "Port", "hxoth", "external_ids:"+KeyOwner+"=other-topo", "external_ids:"+KeyHost+"=host1", "tag=7")
	plan = l.reconcile(tp, h)
	if !plan.Empty() || !hasWarning(plan, "interface hxoth not bound", `topology "other-topo"`) {
		t.Errorf("another topology's port: changes %q warnings %q, want none and a warning", plan.Changes, plan.Warnings)
	}
	wantEqual(t, "another topology's port's tag", l.get("Port", "hxoth", "tag"), "7")
}

// Two interfaces carrying one iface-id: the one already bound stays bound
// and the newcomer is left alone (a warning) until the first is unplugged;
// when neither was bound, neither is.
func TestBindDuplicateIfaceID(t *testing.T) {
	l := newLab(t)
	tp := bindTopo("id-a")
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.reconcile(tp, h)
	l.plugLibvirt("vnet0", "id-a", "52:54:00:aa:bb:01")
	l.reconcile(tp, h)
	vlan := l.get("Port", "vnet0", "tag")
	if vlan == "[]" || vlan == "4095" {
		t.Fatalf("vnet0 tag %q after binding", vlan)
	}

	l.plugLibvirt("vnet1", "id-a", "52:54:00:aa:bb:02")
	plan := l.reconcile(tp, h)
	if !plan.Empty() || !hasWarning(plan, "carried by interfaces vnet0, vnet1", "vnet0 stays bound") {
		t.Errorf("second interface with id-a: changes %q warnings %q, want none and a warning", plan.Changes, plan.Warnings)
	}
	wantEqual(t, "vnet0 tag", l.get("Port", "vnet0", "tag"), vlan)
	wantEqual(t, "vnet1 tag", l.get("Port", "vnet1", "tag"), "[]")

	l.vsctl("del-port", "vnet0")
	plan = l.reconcile(tp, h)
	wantChanges(t, plan, "~ port br-int vnet1 (iface-id id-a) bound as web (network tenant-a, tag (none) -> "+vlan+")")

	// Neither bound yet: a third interface with the same id, vnet1 unbound
	// by removing the port from the file, then the port back.
	l.reconcile(h1(bindTopo("")))
	l.vsctl("remove", "Port", "vnet1", "tag", "4095")
	l.plugLibvirt("vnet2", "id-a", "52:54:00:aa:bb:03")
	plan = l.reconcile(tp, h)
	if !plan.Empty() || !hasWarning(plan, "carried by interfaces vnet1, vnet2", "none bound") {
		t.Errorf("two unbound interfaces with id-a: changes %q warnings %q, want none and a warning", plan.Changes, plan.Warnings)
	}
}

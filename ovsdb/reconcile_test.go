package ovsdb

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

var identifier = regexp.MustCompile(`^[_a-zA-Z][_a-zA-Z0-9]*$`)

// wantChanges fails unless plan describes exactly these changes, in order.
func wantChanges(t *testing.T, plan *Plan, want ...string) {
	t.Helper()
	if !slices.Equal(plan.Changes, want) {
		t.Fatalf("changes:\n  %s\nwant:\n  %s", strings.Join(plan.Changes, "\n  "), strings.Join(want, "\n  "))
	}
	if plan.Empty() != (len(want) == 0) {
		t.Fatalf("Empty() = %v with %d ops for %d changes", plan.Empty(), len(plan.Ops), len(want))
	}
}

// wantEqual compares what ovs-vsctl prints with want.
func wantEqual(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func TestApplyCreatesEverythingOnceWithOwnerMarks(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.vethPair("hxvm1")

	plan := l.reconcile(tp, h)
	dpid := fmt.Sprintf("%016x", topology.DatapathID("hxtest", "host1"))
	intDPID := fmt.Sprintf("%016x", topology.BridgeDatapathID("hxtest", "host1", topology.BridgeInt))
	if intDPID == dpid {
		t.Fatalf("br-int and br-tun get the same datapath ID %s", dpid)
	}
	wantChanges(t, plan,
		"+ bridge br-int (datapath_type=netdev datapath-id="+intDPID+")",
		"+ port br-int patch-int (patch peer=patch-tun)",
		"+ port br-int hxvm1 (vm network=tenant-a vni=100 tag=1)",
		"+ port br-int hxint1 (internal network=tenant-b vni=200 tag=2)",
		"+ bridge br-tun (datapath_type=netdev datapath-id="+dpid+")",
		"+ port br-tun patch-tun (patch peer=patch-int ofport=1)",
		"+ port br-tun vx-host2 (vxlan remote_ip=192.168.50.2 dst_port=4789 key=flow ofport=10)",
		"+ port br-tun vx-host3 (vxlan remote_ip=192.168.50.3 dst_port=8472 key=flow ofport=11)",
	)

	// Named UUIDs must be identifiers for OVSDB.
	for _, op := range plan.Ops {
		if op.UUIDName != "" && !identifier.MatchString(op.UUIDName) {
			t.Errorf("named UUID %q is not an identifier", op.UUIDName)
		}
	}

	// Idempotent: a second plan is empty, and applying it does nothing.
	again := l.planOnly(tp, h)
	wantChanges(t, again)
	if err := l.c.Apply(l.ctx, again); err != nil {
		t.Fatalf("applying an empty plan: %v", err)
	}

	// What ovs-vsctl sees.
	wantEqual(t, "list-br", l.vsctl("list-br"), "br-int\nbr-tun")
	wantEqual(t, "list-ports br-int", l.vsctl("list-ports", "br-int"), "hxint1\nhxvm1\npatch-int")
	wantEqual(t, "list-ports br-tun", l.vsctl("list-ports", "br-tun"), "patch-tun\nvx-host2\nvx-host3")
	for _, br := range []string{"br-int", "br-tun"} {
		wantEqual(t, br+" datapath_type", l.get("bridge", br, "datapath_type"), "netdev")
		wantEqual(t, br+" fail_mode", l.get("bridge", br, "fail_mode"), "secure")
		wantEqual(t, br+" protocols", l.get("bridge", br, "protocols"), "[OpenFlow10, OpenFlow13]")
		wantEqual(t, br+" disable-in-band", l.get("bridge", br, "other_config:disable-in-band"), `"true"`)
		wantEqual(t, br+" controller", l.get("bridge", br, "controller"), "[]")
	}
	// ovs-vswitchd took both requested datapath IDs.
	wantEqual(t, "br-tun datapath_id", l.get("bridge", "br-tun", "datapath_id"), `"`+dpid+`"`)
	wantEqual(t, "br-int datapath_id", l.get("bridge", "br-int", "datapath_id"), `"`+intDPID+`"`)
	wantEqual(t, "br-int other_config", l.get("bridge", "br-int", "other_config"), `{datapath-id="`+intDPID+`", disable-in-band="true"}`)
	wantEqual(t, "local VLANs", l.get("bridge", "br-int", "external_ids:ovs-vxctl-local-vlans"), `"100=1,200=2"`)
	wantEqual(t, "hxvm1 tag", l.get("port", "hxvm1", "tag"), "1")
	wantEqual(t, "hxvm1 vlan_mode", l.get("port", "hxvm1", "vlan_mode"), "access")
	wantEqual(t, "hxvm1 type", l.get("interface", "hxvm1", "type"), `""`)
	wantEqual(t, "hxint1 tag", l.get("port", "hxint1", "tag"), "2")
	wantEqual(t, "hxint1 type", l.get("interface", "hxint1", "type"), "internal")
	wantEqual(t, "patch-int peer", l.get("interface", "patch-int", "options:peer"), "patch-tun")
	wantEqual(t, "patch-tun peer", l.get("interface", "patch-tun", "options:peer"), "patch-int")
	wantEqual(t, "patch-tun ofport", l.get("interface", "patch-tun", "ofport"), "1")
	wantEqual(t, "vx-host2 options", l.get("interface", "vx-host2", "options"), `{dst_port="4789", key=flow, remote_ip="192.168.50.2"}`)
	wantEqual(t, "vx-host3 options", l.get("interface", "vx-host3", "options"), `{dst_port="8472", key=flow, remote_ip="192.168.50.3"}`)
	wantEqual(t, "vx-host2 type", l.get("interface", "vx-host2", "type"), "vxlan")
	wantEqual(t, "vx-host2 ofport", l.get("interface", "vx-host2", "ofport"), "10")
	wantEqual(t, "vx-host3 ofport", l.get("interface", "vx-host3", "ofport"), "11")
	wantEqual(t, "vx-host3 peer mark", l.get("port", "vx-host3", "external_ids:ovs-vxctl-peer"), "host3")
	wantEqual(t, "vx-host3 iface peer mark", l.get("interface", "vx-host3", "external_ids:ovs-vxctl-peer"), "host3")
	wantEqual(t, "hxvm1 network mark", l.get("port", "hxvm1", "external_ids:ovs-vxctl-network"), "tenant-a")
	wantEqual(t, "hxint1 vni mark", l.get("interface", "hxint1", "external_ids:ovs-vxctl-vni"), `"200"`)

	// Every row we created carries the owner and host marks.
	for _, table := range []string{"bridge", "port", "interface"} {
		for _, line := range strings.Split(l.vsctl("--format=csv", "--data=bare", "--no-headings", "--columns=name,external_ids", "list", table), "\n") {
			if !strings.Contains(line, "ovs-vxctl-owner=hxtest") || !strings.Contains(line, "ovs-vxctl-host=host1") {
				t.Errorf("%s row without our marks: %s", table, line)
			}
		}
	}

	// Read-back helpers agree with ovs-vsctl.
	for port, want := range map[string]int{"patch-tun": 1, "vx-host2": 10, "vx-host3": 11} {
		if got, err := l.c.OFPort(l.ctx, "br-tun", port); err != nil || got != want {
			t.Errorf("OFPort(br-tun, %s) = %d, %v; want %d", port, got, err, want)
		}
	}
	if _, err := l.c.OFPort(l.ctx, "br-tun", "hxvm1"); err == nil {
		t.Error("OFPort found hxvm1 on br-tun")
	}
	alloc, err := l.c.CurrentAllocation(tp, h)
	if err != nil {
		t.Fatal(err)
	}
	want := topology.Allocation{
		LocalVLAN:    map[uint32]uint16{100: 1, 200: 2},
		TunnelOFPort: map[string]uint32{"host2": 10, "host3": 11},
	}
	if !alloc.Equal(want) {
		t.Errorf("CurrentAllocation = %+v, want %+v", alloc, want)
	}

	st, err := l.c.Show(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Bridges) != 2 || st.Bridges[1].Name != "br-tun" || st.Bridges[1].DatapathID != dpid ||
		st.Bridges[0].Name != "br-int" || st.Bridges[0].DatapathID != intDPID || st.Bridges[0].FailMode != "secure" {
		t.Errorf("Show bridges = %+v", st.Bridges)
	}
	if len(st.Peers) != 2 {
		t.Fatalf("Show peers = %+v", st.Peers)
	}
	if p := st.Peers[1]; p.Peer != "host3" || p.Port != "vx-host3" || p.RemoteIP != "192.168.50.3" || p.DstPort != 8472 || p.OFPort != 11 || p.State != "up" {
		t.Errorf("Show peer host3 = %+v", p)
	}
	if len(st.Networks) != 2 {
		t.Fatalf("Show networks = %+v", st.Networks)
	}
	a, b := st.Networks[0], st.Networks[1]
	if a.Name != "tenant-a" || a.VNI != 100 || a.LocalVLAN != 1 || len(a.Ports) != 1 || a.Ports[0].Name != "hxvm1" || a.Ports[0].Type != "vm" || a.Ports[0].OFPort <= 0 {
		t.Errorf("Show network tenant-a = %+v", a)
	}
	// OVS creates internal ports down.
	if b.Name != "tenant-b" || b.VNI != 200 || b.LocalVLAN != 2 || len(b.Ports) != 1 || b.Ports[0].Name != "hxint1" || b.Ports[0].Type != "internal" || b.Ports[0].State != "admin down, link down" {
		t.Errorf("Show network tenant-b = %+v", b)
	}
	// Show follows the interface's state as ovs-vswitchd reports it.
	ovsruntest.Run(t, l.ovs.NetNS, "ip", "link", "set", "hxint1", "up")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := l.c.Show(l.ctx, tp, h)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Networks[1].Ports[0].State; got == "up" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("hxint1 state = %q after ip link set up", got)
		}
	}
	// A missing kernel interface shows as the error OVS reports.
	tp.Networks[0].Ports[0].Name = "hxnone"
	l.reconcile(tp, h)
	st, err = l.c.Show(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Networks[0].Ports[0]; p.Name != "hxnone" || p.OFPort != -1 || !strings.Contains(p.State, "error: could not open network device hxnone") {
		t.Errorf("Show of a port without its interface = %+v", p)
	}
	if _, err := l.c.OFPort(l.ctx, "br-int", "hxnone"); err == nil || !strings.Contains(err.Error(), "could not attach it") {
		t.Errorf("OFPort of a port without its interface: %v", err)
	}
}

func TestChangesKeepAllocationAndUpdateInPlace(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.vethPair("hxvm4")
	l.reconcile(tp, h)
	vmUUID := l.get("port", "hxvm1", "_uuid")
	tunUUID := l.get("interface", "vx-host3", "_uuid")

	// A new network (VNI 50, below the others) with a new peer: existing
	// VLANs and tunnel ofports stay, the newcomers get the free numbers.
	h4 := &topology.Host{Name: "host4", VTEP: tp.Hosts[0].VTEP.Next().Next().Next().Next(), Managed: true,
		Mode: topology.ModeLearn, DstPort: 4789, Datapath: topology.DatapathNetdev}
	tp.Hosts = append(tp.Hosts, h4)
	nc := &topology.Network{Name: "tenant-c", VNI: 50}
	addPort(nc, h, "hxvm4", topology.PortVM)
	addPort(nc, h4, "vm5", topology.PortVM)
	tp.Networks = append(tp.Networks, nc)
	plan := l.reconcile(tp, h)
	wantChanges(t, plan,
		`~ bridge br-int external_ids:ovs-vxctl-local-vlans "100=1,200=2" -> "50=3,100=1,200=2"`,
		"+ port br-int hxvm4 (vm network=tenant-c vni=50 tag=3)",
		"+ port br-tun vx-host4 (vxlan remote_ip=192.168.50.5 dst_port=4789 key=flow ofport=12)",
	)
	wantEqual(t, "hxvm1 tag", l.get("port", "hxvm1", "tag"), "1")
	wantEqual(t, "hxint1 tag", l.get("port", "hxint1", "tag"), "2")
	wantEqual(t, "vx-host2 ofport", l.get("interface", "vx-host2", "ofport"), "10")
	wantEqual(t, "vx-host3 ofport", l.get("interface", "vx-host3", "ofport"), "11")
	wantEqual(t, "vx-host4 ofport", l.get("interface", "vx-host4", "ofport"), "12")

	// Removing peer host2 (its only shared network loses host2's port)
	// removes only its tunnel port; vx-host4 keeps ofport 12.
	tp.Networks[0].Ports = tp.Networks[0].Ports[:1]
	plan = l.reconcile(tp, h)
	wantChanges(t, plan, "- port br-tun vx-host2")
	wantEqual(t, "list-ports br-tun", l.vsctl("list-ports", "br-tun"), "patch-tun\nvx-host3\nvx-host4")
	wantEqual(t, "vx-host4 ofport", l.get("interface", "vx-host4", "ofport"), "12")
	wantEqual(t, "vx-host3 ofport", l.get("interface", "vx-host3", "ofport"), "11")

	// A different VLAN and a different dst_port are updated in place.
	alloc, err := l.c.CurrentAllocation(tp, h)
	if err != nil {
		t.Fatal(err)
	}
	alloc.LocalVLAN[100] = 7
	tp.Hosts[2].DstPort = 4790
	plan, err = l.c.Plan(l.ctx, tp, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, plan,
		`~ bridge br-int external_ids:ovs-vxctl-local-vlans "50=3,100=1,200=2" -> "50=3,100=7,200=2"`,
		"~ port br-int hxvm1 tag 1 -> 7",
		`~ port br-tun vx-host3 options:dst_port "8472" -> "4790"`,
	)
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "hxvm1 tag", l.get("port", "hxvm1", "tag"), "7")
	wantEqual(t, "vx-host3 dst_port", l.get("interface", "vx-host3", "options:dst_port"), `"4790"`)
	wantEqual(t, "hxvm1 row", l.get("port", "hxvm1", "_uuid"), vmUUID)
	wantEqual(t, "vx-host3 row", l.get("interface", "vx-host3", "_uuid"), tunUUID)

	// Removing a whole network removes its port and its local VLAN.
	tp.Networks = tp.Networks[:2]
	plan = l.reconcile(tp, h)
	wantChanges(t, plan,
		`~ bridge br-int external_ids:ovs-vxctl-local-vlans "50=3,100=7,200=2" -> "100=7,200=2"`,
		"- port br-int hxvm4",
		"- port br-tun vx-host4",
	)
	wantChanges(t, l.planOnly(tp, h))
}

func TestForeignRowsSurviveApplyAndDestroy(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.vsctl("add-br", "br-foreign", "--", "set", "bridge", "br-foreign", "datapath_type=netdev",
		"--", "add-port", "br-foreign", "hxf1", "--", "set", "interface", "hxf1", "type=internal")
	l.reconcile(tp, h)
	// A port added by hand to our br-int, and a key someone added to one
	// of our rows.
	l.vsctl("add-port", "br-int", "hxf2", "--", "set", "interface", "hxf2", "type=internal")
	l.vsctl("set", "port", "hxvm1", "external_ids:someone=else")
	wantChanges(t, l.planOnly(tp, h))

	// Changing our port next to the foreign one leaves it alone.
	tp.Networks[1].Ports = tp.Networks[1].Ports[1:] // hxint1 goes
	l.reconcile(tp, h)
	wantEqual(t, "list-ports br-int", l.vsctl("list-ports", "br-int"), "hxf2\nhxvm1\npatch-int")
	wantEqual(t, "foreign key", l.get("port", "hxvm1", "external_ids:someone"), "else")

	plan, err := l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, plan,
		"- port br-int hxvm1",
		"- port br-int patch-int",
		"- bridge br-tun",
		"- port br-tun patch-tun",
		"- port br-tun vx-host2",
	)
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "bridge br-int kept") || !strings.Contains(plan.Notes[0], "hxf2") {
		t.Errorf("notes = %q", plan.Notes)
	}
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "list-br", l.vsctl("list-br"), "br-foreign\nbr-int")
	wantEqual(t, "list-ports br-foreign", l.vsctl("list-ports", "br-foreign"), "hxf1")
	wantEqual(t, "list-ports br-int", l.vsctl("list-ports", "br-int"), "hxf2")
	wantEqual(t, "controllers", l.vsctl("list", "controller"), "")
	// Nothing but br-int's own rows carry our marks any more.
	marked := l.vsctl("--columns=name", "--data=bare", "--no-headings", "find", "port", "external_ids:ovs-vxctl-owner=hxtest")
	wantEqual(t, "ports still marked", marked, "br-int")
	again, err := l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, again)

	// Once the foreign port is gone, destroy removes br-int too.
	l.vsctl("del-port", "br-int", "hxf2")
	plan, err = l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, plan, "- bridge br-int")
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "list-br", l.vsctl("list-br"), "br-foreign")
	wantEqual(t, "list-ports br-foreign", l.vsctl("list-ports", "br-foreign"), "hxf1")
}

func TestDestroyRemovesOurRows(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeController)
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.reconcile(tp, h)
	wantEqual(t, "controllers before destroy", l.vsctl("--columns=target", "--data=bare", "--no-headings", "list", "controller"),
		"tcp:127.0.0.1:6653\n\ntcp:127.0.0.1:6653")
	// Another host of another topology on the same switch is not ours.
	plan, err := l.c.PlanDestroy(l.ctx, &topology.Topology{Name: "other"}, &topology.Host{Name: "host1"})
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, plan)

	plan, err = l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, plan,
		"- bridge br-int",
		"- port br-int hxint1",
		"- port br-int hxvm1",
		"- port br-int patch-int",
		"- controller br-int tcp:127.0.0.1:6653",
		"- bridge br-tun",
		"- port br-tun patch-tun",
		"- port br-tun vx-host2",
		"- port br-tun vx-host3",
		"- controller br-tun tcp:127.0.0.1:6653",
	)
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "list-br", l.vsctl("list-br"), "")
	for _, table := range []string{"port", "interface", "controller"} {
		wantEqual(t, table+" rows", l.vsctl("--columns=_uuid", "list", table), "")
	}
	alloc, err := l.c.CurrentAllocation(tp, h)
	if err != nil || len(alloc.LocalVLAN) != 0 || len(alloc.TunnelOFPort) != 0 {
		t.Errorf("CurrentAllocation after destroy = %+v, %v", alloc, err)
	}
}

func TestForeignNamesMakePlanFail(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.vethPair("hxvm1")

	l.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
	before := l.vsctl("show")
	alloc, err := tp.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.c.Plan(l.ctx, tp, h, alloc)
	if err == nil || !strings.Contains(err.Error(), "bridge br-int already exists and it was not created by ovs-vxctl") {
		t.Fatalf("Plan with a foreign br-int: %v", err)
	}
	wantEqual(t, "database", l.vsctl("show"), before)

	// A VM port name already used on a foreign bridge.
	l.vsctl("del-br", "br-int")
	l.vsctl("add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev", "--", "add-port", "br-x", "hxvm1")
	_, err = l.c.Plan(l.ctx, tp, h, alloc)
	if err == nil || !strings.Contains(err.Error(), "port hxvm1 already exists on bridge br-x and it was not created by ovs-vxctl") {
		t.Fatalf("Plan with hxvm1 on br-x: %v", err)
	}

	// A bridge of the same name that another topology owns.
	l.vsctl("del-br", "br-x")
	other := topo(topology.ModeLearn)
	other.Name = "other"
	l.reconcile(other, other.Host("host1"))
	_, err = l.c.Plan(l.ctx, tp, h, alloc)
	if err == nil || !strings.Contains(err.Error(), `bridge br-tun already exists and it belongs to topology "other" host "host1"`) {
		t.Fatalf("Plan over another topology: %v", err)
	}

	// A plan made before someone else creates br-int fails at Apply and
	// changes nothing.
	plan, err := l.c.PlanDestroy(l.ctx, other, other.Host("host1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	plan, err = l.c.Plan(l.ctx, tp, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	l.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
	before = l.vsctl("show")
	err = l.c.Apply(l.ctx, plan)
	if err == nil || !strings.Contains(err.Error(), "Bridge br-int was created by someone else after the plan was made") {
		t.Fatalf("Apply after a racing add-br: %v", err)
	}
	wantEqual(t, "database", l.vsctl("show"), before)
}

// controllerOf returns the UUID of bridge br's only controller.
func (l *lab) controllerOf(br string) string {
	l.t.Helper()
	ctrl := strings.Trim(l.get("bridge", br, "controller"), "[]")
	if ctrl == "" || strings.Contains(ctrl, ",") {
		l.t.Fatalf("bridge %s controllers = [%s], want exactly one", br, ctrl)
	}
	return ctrl
}

func TestControllerMode(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeController)
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	plan := l.reconcile(tp, h)
	limits := "(controller_rate_limit=1000/s controller_burst_limit=250 inactivity_probe=5000ms)"
	intID := topology.BridgeDatapathID("hxtest", "host1", topology.BridgeInt)
	tunID := topology.DatapathID("hxtest", "host1")
	wantChanges(t, plan,
		fmt.Sprintf("+ bridge br-int (datapath_type=netdev datapath-id=%016x)", intID),
		"+ port br-int patch-int (patch peer=patch-tun)",
		"+ port br-int hxvm1 (vm network=tenant-a vni=100 tag=1)",
		"+ port br-int hxint1 (internal network=tenant-b vni=200 tag=2)",
		"+ controller br-int tcp:127.0.0.1:6653 "+limits,
		fmt.Sprintf("+ bridge br-tun (datapath_type=netdev datapath-id=%016x)", tunID),
		"+ port br-tun patch-tun (patch peer=patch-int ofport=1)",
		"+ port br-tun vx-host2 (vxlan remote_ip=192.168.50.2 dst_port=4789 key=flow ofport=10)",
		"+ port br-tun vx-host3 (vxlan remote_ip=192.168.50.3 dst_port=8472 key=flow ofport=11)",
		"+ controller br-tun tcp:127.0.0.1:6653 "+limits,
	)
	wantChanges(t, l.planOnly(tp, h))
	for _, id := range []uint64{intID, tunID} {
		if id>>56 != topology.DatapathIDTopByte {
			t.Errorf("datapath ID %016x does not start with %02x", id, topology.DatapathIDTopByte)
		}
	}
	// ovs-vswitchd runs each bridge under its own requested datapath ID.
	wantEqual(t, "br-tun datapath_id", l.get("bridge", "br-tun", "datapath_id"), fmt.Sprintf(`"%016x"`, tunID))
	wantEqual(t, "br-int datapath_id", l.get("bridge", "br-int", "datapath_id"), fmt.Sprintf(`"%016x"`, intID))

	// One Controller row per bridge, each with the same settings.
	ctrls := map[string]string{}
	for _, br := range []string{"br-int", "br-tun"} {
		ctrl := l.controllerOf(br)
		ctrls[br] = ctrl
		wantEqual(t, br+" target", l.get("controller", ctrl, "target"), `"tcp:127.0.0.1:6653"`)
		wantEqual(t, br+" connection_mode", l.get("controller", ctrl, "connection_mode"), "out-of-band")
		wantEqual(t, br+" controller_rate_limit", l.get("controller", ctrl, "controller_rate_limit"), "1000")
		wantEqual(t, br+" controller_burst_limit", l.get("controller", ctrl, "controller_burst_limit"), "250")
		wantEqual(t, br+" inactivity_probe", l.get("controller", ctrl, "inactivity_probe"), "5000")
		wantEqual(t, br+" controller marks", l.get("controller", ctrl, "external_ids"), `{ovs-vxctl-host=host1, ovs-vxctl-owner=hxtest}`)
	}
	if ctrls["br-int"] == ctrls["br-tun"] {
		t.Errorf("br-int and br-tun share controller row %s", ctrls["br-int"])
	}
	rows := strings.Fields(l.vsctl("--columns=_uuid", "--data=bare", "--no-headings", "list", "controller"))
	slices.Sort(rows)
	wantEqual(t, "controller rows", strings.Join(rows, " "), strings.Join(slices.Sorted(maps.Values(ctrls)), " "))
	st, err := l.c.Show(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	for i, br := range []string{"br-int", "br-tun"} {
		if b := st.Bridges[i]; b.Name != br || len(b.Controllers) != 1 || b.Controllers[0].Target != "tcp:127.0.0.1:6653" {
			t.Errorf("Show %s = %+v", br, b)
		}
	}

	// Settings changed by hand (or absent, as on rows made before they
	// existed) are put back in place.
	l.vsctl("set", "controller", ctrls["br-int"], "controller_rate_limit=500", "--", "clear", "controller", ctrls["br-tun"], "inactivity_probe")
	plan = l.reconcile(tp, h)
	wantChanges(t, plan,
		"~ controller br-int controller_rate_limit 500 -> 1000",
		"~ controller br-tun inactivity_probe (none) -> 5000",
	)
	wantEqual(t, "br-int controller_rate_limit", l.get("controller", ctrls["br-int"], "controller_rate_limit"), "1000")
	wantEqual(t, "br-tun inactivity_probe", l.get("controller", ctrls["br-tun"], "inactivity_probe"), "5000")

	// A new controller address updates both rows in place.
	tp.Controller = "tcp:127.0.0.1:6654"
	plan = l.reconcile(tp, h)
	wantChanges(t, plan,
		"~ controller br-int target tcp:127.0.0.1:6653 -> tcp:127.0.0.1:6654",
		"~ controller br-tun target tcp:127.0.0.1:6653 -> tcp:127.0.0.1:6654",
	)
	for _, br := range []string{"br-int", "br-tun"} {
		wantEqual(t, br+" controller row", l.controllerOf(br), ctrls[br])
		wantEqual(t, br+" target", l.get("controller", ctrls[br], "target"), `"tcp:127.0.0.1:6654"`)
	}

	// Back to learn mode: the controllers go, the datapath IDs stay.
	for _, host := range tp.Hosts {
		host.Mode = topology.ModeLearn
	}
	plan = l.reconcile(tp, h)
	wantChanges(t, plan,
		"- controller br-int tcp:127.0.0.1:6654",
		"- controller br-tun tcp:127.0.0.1:6654",
	)
	for _, br := range []string{"br-int", "br-tun"} {
		wantEqual(t, br+" controller", l.get("bridge", br, "controller"), "[]")
	}
	wantEqual(t, "controllers", l.vsctl("list", "controller"), "")
	wantEqual(t, "br-tun datapath_id", l.get("bridge", "br-tun", "datapath_id"), fmt.Sprintf(`"%016x"`, tunID))
	wantEqual(t, "br-int datapath_id", l.get("bridge", "br-int", "datapath_id"), fmt.Sprintf(`"%016x"`, intID))
}

func TestReconnectAfterOvsdbServerRestart(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.reconcile(tp, h)

	// Kill ovsdb-server (the process this test started) and start it
	// again on the same database file.
	pid := ovsruntest.Pid(t, l.ovs, "ovsdb-server")
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); l.ovs.Running("ovsdb-server"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("ovsdb-server did not exit")
		}
	}
	// Let the client notice and start its reconnection attempts.
	time.Sleep(300 * time.Millisecond)
	if err := l.ovs.Start(l.ctx, false); err != nil {
		t.Fatalf("restarting ovsdb-server: %v", err)
	}

	// The same client reads the same state, then applies a change that
	// ovs-vswitchd (which reconnected too) acknowledges.
	wantChanges(t, l.planOnly(tp, h))
	tp.Networks[1].Ports = tp.Networks[1].Ports[:1] // host3 loses its port: no more peer host3
	plan := l.reconcile(tp, h)
	wantChanges(t, plan, "- port br-tun vx-host3")
	wantEqual(t, "list-ports br-tun", l.vsctl("list-ports", "br-tun"), "patch-tun\nvx-host2")

	// Without ovs-vswitchd, Apply commits but says the switch did not
	// follow; with NoWait it does not wait.
	if err := l.ovs.StopVswitchd(); err != nil {
		t.Fatal(err)
	}
	tp.Networks[0].Ports = tp.Networks[0].Ports[:1] // host2 goes too
	plan = l.planOnly(tp, h)
	wantChanges(t, plan, "- port br-tun vx-host2")
	l.c.WaitTimeout = 300 * time.Millisecond
	err := l.c.Apply(l.ctx, plan)
	if err == nil || !strings.Contains(err.Error(), "ovs-vswitchd did not apply them within 300ms") {
		t.Fatalf("Apply without ovs-vswitchd: %v", err)
	}
	wantChanges(t, l.planOnly(tp, h)) // committed all the same
	tp.Networks[1].Ports = tp.Networks[1].Ports[1:]
	plan = l.planOnly(tp, h)
	wantChanges(t, plan,
		`~ bridge br-int external_ids:ovs-vxctl-local-vlans "100=1,200=2" -> "100=1"`,
		"- port br-int hxint1")
	// With a long wait timeout, only NoWait can make Apply return quickly
	// (a margin wide enough for a loaded machine).
	l.c.NoWait = true
	l.c.WaitTimeout = time.Minute
	start := time.Now()
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatalf("Apply with NoWait: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Apply with NoWait took %s: it waited for ovs-vswitchd", d)
	}
	wantChanges(t, l.planOnly(tp, h))
	l.c.NoWait = false
	l.c.WaitTimeout = DefaultWaitTimeout
	if err := l.ovs.StartVswitchd(l.ctx); err != nil {
		t.Fatal(err)
	}
	if of, err := l.c.OFPort(l.ctx, "br-tun", "patch-tun"); err != nil || of != 1 {
		t.Errorf("OFPort(patch-tun) after restarting ovs-vswitchd = %d, %v", of, err)
	}
}

// Destroy keeps a bridge of ours that holds a controller or a mirror
// someone else added: deleting the bridge would delete those rows too.
func TestDestroyKeepsBridgesWithForeignAttachments(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.vethPair("hxvm1")
	l.reconcile(tp, h)
	l.vsctl("--", "--id=@c", "create", "Controller", "target=tcp\\:127.0.0.1\\:6999", "--", "add", "Bridge", "br-tun", "controller", "@c")
	l.vsctl("--", "--id=@m", "create", "Mirror", "name=hxm0", "select-all=true", "--", "add", "Bridge", "br-int", "mirrors", "@m")

	plan, err := l.c.PlanDestroy(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Changes {
		if strings.HasPrefix(c, "- bridge") {
			t.Errorf("destroy removes a bridge with foreign rows: %q", c)
		}
	}
	for _, want := range [][2]string{{"bridge br-tun kept", "controller tcp:127.0.0.1:6999"}, {"bridge br-int kept", "1 mirrors"}} {
		if !slices.ContainsFunc(plan.Notes, func(n string) bool { return strings.Contains(n, want[0]) && strings.Contains(n, want[1]) }) {
			t.Errorf("notes %q: want one with %q and %q", plan.Notes, want[0], want[1])
		}
	}
	if err := l.c.Apply(l.ctx, plan); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "foreign controller", l.vsctl("--columns=target", "--data=bare", "--no-headings", "list", "controller"), "tcp:127.0.0.1:6999")
	wantEqual(t, "foreign mirror", l.vsctl("--columns=name", "--data=bare", "--no-headings", "list", "mirror"), "hxm0")
}

package flows

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// testTopology: tenant-a on host1..3, tenant-b on host1 and host3 only,
// local-only on host2 only.
func testTopology() *topology.Topology {
	t := &topology.Topology{Name: "t"}
	for i, n := range []string{"host1", "host2", "host3"} {
		t.Hosts = append(t.Hosts, &topology.Host{Name: n, VTEP: netip.AddrFrom4([4]byte{192, 168, 50, byte(i + 1)}),
			Managed: true, Mode: topology.ModeLearn, DstPort: 4789, Datapath: topology.DatapathNetdev, LearnTimeout: 300})
	}
	add := func(name string, vni uint32, hosts ...int) {
		n := &topology.Network{Name: name, VNI: vni}
		for _, h := range hosts {
			n.Ports = append(n.Ports, &topology.Port{Network: n, Host: t.Hosts[h], Name: name[:1] + t.Hosts[h].Name[4:], Type: topology.PortVM})
		}
		t.Networks = append(t.Networks, n)
	}
	add("tenant-b", 200, 0, 2)
	add("tenant-a", 100, 0, 1, 2)
	add("local", 300, 1)
	return t
}

func compileHost(t *testing.T, topo *topology.Topology, host string) Program {
	t.Helper()
	h := topo.Host(host)
	alloc, err := topo.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(topo, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(fl []Flow) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.String()
	}
	return out
}

func TestCompileIsDeterministic(t *testing.T) {
	a := compileHost(t, testTopology(), "host1")
	b := compileHost(t, testTopology(), "host1")
	if !slices.Equal(lines(a.Tun), lines(b.Tun)) || !slices.Equal(lines(a.Int), lines(b.Int)) {
		t.Fatal("two compilations of the same input differ")
	}
}

func TestGotoTargetsAreDeclared(t *testing.T) {
	ctl := testTopology()
	for _, h := range ctl.Hosts {
		h.Mode = topology.ModeController
	}
	for _, host := range []string{"host1", "host2", "host3"} {
		alloc := mustAlloc(t, ctl, host)
		eps := []Endpoint{{VNI: 100, MAC: mac("52:54:00:00:00:01"), Host: "host1", IPs: []netip.Addr{netip.MustParseAddr("10.1.1.1")}},
			{VNI: 100, MAC: mac("52:54:00:00:00:02"), Host: "host2", IPs: []netip.Addr{netip.MustParseAddr("10.1.1.2")}}}
		all := append(compileHost(t, testTopology(), host).Tun, compileHost(t, ctl, host).Tun...)
		all = append(all, CompileEndpoints(ctl, ctl.Host(host), alloc, eps)...)
		for _, f := range all {
			tb := PipelineTable(f.Table)
			if tb == nil {
				t.Fatalf("%s: flow in undeclared table: %s", host, f)
			}
			for _, a := range f.Actions {
				if g, ok := a.(GotoTable); ok && !slices.Contains(tb.Next, g.Table) {
					t.Errorf("%s: table %d may not continue in %d: %s", host, f.Table, g.Table, f)
				}
			}
		}
	}
}

func TestEveryTableHasItsMissFlow(t *testing.T) {
	learn := compileHost(t, testTopology(), "host2")
	ctl := testTopology()
	for _, h := range ctl.Hosts {
		h.Mode = topology.ModeController
	}
	controller := compileHost(t, ctl, "host2")
	for _, tb := range Pipeline() {
		if tb.Unreached {
			for _, f := range append(learn.Tun, controller.Tun...) {
				if f.Table == tb.ID {
					t.Errorf("Compile put a flow in unreached table %d: %s", tb.ID, f)
				}
			}
			continue
		}
		p := learn
		if tb.ControllerOnly {
			p = controller
			for _, f := range learn.Tun {
				if f.Table == tb.ID {
					t.Errorf("learn mode has a flow in controller-only table %d: %s", tb.ID, f)
				}
			}
		}
		found := false
		for _, f := range p.Tun {
			if f.Table == tb.ID && f.Priority == PriorityMiss && f.Match.String() == "" {
				found = true
				want := "drop"
				if tb.Miss == MissNext {
					want = "goto_table:21"
				}
				if got := FormatActions(f.Actions); got != want {
					t.Errorf("table %d miss: %s, want %s", tb.ID, got, want)
				}
			}
		}
		if !found {
			t.Errorf("table %d has no miss flow", tb.ID)
		}
	}
}

// From a tunnel, frames go to br-int only: never to another tunnel, never to
// the flood table.
func TestNoTunnelToTunnelFlooding(t *testing.T) {
	for _, host := range []string{"host1", "host2", "host3"} {
		for _, f := range compileHost(t, testTopology(), host).Tun {
			if f.Table != TableFromTun {
				continue
			}
			for _, a := range f.Actions {
				switch a := a.(type) {
				case GotoTable:
					t.Errorf("%s: table 2 continues in %d: %s", host, a.Table, f)
				case Output:
					if a.Port != topology.PatchOFPort {
						t.Errorf("%s: table 2 outputs to %d: %s", host, a.Port, f)
					}
				}
			}
		}
	}
}

// Each network floods to exactly the peers with ports in it; a network whose
// ports are all on one host has no flood flow at all.
func TestFloodListsAreExact(t *testing.T) {
	topo := testTopology()
	h1 := topo.Host("host1")
	alloc, _ := topo.Allocate(h1, topology.Allocation{})
	p := compileHost(t, topo, "host1")
	port2, port3 := alloc.TunnelOFPort["host2"], alloc.TunnelOFPort["host3"]
	want := map[uint16][]uint32{alloc.LocalVLAN[100]: {port2, port3}, alloc.LocalVLAN[200]: {port3}}
	got := map[uint16][]uint32{}
	for _, f := range p.Tun {
		if f.Table != TableFlood || f.Priority == PriorityMiss {
			continue
		}
		for _, a := range f.Actions {
			if o, ok := a.(Output); ok {
				got[f.Match.VLAN] = append(got[f.Match.VLAN], o.Port)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("flood flows for VLANs %v, want %v", got, want)
	}
	for vlan, ports := range want {
		if !slices.Equal(got[vlan], ports) {
			t.Errorf("VLAN %d floods to %v, want %v", vlan, got[vlan], ports)
		}
	}
	for _, f := range compileHost(t, topo, "host2").Tun {
		if f.Table == TableFlood && f.Priority != PriorityMiss && f.Match.VLAN == mustAlloc(t, topo, "host2").LocalVLAN[300] {
			t.Errorf("local-only network floods: %s", f)
		}
	}
}

func mustAlloc(t *testing.T, topo *topology.Topology, host string) topology.Allocation {
	a, err := topo.Allocate(topo.Host(host), topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A tunnel only delivers the networks its peer is part of.
func TestTunnelAcceptsOnlySharedNetworks(t *testing.T) {
	topo := testTopology()
	alloc := mustAlloc(t, topo, "host1")
	for _, f := range compileHost(t, topo, "host1").Tun {
		if f.Table == TableFromTun && f.Match.InPort == alloc.TunnelOFPort["host2"] && f.Match.TunID != 100 {
			t.Errorf("host2's tunnel accepts VNI %d: %s", f.Match.TunID, f)
		}
	}
}

func TestLearnModeLearnsAndControllerModeDoesNot(t *testing.T) {
	topo := testTopology()
	hasLearn := func(p Program) bool {
		return strings.Contains(strings.Join(lines(p.Tun), "\n"), "learn(")
	}
	if !hasLearn(compileHost(t, topo, "host1")) {
		t.Fatal("learn mode compiled no learn()")
	}
	topo.Host("host1").Mode = topology.ModeController
	if hasLearn(compileHost(t, topo, "host1")) {
		t.Fatal("controller mode compiled learn()")
	}
}

func TestCompileRejectsIncompleteAllocation(t *testing.T) {
	topo := testTopology()
	_, err := Compile(topo, topo.Host("host1"), topology.Allocation{})
	if err == nil || !strings.Contains(err.Error(), "local VLAN of VNI 100") {
		t.Fatalf("got %v", err)
	}
}

func TestEveryOwnedFlowIsCookied(t *testing.T) {
	p := compileHost(t, testTopology(), "host3")
	for _, f := range append(p.Tun, p.Int...) {
		if f.Cookie&CookieOwnerMask != CookieOwned {
			t.Errorf("flow without owner cookie: %s", f)
		}
	}
}

func TestAllocationAdvertisementRoundTrips(t *testing.T) {
	topo := testTopology()
	alloc := mustAlloc(t, topo, "host1")
	fl := CompileAllocation(alloc)
	if len(fl) != len(alloc.LocalVLAN) {
		t.Fatalf("%d advertisement flows for %d networks", len(fl), len(alloc.LocalVLAN))
	}
	got := LocalVLANsFromFlows(append(fl, compileHost(t, topo, "host1").Tun...))
	if len(got) != len(alloc.LocalVLAN) {
		t.Fatalf("read back %v, want %v", got, alloc.LocalVLAN)
	}
	for vni, vlan := range alloc.LocalVLAN {
		if got[vni] != vlan {
			t.Errorf("VNI %d: read back VLAN %d, want %d", vni, got[vni], vlan)
		}
	}
	for _, f := range fl {
		if f.Cookie&ControllerReconcileMask == CookieOwned&ControllerReconcileMask {
			t.Errorf("the controller's reconcile would own advertisement flow %s", f)
		}
	}
	if CookieController&ControllerReconcileMask != CookieOwned&ControllerReconcileMask ||
		CookieLearned&ControllerReconcileMask == CookieOwned&ControllerReconcileMask {
		t.Error("ControllerReconcileMask must select owned and controller cookies and nothing else")
	}
}

func TestCompileEndpoints(t *testing.T) {
	topo := testTopology()
	for _, h := range topo.Hosts {
		h.Mode = topology.ModeController
	}
	alloc := mustAlloc(t, topo, "host1")
	eps := []Endpoint{
		{VNI: 100, MAC: mac("52:54:00:00:00:01"), Host: "host1", IPs: []netip.Addr{netip.MustParseAddr("10.1.1.1")}},
		{VNI: 100, MAC: mac("52:54:00:00:00:02"), Host: "host2", IPs: []netip.Addr{netip.MustParseAddr("10.1.1.2")}},
		{VNI: 300, MAC: mac("52:54:00:00:00:03"), Host: "host2"}, // host1 has no port in VNI 300
	}
	got := strings.Join(lines(CompileEndpoints(topo, topo.Host("host1"), alloc, eps)), "\n")
	for _, want := range []string{
		"table=1, priority=2,dl_vlan=1,dl_src=52:54:00:00:00:01,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=goto_table:20",
		"table=1, priority=2,dl_vlan=1,dl_src=52:54:00:00:00:01,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=goto_table:21",
		"table=1, priority=4,arp,dl_vlan=1,dl_src=52:54:00:00:00:01,arp_spa=10.1.1.1 actions=goto_table:3",
		"table=3, priority=2,arp,dl_vlan=1,arp_tpa=10.1.1.1,arp_op=1 actions=drop",
		"table=20, priority=2,dl_vlan=1,dl_dst=52:54:00:00:00:02 actions=pop_vlan,set_field:0x64->tun_id,output:10",
		"table=3, priority=2,arp,dl_vlan=1,arp_tpa=10.1.1.2,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:52:54:00:00:00:02->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:52:54:00:00:00:02->arp_sha,set_field:10.1.1.2->arp_spa,IN_PORT",
		// Gratuitous ARP for either IP, and vm2's own request for its
		// IP, go to every peer unanswered.
		"table=3, priority=3,arp,dl_vlan=1,arp_spa=10.1.1.1,arp_tpa=10.1.1.1 actions=goto_table:21",
		"table=3, priority=3,arp,dl_vlan=1,arp_spa=10.1.1.2,arp_tpa=10.1.1.2 actions=goto_table:21",
		"table=3, priority=3,arp,dl_vlan=1,dl_src=52:54:00:00:00:02,arp_tpa=10.1.1.2,arp_op=1 actions=goto_table:21",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "52:54:00:00:00:03") {
		t.Errorf("endpoint of a network host1 is not in compiled:\n%s", got)
	}
	if n := strings.Count(got, "\n") + 1; n != 9 {
		t.Errorf("%d flows, want 9:\n%s", n, got)
	}
}

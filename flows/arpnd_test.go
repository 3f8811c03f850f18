package flows

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// ctlTopology is testTopology in controller mode.
func ctlTopology() *topology.Topology {
	topo := testTopology()
	for _, h := range topo.Hosts {
		h.Mode = topology.ModeController
	}
	return topo
}

// IPv6 endpoints get the neighbour discovery counterpart of the ARP flows:
// a known-pair flow in table 1 and a kept solicitation in table 3 for a
// local one; a responder building the advertisement, completed by table 4,
// and the owner's own solicitation flooded, for a remote one.
func TestCompileEndpointsIPv6(t *testing.T) {
	topo := ctlTopology()
	alloc := mustAlloc(t, topo, "host1")
	eps := []Endpoint{
		{VNI: 100, MAC: mac("52:54:00:00:00:01"), Host: "host1", IPs: []netip.Addr{netip.MustParseAddr("fd00::1")}},
		{VNI: 100, MAC: mac("52:54:00:00:00:02"), Host: "host2", IPs: []netip.Addr{netip.MustParseAddr("fd00::2")}},
	}
	got := lines(CompileEndpoints(topo, topo.Host("host1"), alloc, eps))
	want := []string{
		"table=1, priority=4,icmp6,dl_vlan=1,dl_src=52:54:00:00:00:01,ipv6_src=fd00::1 actions=goto_table:3",
		"table=1, priority=2,dl_vlan=1,dl_src=52:54:00:00:00:01,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=goto_table:21",
		"table=1, priority=2,dl_vlan=1,dl_src=52:54:00:00:00:01,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=goto_table:20",
		"table=3, priority=3,icmp6,dl_vlan=1,dl_src=52:54:00:00:00:02,icmp_type=135,nd_target=fd00::2 actions=goto_table:21",
		"table=3, priority=2,icmp6,dl_vlan=1,icmp_type=135,nd_target=fd00::1 actions=drop",
		"table=3, priority=2,icmp6,dl_vlan=1,icmp_type=135,nd_target=fd00::2 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:52:54:00:00:00:02->eth_src," +
			"move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],set_field:fd00::2->ipv6_src,set_field:136->icmpv6_type,set_field:1610612736->nd_reserved,set_field:2->nd_options_type,goto_table:4",
		"table=20, priority=2,dl_vlan=1,dl_dst=52:54:00:00:00:02 actions=pop_vlan,set_field:0x64->tun_id,output:10",
	}
	if len(got) != len(want) {
		t.Errorf("%d flows, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	// Flows of one table and priority are in the order of their content
	// cookies, which says nothing: compare them as sets.
	for i := range got {
		_, got[i], _ = strings.Cut(got[i], ", ")
	}
	slices.Sort(got)
	slices.Sort(want)
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("flow %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	prog := compileHost(t, topo, "host1")
	if err := Validate(append(prog.Tun, CompileEndpoints(topo, topo.Host("host1"), alloc, eps)...)); err != nil {
		t.Error(err)
	}
}

// packet is the header fields of a frame, as table 3 sees it.
type packet struct {
	ethType          uint16
	ipProto          uint8
	vlan             uint16
	src, dst         net.HardwareAddr
	arpOp            uint16
	spa, tpa         netip.Addr // ARP sender/target, or IPv6 source/ND target
	icmpType         uint8
	hasICMP, isIPv6  bool
	description, why string
}

// matches reports whether m matches p (a zero field of m is a wildcard).
func matches(m Match, p packet) bool {
	eq := func(a, b net.HardwareAddr) bool { return a == nil || bytes.Equal(a, b) }
	dstOK := m.EthDst == nil
	if m.EthDst != nil {
		mask := m.EthDstMask
		if mask == nil {
			mask = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		}
		dstOK = true
		for i := range 6 {
			dstOK = dstOK && p.dst[i]&mask[i] == m.EthDst[i]&mask[i]
		}
	}
	return (m.EthType == 0 || m.EthType == p.ethType) && (m.IPProto == 0 || m.IPProto == p.ipProto) &&
		(!m.HasVLAN || m.VLAN == p.vlan) && eq(m.EthSrc, p.src) && dstOK &&
		(m.ArpOp == 0 || m.ArpOp == p.arpOp) &&
		(!m.ArpSPA.IsValid() || !p.isIPv6 && m.ArpSPA == p.spa) && (!m.ArpTPA.IsValid() || !p.isIPv6 && m.ArpTPA == p.tpa) &&
		(!m.IPv6Src.IsValid() || p.isIPv6 && m.IPv6Src == p.spa) && (!m.NDTarget.IsValid() || p.isIPv6 && m.NDTarget == p.tpa) &&
		(!m.HasICMPType || p.hasICMP && m.ICMPType == p.icmpType)
}

// lookup is the flow of table that p hits: the highest-priority match. Two
// matches at one priority must do the same, or OVS's choice is arbitrary.
func lookup(t *testing.T, fl []Flow, table uint8, p packet) Flow {
	t.Helper()
	var hit []Flow
	for _, f := range fl {
		if f.Table == table && matches(f.Match, p) && (len(hit) == 0 || f.Priority >= hit[0].Priority) {
			if len(hit) > 0 && f.Priority > hit[0].Priority {
				hit = hit[:0]
			}
			hit = append(hit, f)
		}
	}
	if len(hit) == 0 {
		t.Fatalf("%s: no flow of table %d matches", p.description, table)
	}
	for _, f := range hit[1:] {
		if FormatActions(f.Actions) != FormatActions(hit[0].Actions) {
			t.Errorf("%s: two flows of priority %d with different actions match:\n%s\n%s", p.description, f.Priority, hit[0], f)
		}
	}
	return hit[0]
}

// Table 3 of host1, which has vm1 (10.1.1.1, fd00::1) and knows vm2
// (10.1.1.2, fd00::2) on host2: what each request or announcement hits.
// Nothing an IP's owner sends for its own IP is ever answered (the answer
// would carry its own MAC back into br-int, which would learn it on the
// patch port), and announcements go to every peer.
func TestTable3NeverAnswersAnOwner(t *testing.T) {
	topo := ctlTopology()
	h := topo.Host("host1")
	alloc := mustAlloc(t, topo, "host1")
	m1, m2, m9 := mac("52:54:00:00:00:01"), mac("52:54:00:00:00:02"), mac("52:54:00:00:00:09")
	ip := netip.MustParseAddr
	eps := []Endpoint{
		{VNI: 100, MAC: m1, Host: "host1", IPs: []netip.Addr{ip("10.1.1.1"), ip("fd00::1")}},
		{VNI: 100, MAC: m2, Host: "host2", IPs: []netip.Addr{ip("10.1.1.2"), ip("fd00::2")}},
	}
	fl := append(compileHost(t, topo, "host1").Tun, CompileEndpoints(topo, h, alloc, eps)...)
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	solMC := net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 2}
	arp := func(desc string, src net.HardwareAddr, op uint16, spa, tpa string) packet {
		return packet{description: desc, ethType: EthTypeARP, vlan: 1, src: src, dst: bcast, arpOp: op, spa: ip(spa), tpa: ip(tpa)}
	}
	nd := func(desc string, src net.HardwareAddr, typ uint8, from, target string) packet {
		return packet{description: desc, ethType: EthTypeIPv6, ipProto: IPProtoICMPv6, vlan: 1, src: src, dst: solMC,
			hasICMP: true, icmpType: typ, spa: ip(from), tpa: ip(target), isIPv6: true}
	}
	const flood, answered, dropped = "goto_table:21", "IN_PORT", "drop"
	for _, tc := range []struct {
		p    packet
		want string
	}{
		{arp("vm2 moved here, its gratuitous ARP", m2, 1, "10.1.1.2", "10.1.1.2"), flood},
		{arp("vm2 moved here, a gratuitous ARP reply", m2, 2, "10.1.1.2", "10.1.1.2"), flood},
		{arp("vm2 moved here, probing its address", m2, 1, "0.0.0.0", "10.1.1.2"), flood},
		{arp("a VIP of vm2 taken over by vm9 here", m9, 1, "10.1.1.2", "10.1.1.2"), flood},
		{arp("vm1 announcing its address", m1, 1, "10.1.1.1", "10.1.1.1"), flood},
		{arp("vm1 asking for vm2", m1, 1, "10.1.1.1", "10.1.1.2"), answered},
		{arp("vm9 asking for vm1 (here)", m9, 1, "10.1.1.9", "10.1.1.1"), dropped},
		{arp("vm1 asking for an unknown IP", m1, 1, "10.1.1.1", "10.1.1.7"), flood},
		{nd("vm1 soliciting vm2", m1, ICMPv6NS, "fd00::1", "fd00::2"), "goto_table:4"},
		{nd("vm9 soliciting vm1 (here)", m9, ICMPv6NS, "fd00::9", "fd00::1"), dropped},
		{nd("vm2 moved here, soliciting its address", m2, ICMPv6NS, "fd00::2", "fd00::2"), flood},
		{nd("DAD for vm2's address", m2, ICMPv6NS, "::", "fd00::2"), flood},
		{nd("DAD of another VM for vm2's address", m9, ICMPv6NS, "::", "fd00::2"), flood},
		{nd("unsolicited advertisement of vm2's address", m2, ICMPv6NA, "fd00::2", "fd00::2"), flood},
		{nd("vm1 soliciting an unknown address", m1, ICMPv6NS, "fd00::1", "fd00::7"), flood},
	} {
		f := lookup(t, fl, TableARP, tc.p)
		acts := FormatActions(f.Actions)
		if !strings.HasSuffix(acts, tc.want) {
			t.Errorf("%s: hits\n%s\nwant actions ending %s", tc.p.description, f, tc.want)
		}
		for _, a := range f.Actions {
			if set, ok := a.(SetEthSrc); ok && bytes.Equal(set.MAC, tc.p.src) {
				t.Errorf("%s: answered with its own MAC: %s", tc.p.description, f)
			}
		}
	}
}

// The advertisement table 3 builds goes through table 4, which fills in the
// target link-layer address from the new source MAC and sends it back.
func TestNDAnswerTable(t *testing.T) {
	prog := compileHost(t, ctlTopology(), "host1")
	p := packet{description: "advertisement built by table 3", ethType: EthTypeIPv6, ipProto: IPProtoICMPv6, hasICMP: true, icmpType: ICMPv6NA,
		isIPv6: true, src: mac("52:54:00:00:00:02"), dst: mac("52:54:00:00:00:01"), spa: netip.MustParseAddr("fd00::2"), tpa: netip.MustParseAddr("fd00::2")}
	f := lookup(t, prog.Tun, TableNDAnswer, p)
	if got := FormatActions(f.Actions); got != "move:NXM_OF_ETH_SRC[]->NXM_NX_ND_TLL[],IN_PORT" {
		t.Errorf("table 4: %s", f)
	}
	for _, f := range compileHost(t, testTopology(), "host1").Tun {
		if f.Table == TableNDAnswer {
			t.Errorf("learn mode has table 4: %s", f)
		}
	}
}

// Table 1 of a controller-mode host reports ARP and neighbour discovery of
// unknown pairs; known pairs go to table 3 without a report.
func TestTable1ReportsAnnouncements(t *testing.T) {
	topo := ctlTopology()
	alloc := mustAlloc(t, topo, "host1")
	m1 := mac("52:54:00:00:00:01")
	eps := []Endpoint{{VNI: 100, MAC: m1, Host: "host1", IPs: []netip.Addr{netip.MustParseAddr("fd00::1")}}}
	fl := append(compileHost(t, topo, "host1").Tun, CompileEndpoints(topo, topo.Host("host1"), alloc, eps)...)
	for _, tc := range []struct {
		p    packet
		want string
	}{
		{packet{description: "NS of a known pair", ethType: EthTypeIPv6, ipProto: 58, vlan: 1, src: m1, dst: mac("33:33:ff:00:00:02"),
			hasICMP: true, icmpType: ICMPv6NS, isIPv6: true, spa: netip.MustParseAddr("fd00::1")}, "goto_table:3"},
		{packet{description: "NS from a new address of a known MAC", ethType: EthTypeIPv6, ipProto: 58, vlan: 1, src: m1, dst: mac("33:33:ff:00:00:02"),
			hasICMP: true, icmpType: ICMPv6NS, isIPv6: true, spa: netip.MustParseAddr("fe80::1")}, "CONTROLLER:128,goto_table:3"},
		{packet{description: "unsolicited NA of a new MAC", ethType: EthTypeIPv6, ipProto: 58, vlan: 1, src: mac("52:54:00:00:00:09"), dst: mac("33:33:00:00:00:01"),
			hasICMP: true, icmpType: ICMPv6NA, isIPv6: true, spa: netip.MustParseAddr("fd00::9")}, "CONTROLLER:128,goto_table:3"},
		{packet{description: "echo request of a known MAC", ethType: EthTypeIPv6, ipProto: 58, vlan: 1, src: m1, dst: mac("52:54:00:00:00:02"),
			hasICMP: true, icmpType: 128, isIPv6: true, spa: netip.MustParseAddr("fe80::1")}, "goto_table:20"},
	} {
		if f := lookup(t, fl, TableFromPort, tc.p); FormatActions(f.Actions) != tc.want {
			t.Errorf("%s: hits %s, want %s", tc.p.description, f, tc.want)
		}
	}
}

// In controller mode, table 2 reports frames from an unmanaged peer's tunnel
// (after tagging them) as table 1 reports local ones, and never those from
// a managed peer; an endpoint on the unmanaged peer gets known-source and
// known-pair flows there.
func TestUnmanagedPeerReportedFromTunnel(t *testing.T) {
	topo := ctlTopology()
	kern := topo.Host("host3")
	kern.Managed = false
	h := topo.Host("host1")
	alloc := mustAlloc(t, topo, "host1")
	prog := compileHost(t, topo, "host1")
	port2, port3 := alloc.TunnelOFPort["host2"], alloc.TunnelOFPort["host3"]
	reports := map[uint32]int{}
	for _, f := range prog.Tun {
		if f.Table != TableFromTun || f.Priority == PriorityMiss {
			continue
		}
		i := slices.IndexFunc(f.Actions, func(a Action) bool { _, ok := a.(Controller); return ok })
		if i >= 0 {
			reports[f.Match.InPort]++
			tag := fmt.Sprintf("push_vlan:0x8100,set_field:%d->vlan_vid", 0x1000|alloc.LocalVLAN[uint32(f.Match.TunID)])
			if i < 2 || FormatActions(f.Actions[:2]) != tag {
				t.Errorf("reported before tagging: %s", f)
			}
		}
		if last := f.Actions[len(f.Actions)-1]; last != Action(Output{Port: topology.PatchOFPort}) {
			t.Errorf("table 2 does not end in the patch port: %s", f)
		}
	}
	// host1 shares VNIs 100 and 200 with host3: a catch-all and three
	// announcement reports each.
	if reports[port2] != 0 || reports[port3] != 8 {
		t.Errorf("reports from host2's tunnel %d, from host3's %d; want 0 and 8:\n%s", reports[port2], reports[port3], strings.Join(lines(prog.Tun), "\n"))
	}
	m3 := mac("52:54:00:00:00:03")
	eps := []Endpoint{
		{VNI: 100, MAC: m3, Host: "host3", IPs: []netip.Addr{netip.MustParseAddr("10.1.1.3")}},
		{VNI: 100, MAC: mac("52:54:00:00:00:02"), Host: "host2"},
	}
	fl := CompileEndpoints(topo, h, alloc, eps)
	got := strings.Join(lines(fl), "\n")
	for _, want := range []string{
		"table=2, priority=2,tun_id=0x64,in_port=11,dl_src=52:54:00:00:00:03 actions=push_vlan:0x8100,set_field:4097->vlan_vid,output:1",
		"table=2, priority=4,arp,tun_id=0x64,in_port=11,dl_src=52:54:00:00:00:03,arp_spa=10.1.1.3 actions=push_vlan:0x8100,set_field:4097->vlan_vid,output:1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "table=2, priority=2,tun_id=0x64,in_port=10") {
		t.Errorf("known-source flow in table 2 for a managed peer's MAC:\n%s", got)
	}
	if err := Validate(append(prog.Tun, fl...)); err != nil {
		t.Error(err)
	}
}

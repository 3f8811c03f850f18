package flows

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// exampleEndpoints is what a controller could know about topo: its declared
// MACs, plus per network and host with a port in it a learned MAC, every
// other one with an IPv4 address, two in three with an IPv6 one.
func exampleEndpoints(topo *topology.Topology) []Endpoint {
	eps := DeclaredEndpoints(topo)
	for i, n := range topo.Networks {
		for j, h := range topo.Hosts {
			if !slices.ContainsFunc(n.Ports, func(p *topology.Port) bool { return p.Host == h }) {
				continue
			}
			e := Endpoint{VNI: n.VNI, MAC: net.HardwareAddr{0x02, 0, 0, 0, byte(i), byte(j)}, Host: h.Name, Learned: true}
			if j%2 == 0 {
				e.IPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 99, byte(i), byte(j)})}
			}
			if j%3 != 2 {
				e.IPs = append(e.IPs, netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i), 15: byte(j)}))
			}
			eps = append(eps, e)
		}
	}
	return eps
}

// seenBy is the part of eps CompileEndpoints gives host h flows for, as
// EndpointsFromFlows returns it: sorted, without Learned.
func seenBy(eps []Endpoint, h *topology.Host, alloc topology.Allocation) []Endpoint {
	var out []Endpoint
	for _, e := range eps {
		_, net := alloc.LocalVLAN[e.VNI]
		_, peer := alloc.TunnelOFPort[e.Host]
		if net && (e.Host == h.Name || peer) {
			e.Learned = false
			e.IPs = slices.SortedFunc(slices.Values(e.IPs), netip.Addr.Compare)
			out = append(out, e)
		}
	}
	SortEndpoints(out)
	return out
}

func endpointText(eps []Endpoint) string {
	var b strings.Builder
	for _, e := range eps {
		fmt.Fprintf(&b, "%d %s %s %v\n", e.VNI, e.MAC, e.Host, e.IPs)
	}
	return b.String()
}

// What CompileEndpoints installs, read back among every other flow of
// br-tun, gives the endpoints it was compiled from: a restarted controller
// knows what it knew.
func TestEndpointsFromFlowsRoundTrip(t *testing.T) {
	for name, topo := range exampleTopologies(t) {
		eps := exampleEndpoints(topo)
		for _, h := range topo.ManagedHosts() {
			alloc := mustAlloc(t, topo, h.Name)
			prog, err := Compile(topo, h, alloc)
			if err != nil {
				t.Fatal(err)
			}
			fl := append(CompileEndpoints(topo, h, alloc, eps), prog.Tun...)
			fl = append(fl, CompileAllocation(alloc)...)
			want := seenBy(eps, h, alloc)
			if len(want) == 0 {
				t.Fatalf("%s host %s: the test has no endpoints to read back", name, h.Name)
			}
			if got := EndpointsFromFlows(fl, h.Name, alloc); endpointText(got) != endpointText(want) {
				t.Errorf("%s host %s: read back\n%s\nwant\n%s", name, h.Name, endpointText(got), endpointText(want))
			}
		}
	}
}

// A MAC this host knows as its own while a stale entry still sends it to a
// peer is two endpoints; flows of VLANs the allocation lacks are skipped.
func TestEndpointsFromFlowsKeepsLocalAndRemoteApart(t *testing.T) {
	topo := testTopology()
	h := topo.Host("host1")
	alloc := mustAlloc(t, topo, "host1")
	m := mac("52:54:00:00:00:01")
	ip1, ip2 := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.1.1.2")
	fl := CompileEndpoints(topo, h, alloc, []Endpoint{{VNI: 100, MAC: m, Host: "host1", IPs: []netip.Addr{ip1}}})
	fl = append(fl, CompileEndpoints(topo, h, alloc, []Endpoint{{VNI: 100, MAC: m, Host: "host2", IPs: []netip.Addr{ip2}}})...)
	stale := alloc
	stale.LocalVLAN = maps.Clone(alloc.LocalVLAN)
	stale.LocalVLAN[100] = 99
	fl = append(fl, CompileEndpoints(topo, h, stale, []Endpoint{{VNI: 100, MAC: mac("52:54:00:00:00:09"), Host: "host3"}})...)
	got := endpointText(EndpointsFromFlows(fl, "host1", alloc))
	want := "100 52:54:00:00:00:01 host1 [10.1.1.1]\n100 52:54:00:00:00:01 host2 [10.1.1.2]\n"
	if got != want {
		t.Errorf("read back\n%swant\n%s", got, want)
	}
}

// The advertisement and br-tun's ports give back the allocation they were
// made from, whatever numbers it holds; the rest of br-tun is ignored.
func TestAllocationFromFlowsRoundTrip(t *testing.T) {
	for name, topo := range exampleTopologies(t) {
		for _, h := range topo.ManagedHosts() {
			// Numbers away from the first ones Allocate hands out.
			prev := topology.Allocation{LocalVLAN: map[uint32]uint16{}, TunnelOFPort: map[string]uint32{}}
			for i, n := range topo.NetworksOn(h) {
				prev.LocalVLAN[n.VNI] = uint16(100 + 3*i)
			}
			for i, p := range topo.Peers(h) {
				prev.TunnelOFPort[p.Name] = uint32(40 + 7*i)
			}
			alloc, err := topo.Allocate(h, prev)
			if err != nil || !alloc.Equal(prev) {
				t.Fatalf("%s host %s: Allocate kept %v of %v (%v)", name, h.Name, alloc, prev, err)
			}
			prog, err := Compile(topo, h, alloc)
			if err != nil {
				t.Fatal(err)
			}
			// Ignored: the bridge's local port, a vx- name without a peer,
			// and numbers no tunnel port can hold.
			ports := map[string]uint32{topology.PatchTun: topology.PatchOFPort, topology.BridgeTun: 0xfffffffe,
				topology.TunnelPortPrefix: 12, "vx-high": topology.LastTunnelOFPort + 1, "vx-patch": topology.PatchOFPort}
			for peer, no := range alloc.TunnelOFPort {
				ports[topology.TunnelPortName(peer)] = no
			}
			got := AllocationFromFlows(append(prog.Tun, CompileAllocation(alloc)...), ports)
			if !got.Equal(alloc) {
				t.Errorf("%s host %s: read back %v, want %v", name, h.Name, got, alloc)
			}
			// A tunnel port OVS numbered below the requested range (apply
			// then compiles with the real number) is read as it is.
			if peers := topo.Peers(h); len(peers) > 0 {
				ports[topology.TunnelPortName(peers[0].Name)] = 2
				if no := AllocationFromFlows(nil, ports).TunnelOFPort[peers[0].Name]; no != 2 {
					t.Errorf("%s host %s: tunnel port at ofport 2 read back as %d", name, h.Name, no)
				}
			}
			if lacks := AllocationLacks(topo, h, got); len(lacks) > 0 {
				t.Errorf("%s host %s: the allocation read back lacks %v", name, h.Name, lacks)
			}
		}
	}
}

func TestAllocationLacks(t *testing.T) {
	topo := testTopology()
	h := topo.Host("host1")
	alloc := mustAlloc(t, topo, "host1")
	delete(alloc.LocalVLAN, 200)
	delete(alloc.TunnelOFPort, "host3")
	got := strings.Join(AllocationLacks(topo, h, alloc), "; ")
	if want := "local VLAN of VNI 200; tunnel port vx-host3 of peer host3"; got != want {
		t.Errorf("lacks %q, want %q", got, want)
	}
}

// Table 20 read back as fdb shows it: the controller's entries give the
// endpoints they were compiled from, learned ones their VNI from the
// cookie; nothing else is an entry.
func TestUnicastEntriesRoundTrip(t *testing.T) {
	for name, topo := range exampleTopologies(t) {
		eps := exampleEndpoints(topo)
		for _, h := range topo.ManagedHosts() {
			alloc := mustAlloc(t, topo, h.Name)
			prog, err := Compile(topo, h, alloc)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, e := range seenBy(eps, h, alloc) {
				if e.Host != h.Name {
					want = append(want, fmt.Sprintf("%d %s %d false", e.VNI, e.MAC, alloc.TunnelOFPort[e.Host]))
				}
			}
			var got []string
			for _, f := range append(CompileEndpoints(topo, h, alloc, eps), prog.Tun...) {
				if e, ok := UnicastEntryOf(f); ok {
					got = append(got, fmt.Sprintf("%d %s %d %v", e.VNI, e.MAC, e.OFPort, e.Learned))
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s host %s: entries %q, want %q", name, h.Name, got, want)
			}
		}
	}
	learned := Flow{Table: TableUnicast, Priority: PriorityLearned, Cookie: CookieLearned | 100, HardTimeout: 300,
		Match: Match{HasVLAN: true, VLAN: 1, EthDst: mac("52:54:00:00:00:02")}, Actions: []Action{Output{Port: 11}}}
	e, ok := UnicastEntryOf(learned)
	if !ok || e.VNI != 100 || e.OFPort != 11 || !e.Learned || e.MAC.String() != "52:54:00:00:00:02" {
		t.Errorf("learned entry read back as %+v, %v", e, ok)
	}
}

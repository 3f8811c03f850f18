package topology

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

func mustParse(t testing.TB, y string) *Topology {
	t.Helper()
	top, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("%v\nfile:\n%s", err, y)
	}
	return top
}

func hostNames(hs []*Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

func netNames(ns []*Network) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

// queryTopology: b is declared before a but has the higher VNI; c never
// leaves h2; h3 is unmanaged on 8472; h4 has no ports.
const queryTopology = `name: q
hosts:
  - {name: h1, vtep: 10.0.0.1}
  - {name: h2, vtep: 10.0.0.2}
  - {name: h3, vtep: 10.0.0.3, managed: false, dst_port: 8472}
  - {name: h4, vtep: 10.0.0.4}
networks:
  - name: b
    vni: 200
    ports:
      - {host: h2, name: b2}
      - {host: h1, name: b1}
      - {host: h1, name: b1x}
  - name: a
    vni: 100
    ports:
      - {host: h1, name: a1}
      - {host: h3, name: a3, mac: "52:54:00:00:00:03"}
  - name: c
    vni: 300
    ports:
      - {host: h2, name: c2}
`

func TestQueries(t *testing.T) {
	top := mustParse(t, queryTopology)
	h1, h2, h3, h4 := top.Host("h1"), top.Host("h2"), top.Host("h3"), top.Host("h4")
	a, b, c := top.Network("a"), top.Network("b"), top.Network("c")
	if h1 == nil || h4 == nil || a == nil || c == nil || top.Host("h9") != nil || top.Network("z") != nil {
		t.Fatal("Host/Network lookups")
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("ManagedHosts", hostNames(top.ManagedHosts()), []string{"h1", "h2", "h4"})
	check("NetworksOn(h1)", netNames(top.NetworksOn(h1)), []string{"a", "b"})
	check("NetworksOn(h2)", netNames(top.NetworksOn(h2)), []string{"b", "c"})
	check("NetworksOn(h4)", netNames(top.NetworksOn(h4)), nil)
	var ports []string
	for _, p := range top.PortsOn(h1) {
		ports = append(ports, p.Network.Name+"/"+p.Name)
	}
	check("PortsOn(h1)", ports, []string{"b/b1", "b/b1x", "a/a1"})
	if got := b.PortsOn(h1); len(got) != 2 || got[0].Name != "b1" || !b.HasPortOn(h2) || b.HasPortOn(h3) {
		t.Errorf("Network.PortsOn/HasPortOn wrong: %v", got)
	}
	check("Peers(h1)", hostNames(top.Peers(h1)), []string{"h2", "h3"})
	check("Peers(h2)", hostNames(top.Peers(h2)), []string{"h1"})
	check("Peers(h3)", hostNames(top.Peers(h3)), []string{"h1"})
	check("Peers(h4)", hostNames(top.Peers(h4)), nil)
	check("FloodPeers(h1, a)", hostNames(top.FloodPeers(h1, a)), []string{"h3"})
	check("FloodPeers(h1, b)", hostNames(top.FloodPeers(h1, b)), []string{"h2"})
	check("FloodPeers(h2, c)", hostNames(top.FloodPeers(h2, c)), nil) // never leaves h2
	check("FloodPeers(h4, a)", hostNames(top.FloodPeers(h4, a)), nil) // h4 is not in a
	for _, x := range []struct {
		a, b *Host
		want uint16
	}{{h1, h3, 8472}, {h3, h1, 8472}, {h1, h2, 4789}, {h2, h1, 4789}} {
		if got := PairDstPort(x.a, x.b); got != x.want {
			t.Errorf("PairDstPort(%s, %s) = %d, want %d", x.a.Name, x.b.Name, got, x.want)
		}
	}
}

// allocTopology renders a topology where h1 shares every network of vnis
// with every host of peers.
func allocTopology(vnis []int, peers []string) string {
	var s strings.Builder
	s.WriteString("name: alloc\nhosts:\n  - {name: h1, vtep: 10.0.0.1}\n")
	for i, p := range peers {
		fmt.Fprintf(&s, "  - {name: %s, vtep: 10.0.1.%d}\n", p, i+1)
	}
	s.WriteString("networks:\n")
	for _, v := range vnis {
		fmt.Fprintf(&s, "  - name: n%d\n    vni: %d\n    ports:\n      - {host: h1, name: p%d}\n", v, v, v)
		for _, p := range peers {
			fmt.Fprintf(&s, "      - {host: %s, name: p%d}\n", p, v)
		}
	}
	return s.String()
}

func allocate(t *testing.T, vnis []int, peers []string, prev Allocation) Allocation {
	t.Helper()
	top := mustParse(t, allocTopology(vnis, peers))
	a, err := top.Allocate(top.Host("h1"), prev)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllocate(t *testing.T) {
	checkAlloc := func(what string, got Allocation, vlans map[uint32]uint16, ports map[string]uint32) {
		t.Helper()
		if !maps.Equal(got.LocalVLAN, vlans) || !maps.Equal(got.TunnelOFPort, ports) {
			t.Errorf("%s:\n got %v %v\nwant %v %v", what, got.LocalVLAN, got.TunnelOFPort, vlans, ports)
		}
	}
	// Fresh: VLANs in VNI order (not file order), ports in file order.
	first := allocate(t, []int{300, 100, 200}, []string{"h2", "h3"}, Allocation{})
	checkAlloc("fresh", first, map[uint32]uint16{100: 1, 200: 2, 300: 3}, map[string]uint32{"h2": 10, "h3": 11})

	// The same file again changes nothing.
	if again := allocate(t, []int{300, 100, 200}, []string{"h2", "h3"}, first); !again.Equal(first) {
		t.Errorf("re-allocation changed numbers: %v -> %v", first, again)
	}

	// Removing a network or a peer keeps every other number.
	removed := allocate(t, []int{100, 300}, []string{"h3"}, first)
	checkAlloc("removed", removed, map[uint32]uint16{100: 1, 300: 3}, map[string]uint32{"h3": 11})

	// New networks and peers take the lowest free numbers, in VNI / file order.
	added := allocate(t, []int{100, 300, 400, 50, 60}, []string{"h5", "h3", "h4", "h6"}, removed)
	checkAlloc("added", added, map[uint32]uint16{50: 2, 60: 4, 100: 1, 300: 3, 400: 5},
		map[string]uint32{"h3": 11, "h4": 12, "h5": 10, "h6": 13})

	// Unusable previous numbers (out of range, taken twice) are replaced.
	bad := Allocation{
		LocalVLAN:    map[uint32]uint16{100: 0, 200: 5000, 300: 7, 400: 7},
		TunnelOFPort: map[string]uint32{"h2": 11, "h3": 11, "h4": 5, "h5": 70000},
	}
	fixed := allocate(t, []int{100, 200, 300, 400}, []string{"h2", "h3", "h4", "h5"}, bad)
	checkAlloc("fixed", fixed, map[uint32]uint16{100: 1, 200: 2, 300: 7, 400: 3},
		map[string]uint32{"h2": 11, "h3": 10, "h4": 12, "h5": 13})

	// A host without networks needs nothing.
	top := mustParse(t, queryTopology)
	if a, err := top.Allocate(top.Host("h4"), first); err != nil || len(a.LocalVLAN)+len(a.TunnelOFPort) != 0 {
		t.Errorf("h4 allocation = %v, %v", a, err)
	}
}

func TestAllocateExhausted(t *testing.T) {
	vnis := make([]int, LastLocalVLAN-FirstLocalVLAN+2)
	for i := range vnis {
		vnis[i] = i + 1
	}
	top := mustParse(t, allocTopology(vnis, nil))
	if _, err := top.Allocate(top.Hosts[0], Allocation{}); err == nil || !strings.Contains(err.Error(), "than local VLANs") {
		t.Errorf("allocating %d networks: %v, want an exhaustion error", len(vnis), err)
	}
	top = mustParse(t, allocTopology(vnis[:len(vnis)-1], nil))
	if a, err := top.Allocate(top.Hosts[0], Allocation{}); err != nil || a.LocalVLAN[uint32(len(vnis)-1)] != LastLocalVLAN {
		t.Errorf("allocating %d networks: %v", len(vnis)-1, err)
	}
}

func TestAllocateAvoiding(t *testing.T) {
	top := mustParse(t, allocTopology([]int{100}, []string{"h2", "h3", "h4"}))
	h1 := top.Host("h1")
	// h2 kept at 10 although held (by its own port); h3 and h4 are new and
	// skip the held 11 (a port leaving in the same transaction) and 13.
	prev := Allocation{TunnelOFPort: map[string]uint32{"h2": 10, "gone": 11}}
	got, err := top.AllocateAvoiding(h1, prev, map[uint32]bool{10: true, 11: true, 13: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint32{"h2": 10, "h3": 12, "h4": 14}; !maps.Equal(got.TunnelOFPort, want) {
		t.Errorf("AllocateAvoiding: tunnel ports %v, want %v", got.TunnelOFPort, want)
	}
	plain, err := top.Allocate(h1, prev)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint32{"h2": 10, "h3": 11, "h4": 12}; !maps.Equal(plain.TunnelOFPort, want) {
		t.Errorf("Allocate: tunnel ports %v, want %v", plain.TunnelOFPort, want)
	}
}

package controller

import (
	"maps"
	"net/netip"
	"sync"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// memoCache is the part of a flowCache the memo reads, for host name.
func memoCache(t *testing.T, topo *topology.Topology, name string) *flowCache {
	t.Helper()
	h := topo.Host(name)
	alloc, err := topo.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	return &flowCache{t: topo, h: h, alloc: alloc}
}

// sameAsCompile fails unless en is CompileEndpoints of e for c's switch.
func sameAsCompile(t *testing.T, c *flowCache, e flows.Endpoint, en *memoEntry) {
	t.Helper()
	want := flows.CompileEndpoints(c.t, c.h, c.alloc, []flows.Endpoint{e})
	if len(en.flows) != len(want) || len(en.keys) != len(want) {
		t.Fatalf("%s, endpoint %s on %s: %d flows from the memo, CompileEndpoints gives %d", c.h.Name, e.MAC, e.Host, len(en.flows), len(want))
	}
	for i := range want {
		if en.flows[i].Flow.String() != want[i].String() || en.keys[i] != want[i].Key() {
			t.Errorf("%s, endpoint %s on %s, flow %d: memo %q (key %q), want %q", c.h.Name, e.MAC, e.Host, i, en.flows[i].Flow.String(), en.keys[i], want[i].String())
		}
	}
}

// TestEndpointMemoIsCompileEndpoints: for every switch and every kind of
// endpoint (local, remote with IPv4 and IPv6, on an unmanaged peer, in a
// network the switch lacks), the memo gives exactly what CompileEndpoints
// gives; switches numbered alike share one entry, others do not.
func TestEndpointMemoIsCompileEndpoints(t *testing.T) {
	topo := parseTopo(t, testTopo)
	eps := []flows.Endpoint{
		{VNI: 100, MAC: mac("02:00:00:00:00:01"), Host: "h1", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("fd00::5")}},
		{VNI: 100, MAC: mac("02:00:00:00:00:02"), Host: "h2", Learned: true},
		{VNI: 100, MAC: mac("02:00:00:00:00:09"), Host: "kv", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.9")}},
		{VNI: 200, MAC: mac("02:00:00:00:00:03"), Host: "h3", IPs: []netip.Addr{netip.MustParseAddr("10.2.0.3")}},
	}
	m := newEndpointMemo()
	got := map[string]map[int]*memoEntry{}
	for _, name := range []string{"h1", "h2", "h3"} {
		c := memoCache(t, topo, name)
		got[name] = map[int]*memoEntry{}
		for i, e := range eps {
			k, _ := KeyOf(e.VNI, e.MAC)
			en := m.compile(c, k, e)
			sameAsCompile(t, c, e, en)
			got[name][i] = en
			if again := m.compile(c, k, e); again != en {
				t.Errorf("%s: endpoint %d compiled twice", name, i)
			}
		}
	}
	// h2 and h3 number the network's VLAN and the tunnel to h1 alike.
	if got["h2"][0] != got["h3"][0] {
		t.Error("h2 and h3 do not share the entry of an endpoint on h1")
	}
	if got["h1"][0] == got["h2"][0] {
		t.Error("the endpoint's own host shares an entry with a peer")
	}

	// Another tunnel port to h1: another entry, still exact.
	c := memoCache(t, topo, "h3")
	c.alloc.TunnelOFPort = maps.Clone(c.alloc.TunnelOFPort)
	c.alloc.TunnelOFPort["h1"] += 7
	k, _ := KeyOf(eps[0].VNI, eps[0].MAC)
	en := m.compile(c, k, eps[0])
	if en == got["h3"][0] {
		t.Error("a switch with another tunnel port shares the entry")
	}
	sameAsCompile(t, c, eps[0], en)

	// Without a memo (a reload replaced it), compile still works.
	var none *endpointMemo
	sameAsCompile(t, c, eps[0], none.compile(c, k, eps[0]))
}

// TestEndpointMemoBounded: past memoMax entries the memo starts over.
func TestEndpointMemoBounded(t *testing.T) {
	topo := parseTopo(t, testTopo)
	c := memoCache(t, topo, "h2")
	m := newEndpointMemo()
	for i := range memoMax + 10 {
		e := flows.Endpoint{VNI: 100, MAC: mac("02:00:00:00:00:01"), Host: "h1", IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})}}
		k, _ := KeyOf(e.VNI, e.MAC)
		m.compile(c, k, e)
	}
	if n := m.n; n > memoMax || n == 0 || len(m.m) != 1 {
		t.Errorf("memo holds %d entries of %d MACs, want 1..%d of 1", n, len(m.m), memoMax)
	}
}

// TestEndpointMemoConcurrent: sessions fill and read the memo at once
// (run with -race); every one gets CompileEndpoints' answer.
func TestEndpointMemoConcurrent(t *testing.T) {
	topo := parseTopo(t, testTopo)
	m := newEndpointMemo()
	e := flows.Endpoint{VNI: 100, MAC: mac("02:00:00:00:00:01"), Host: "h1", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.5")}}
	k, _ := KeyOf(e.VNI, e.MAC)
	caches := []*flowCache{memoCache(t, topo, "h1"), memoCache(t, topo, "h2"), memoCache(t, topo, "h3")}
	var wg sync.WaitGroup
	got := make([]*memoEntry, 24)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = m.compile(caches[i%len(caches)], k, e)
		}()
	}
	wg.Wait()
	for i, en := range got {
		sameAsCompile(t, caches[i%len(caches)], e, en)
	}
}

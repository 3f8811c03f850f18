package controller

import (
	"errors"
	"hash/maphash"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
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
	return &flowCache{t: topo, h: h, alloc: alloc, seed: maphash.MakeSeed()}
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
	// The same flows again, in the order of their Keys.
	if len(en.sorted) != len(want) || len(en.hashes) != len(want) {
		t.Fatalf("%s: %d sorted flows and %d hashes for %d flows", c.h.Name, len(en.sorted), len(en.hashes), len(want))
	}
	for i := range en.sorted {
		if i > 0 && en.sorted[i-1].Flow.Key() >= en.sorted[i].Flow.Key() {
			t.Errorf("%s: sorted flows %d and %d out of Key order", c.h.Name, i-1, i)
		}
	}
}

// entryHashes fails unless en's hashes are its Keys' by seed.
func entryHashes(t *testing.T, en *memoEntry, seed maphash.Seed) {
	t.Helper()
	for i, k := range en.keys {
		if en.hashes[i] != maphash.String(seed, k) {
			t.Errorf("flow %d: hash %x, want that of %q", i, en.hashes[i], k)
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
			entryHashes(t, en, m.seed)
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
	en = none.compile(c, k, eps[0])
	sameAsCompile(t, c, eps[0], en)
	entryHashes(t, en, c.seed)
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

// tunCache is buildCache of host name's br-tun for eps, with memo m.
func tunCache(t *testing.T, topo *topology.Topology, m *endpointMemo, name string, eps []flows.Endpoint) *flowCache {
	t.Helper()
	h := topo.Host(name)
	alloc, err := topo.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := flows.Compile(topo, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	c, _, ok := buildCache(m, topo, h, alloc, prog.Tun, eps, 1)
	if !ok {
		t.Fatalf("%s: no cache for %d endpoints", name, len(eps))
	}
	return c
}

// keysOf is the Keys of fl, in order.
func keysOf[F any](fl []F, key func(F) string) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = key(f)
	}
	return out
}

// TestRecompileSharedSeveralEndpoints: a change of several endpoints at
// once (one learned, one moved, one forgotten) sends exactly the flows
// CompileEndpoints gives the changed endpoints, in Key order, replacing
// the ones they gave before; applied, the cache is the one a full
// reconcile would build.
func TestRecompileSharedSeveralEndpoints(t *testing.T) {
	topo := parseTopo(t, testTopo)
	ep := func(m, host string, ip string) flows.Endpoint {
		e := flows.Endpoint{VNI: 100, MAC: mac(m), Host: host, Learned: true}
		if ip != "" {
			e.IPs = []netip.Addr{netip.MustParseAddr(ip)}
		}
		return e
	}
	stay, moves, goes := ep("02:00:00:00:00:01", "h1", "10.1.0.11"), ep("02:00:00:00:00:02", "h1", ""), ep("02:00:00:00:00:03", "h3", "10.1.0.13")
	m := newEndpointMemo()
	c := tunCache(t, topo, m, "h2", []flows.Endpoint{stay, moves, goes})
	moved, learned := ep("02:00:00:00:00:02", "h3", ""), ep("02:00:00:00:00:04", "h1", "10.1.0.14")
	key := func(e flows.Endpoint) MACKey { k, _ := KeyOf(e.VNI, e.MAC); return k }
	eps := map[MACKey]flows.Endpoint{key(moved): moved, key(learned): learned}
	present := map[MACKey]bool{key(moved): true, key(learned): true, key(goes): false}
	ch, err := c.recompileShared(m, eps, present)
	if err != nil {
		t.Fatal(err)
	}
	sorted := func(eps ...flows.Endpoint) []string {
		k := keysOf(flows.CompileEndpoints(c.t, c.h, c.alloc, eps), flows.Flow.Key)
		slices.Sort(k)
		return k
	}
	encKey := func(e openflow.Encoded) string { return e.Flow.Key() }
	if got, want := keysOf(ch.want, encKey), sorted(moved, learned); !slices.Equal(got, want) {
		t.Errorf("sends %q, want %q", got, want)
	}
	if got, want := keysOf(ch.old, encKey), sorted(moves, goes); !slices.Equal(got, want) {
		t.Errorf("replaces %q, want %q", got, want)
	}
	c.apply(ch.cacheChange, present, 2)
	full := tunCache(t, topo, m, "h2", []flows.Endpoint{stay, moved, learned})
	if !maps.Equal(c.byKey, full.byKey) || len(c.owned) != len(full.owned) {
		t.Errorf("cache after the update: %d flows of %d endpoints, a full build has %d of %d", len(c.byKey), len(c.owned), len(full.byKey), len(full.owned))
	}
}

// TestRecompileSharedConflicts: where only a full compile knows which
// endpoint wins a flow, the incremental update refuses (errNoFastPath):
// two changed endpoints claiming one IP, or a new one claiming the IP of
// one that stays.
func TestRecompileSharedConflicts(t *testing.T) {
	topo := parseTopo(t, testTopo)
	ip := []netip.Addr{netip.MustParseAddr("10.1.0.20")}
	a := flows.Endpoint{VNI: 100, MAC: mac("02:00:00:00:00:0a"), Host: "h1", IPs: ip, Learned: true}
	b := flows.Endpoint{VNI: 100, MAC: mac("02:00:00:00:00:0b"), Host: "h3", IPs: ip, Learned: true}
	ka, _ := KeyOf(a.VNI, a.MAC)
	kb, _ := KeyOf(b.VNI, b.MAC)
	m := newEndpointMemo()

	c := tunCache(t, topo, m, "h2", nil)
	_, err := c.recompileShared(m, map[MACKey]flows.Endpoint{ka: a, kb: b}, map[MACKey]bool{ka: true, kb: true})
	if !errors.Is(err, errNoFastPath) {
		t.Errorf("two new endpoints with one IP: %v, want errNoFastPath", err)
	}
	c = tunCache(t, topo, m, "h2", []flows.Endpoint{a})
	_, err = c.recompileShared(m, map[MACKey]flows.Endpoint{kb: b}, map[MACKey]bool{kb: true})
	if !errors.Is(err, errNoFastPath) {
		t.Errorf("a new endpoint with the IP of one held: %v, want errNoFastPath", err)
	}
	// The holder leaving in the same change frees the IP.
	if _, err := c.recompileShared(m, map[MACKey]flows.Endpoint{kb: b}, map[MACKey]bool{kb: true, ka: false}); err != nil {
		t.Errorf("the IP moving from one endpoint to another: %v", err)
	}
}

// TestChangesMemo: every switch asking for the changes since one version
// gets one shared answer while the knowledge stays at the same version,
// and a fresh one once it moved on.
func TestChangesMemo(t *testing.T) {
	k := NewKnowledge(nil, Limits{})
	var cm changesMemo
	now := time.Unix(1000, 0)
	learn := func(m string) {
		key, _ := KeyOf(100, mac(m))
		if _, err := k.Observe(key, "h1", netip.Addr{}, now); err != nil {
			t.Fatal(err)
		}
	}
	learn("02:00:00:00:00:01")
	eps1, present1, v1, ok := cm.since(k, 0)
	eps2, present2, v2, ok2 := cm.since(k, 0)
	if !ok || !ok2 || v1 != v2 || len(present1) != 1 || len(eps1) != 1 {
		t.Fatalf("since 0: %d endpoints at version %d (%v), then version %d (%v)", len(eps1), v1, ok, v2, ok2)
	}
	if reflect.ValueOf(present1).Pointer() != reflect.ValueOf(present2).Pointer() || reflect.ValueOf(eps1).Pointer() != reflect.ValueOf(eps2).Pointer() {
		t.Error("the same question at the same version was answered twice")
	}
	learn("02:00:00:00:00:02")
	_, present3, v3, ok := cm.since(k, 0)
	if !ok || v3 == v1 || len(present3) != 2 {
		t.Errorf("after another change: %d changed at version %d (was %d), want 2", len(present3), v3, v1)
	}
	if _, present4, _, _ := cm.since(k, v1); len(present4) != 1 {
		t.Errorf("since version %d: %d changed, want 1", v1, len(present4))
	}
}

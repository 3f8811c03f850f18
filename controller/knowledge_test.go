package controller

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// testTopo: three controller-mode hosts; tenant-a (VNI 100) on all three
// with a declared port on h1, tenant-b (VNI 200) on h1 and h3, and an
// unmanaged kernel VTEP in tenant-a.
const testTopo = `
name: ctl
defaults: {mode: controller, datapath: netdev}
controller: tcp:127.0.0.1:6653
hosts:
  - {name: h1, vtep: 192.0.2.1}
  - {name: h2, vtep: 192.0.2.2}
  - {name: h3, vtep: 192.0.2.3}
  - {name: kv, vtep: 192.0.2.9, managed: false}
networks:
  - name: tenant-a
    vni: 100
    ports:
      - {host: h1, name: a1, mac: "52:54:00:00:01:01", ip: 10.1.0.1/24}
      - {host: h2, name: a2}
      - {host: h3, name: a3}
      - {host: kv, name: ak, mac: "52:54:00:00:01:09", ip: 10.1.0.9/24}
  - name: tenant-b
    vni: 200
    ports:
      - {host: h1, name: b1}
      - {host: h3, name: b3, mac: "52:54:00:00:02:03"}
`

func parseTopo(t testing.TB, text string) *topology.Topology {
	t.Helper()
	topo, err := topology.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func key(vni uint32, m string) MACKey {
	k, _ := KeyOf(vni, mac(m))
	return k
}

func kinds(ev []Event) []EventKind {
	var out []EventKind
	for _, e := range ev {
		out = append(out, e.Kind)
	}
	return out
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestKnowledgeDeclared(t *testing.T) {
	k := NewKnowledge(flows.DeclaredEndpoints(parseTopo(t, testTopo)), Limits{})
	d, l := k.Counts()
	if d != 3 || l != 0 {
		t.Fatalf("counts %d declared %d learned, want 3, 0", d, l)
	}
	e, ok := k.Lookup(key(100, "52:54:00:00:01:01"))
	if !ok || e.Host != "h1" || e.Learned || !slices.Equal(e.IPs, []netip.Addr{netip.MustParseAddr("10.1.0.1")}) {
		t.Fatalf("declared a1: %+v %v", e, ok)
	}
	// Declared MACs never expire, even on a live host.
	if ev := k.Expire(t0.Add(time.Hour), time.Second, func(string) bool { return true }); len(ev) != 0 {
		t.Fatalf("declared MACs expired: %v", ev)
	}
}

func TestKnowledgeLearnMoveAge(t *testing.T) {
	k := NewKnowledge(nil, Limits{})
	m := key(100, "52:54:00:00:00:07")
	ip := netip.MustParseAddr("10.1.0.7")

	ev, err := k.Observe(m, "h2", ip, t0)
	if err != nil || !slices.Equal(kinds(ev), []EventKind{EventLearned, EventIPLearned}) {
		t.Fatalf("first observation: %v %v", ev, err)
	}
	v := k.Version()
	// The same source on the same host again: nothing changes.
	if ev, _ := k.Observe(m, "h2", ip, t0.Add(time.Second)); len(ev) != 0 || k.Version() != v {
		t.Fatalf("repeat observation changed something: %v", ev)
	}
	// On another host: a move, at once, keeping its IP.
	ev, _ = k.Observe(m, "h3", netip.Addr{}, t0.Add(2*time.Second))
	if len(ev) != 1 || ev[0].Kind != EventMoved || ev[0].OldHost != "h2" || ev[0].Host != "h3" {
		t.Fatalf("move: %+v", ev)
	}
	e, _ := k.Lookup(m)
	if e.Host != "h3" || !e.Learned || !slices.Equal(e.IPs, []netip.Addr{ip}) {
		t.Fatalf("after the move: %+v", e)
	}

	// Activity: the first reading is a baseline, a change refreshes.
	live := func(h string) bool { return h == "h3" }
	k.Activity("h3", map[MACKey]uint64{m: 5}, t0.Add(3*time.Second))
	k.Activity("h3", map[MACKey]uint64{m: 5}, t0.Add(200*time.Second))
	if ev := k.Expire(t0.Add(250*time.Second), 300*time.Second, live); len(ev) != 0 {
		t.Fatalf("expired before idle: %v", ev)
	}
	k.Activity("h3", map[MACKey]uint64{m: 9}, t0.Add(290*time.Second)) // active
	if ev := k.Expire(t0.Add(500*time.Second), 300*time.Second, live); len(ev) != 0 {
		t.Fatalf("expired although active at 290s: %v", ev)
	}
	// Counts from another host than the MAC's are not its activity.
	k.Activity("h2", map[MACKey]uint64{m: 100}, t0.Add(550*time.Second))
	// A host that is not live (switch away) never expires its MACs.
	if ev := k.Expire(t0.Add(1000*time.Second), 300*time.Second, func(string) bool { return false }); len(ev) != 0 {
		t.Fatalf("expired on a host that is away: %v", ev)
	}
	ev = k.Expire(t0.Add(591*time.Second), 300*time.Second, live)
	if len(ev) != 1 || ev[0].Kind != EventForgotten || ev[0].Key != m {
		t.Fatalf("expiry: %v", ev)
	}
	if _, ok := k.Lookup(m); ok {
		t.Fatal("forgotten MAC still known")
	}
	if _, l := k.Counts(); l != 0 {
		t.Fatalf("%d learned after expiry", l)
	}
	// Its IP is free again for another MAC.
	if ev, _ := k.Observe(key(100, "52:54:00:00:00:08"), "h1", ip, t0.Add(600*time.Second)); !slices.Contains(kinds(ev), EventIPLearned) {
		t.Fatalf("IP of a forgotten MAC not reusable: %v", ev)
	}
}

func TestKnowledgeTouchRestartsIdleClock(t *testing.T) {
	k := NewKnowledge(nil, Limits{})
	m := key(100, "52:54:00:00:00:07")
	k.Observe(m, "h2", netip.Addr{}, t0)
	k.Touch("h2", t0.Add(400*time.Second)) // the host came back
	if ev := k.Expire(t0.Add(500*time.Second), 300*time.Second, func(string) bool { return true }); len(ev) != 0 {
		t.Fatalf("expired 100s after the host reconnected: %v", ev)
	}
}

func TestKnowledgeIPs(t *testing.T) {
	k := NewKnowledge(flows.DeclaredEndpoints(parseTopo(t, testTopo)), Limits{})
	a, b := key(100, "52:54:00:00:00:0a"), key(100, "52:54:00:00:00:0b")
	ip := netip.MustParseAddr("10.1.0.50")
	k.Observe(a, "h2", ip, t0)
	// An IP learned by another MAC moves to it (the address was reassigned).
	ev, _ := k.Observe(b, "h3", ip, t0)
	if !slices.Contains(kinds(ev), EventIPLearned) {
		t.Fatalf("IP did not move: %v", ev)
	}
	if e, _ := k.Lookup(a); len(e.IPs) != 0 {
		t.Fatalf("old owner kept the IP: %+v", e)
	}
	// A declared IP is never taken by a learned MAC.
	ev, _ = k.Observe(b, "h3", netip.MustParseAddr("10.1.0.1"), t0)
	if len(ev) != 0 {
		t.Fatalf("declared IP taken: %v", ev)
	}
	// The same IP in another VNI is another address.
	if ev, _ := k.Observe(key(200, "52:54:00:00:00:0c"), "h1", ip, t0); !slices.Contains(kinds(ev), EventIPLearned) {
		t.Fatalf("IP in another VNI refused: %v", ev)
	}
	// At most maxIPsPerMAC per MAC; the oldest goes.
	for i := range maxIPsPerMAC + 2 {
		k.Observe(a, "h2", netip.AddrFrom4([4]byte{10, 1, 1, byte(i)}), t0)
	}
	e, _ := k.Lookup(a)
	if len(e.IPs) != maxIPsPerMAC || slices.Contains(e.IPs, netip.MustParseAddr("10.1.1.0")) {
		t.Fatalf("IPs of a: %v", e.IPs)
	}
}

func TestKnowledgeBound(t *testing.T) {
	k := NewKnowledge(flows.DeclaredEndpoints(parseTopo(t, testTopo)), Limits{MaxLearned: 2})
	for i := range 2 {
		if _, err := k.Observe(MACKey{VNI: 100, MAC: [6]byte{2, 0, 0, 0, 0, byte(i)}}, "h2", netip.Addr{}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.Observe(MACKey{VNI: 100, MAC: [6]byte{2, 0, 0, 0, 0, 9}}, "h2", netip.Addr{}, t0); !errors.Is(err, ErrKnowledgeFull) {
		t.Fatalf("third learned MAC: %v, want ErrKnowledgeFull", err)
	}
	// Known MACs still move when the table is full.
	if ev, err := k.Observe(MACKey{VNI: 100, MAC: [6]byte{2, 0, 0, 0, 0, 1}}, "h3", netip.Addr{}, t0); err != nil || len(ev) != 1 {
		t.Fatalf("move when full: %v %v", ev, err)
	}
}

func TestKnowledgeAdopt(t *testing.T) {
	k := NewKnowledge(flows.DeclaredEndpoints(parseTopo(t, testTopo)), Limits{})
	a1 := key(100, "52:54:00:00:01:01") // declared on h1
	x := key(100, "52:54:00:00:00:07")
	y := key(100, "52:54:00:00:00:08")
	ipx := netip.MustParseAddr("10.1.0.7")

	// h2 holds an entry for x on h3, with its ARP responder: a hint.
	ev := k.Adopt("h2", nil, []flows.Endpoint{{VNI: 100, MAC: x.HardwareAddr(), Host: "h3", IPs: []netip.Addr{ipx}}}, t0)
	if !slices.Equal(kinds(ev), []EventKind{EventAdopted, EventAdopted}) {
		t.Fatalf("hint: %v", ev)
	}
	if e, _ := k.Lookup(x); e.Host != "h3" || !slices.Equal(e.IPs, []netip.Addr{ipx}) {
		t.Fatalf("hinted x: %+v", e)
	}
	// h1 says (known-source flows) that x and the declared a1 are on h1: a
	// hint and a declaration yield to the host's own flows.
	ev = k.Adopt("h1", []MACKey{x, a1, y}, nil, t0)
	if e, _ := k.Lookup(x); e.Host != "h1" {
		t.Fatalf("x after h1's adoption: %+v (%v)", e, ev)
	}
	// A MAC observed live is not moved back by a switch that was away.
	k.Observe(y, "h2", netip.Addr{}, t0.Add(time.Second))
	k.Adopt("h1", []MACKey{y}, nil, t0.Add(2*time.Second))
	if e, _ := k.Lookup(y); e.Host != "h2" {
		t.Fatalf("y moved back by a stale adoption: %+v", e)
	}
	// A hint about a MAC known elsewhere adds nothing.
	v := k.Version()
	if ev := k.Adopt("h3", nil, []flows.Endpoint{{VNI: 100, MAC: y.HardwareAddr(), Host: "h1", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.99")}}}, t0); len(ev) != 0 || k.Version() != v {
		t.Fatalf("stale hint changed knowledge: %v", ev)
	}
}

// TestAdoptRoundTrip: what CompileEndpoints installs on every host, read
// back by flows.EndpointsFromFlows and adopted by a fresh Knowledge, gives the same
// endpoints, so a restarted controller computes the same flows.
func TestAdoptRoundTrip(t *testing.T) {
	topo := parseTopo(t, testTopo)
	before := NewKnowledge(flows.DeclaredEndpoints(topo), Limits{})
	before.Observe(key(100, "52:54:00:00:00:07"), "h2", netip.MustParseAddr("10.1.0.7"), t0)
	before.Observe(key(100, "52:54:00:00:00:08"), "h3", netip.Addr{}, t0)
	before.Observe(key(200, "52:54:00:00:00:09"), "h1", netip.MustParseAddr("10.2.0.9"), t0)
	before.Observe(key(100, "52:54:00:00:01:01"), "h3", netip.Addr{}, t0) // declared: stays
	eps, _ := before.Endpoints()

	after := NewKnowledge(flows.DeclaredEndpoints(topo), Limits{})
	installed := map[string][]flows.Flow{}
	allocs := map[string]topology.Allocation{}
	for _, h := range topo.ManagedHosts() {
		alloc, err := topo.Allocate(h, topology.Allocation{})
		if err != nil {
			t.Fatal(err)
		}
		allocs[h.Name] = alloc
		installed[h.Name] = flows.CompileEndpoints(topo, h, alloc, eps)
	}
	for _, h := range topo.ManagedHosts() {
		local, remote := adoptable(flows.EndpointsFromFlows(installed[h.Name], h.Name, allocs[h.Name]), h.Name)
		after.Adopt(h.Name, local, remote, t0)
	}
	got, _ := after.Endpoints()
	for _, h := range topo.ManagedHosts() {
		want := flows.CompileEndpoints(topo, h, allocs[h.Name], eps)
		have := flows.CompileEndpoints(topo, h, allocs[h.Name], got)
		if !slices.Equal(lines(want), lines(have)) {
			t.Errorf("host %s: flows after adoption differ\nwant %q\nhave %q", h.Name, lines(want), lines(have))
		}
	}
}

func lines(fl []flows.Flow) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.String()
	}
	return out
}

func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(10, 5)
	n := 0
	for range 100 {
		if b.allow(t0) {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("burst admitted %d, want 5", n)
	}
	// 10/s: one second later, 10 more (capped at the burst of 5).
	n = 0
	for range 100 {
		if b.allow(t0.Add(time.Second)) {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("after 1s admitted %d, want 5 (burst)", n)
	}
	n = 0
	for i := range 1000 { // 1000 events over 10 s: ~100 admitted
		if b.allow(t0.Add(time.Second + time.Duration(i)*10*time.Millisecond)) {
			n++
		}
	}
	if n < 95 || n > 106 {
		t.Fatalf("steady state admitted %d of 1000 over 10s at 10/s", n)
	}
	// A clock going backwards mints nothing.
	b2 := newTokenBucket(1, 1)
	b2.allow(t0.Add(time.Hour))
	if b2.allow(t0) {
		t.Fatal("clock going back minted a token")
	}
	b2.refund()
	if !b2.allow(t0) {
		t.Fatal("refunded token not usable")
	}
	if !newTokenBucket(0, 0).allow(t0) {
		t.Fatal("rate 0 must admit everything")
	}
}

// ChangesSince names every key a change touched, including one that lost a
// learned IP to another MAC, with its endpoint now, and admits when its log
// no longer reaches back far enough.
func TestKnowledgeChangesSince(t *testing.T) {
	k := NewKnowledge(nil, Limits{})
	a, b := key(100, "02:00:00:00:00:0a"), key(100, "02:00:00:00:00:0b")
	ip := netip.MustParseAddr("10.1.0.5")
	if _, err := k.Observe(a, "h1", ip, t0); err != nil {
		t.Fatal(err)
	}
	v1 := k.Version()
	if eps, present, v, ok := k.ChangesSince(v1); !ok || v != v1 || len(eps) != 0 || len(present) != 0 {
		t.Fatalf("nothing changed since %d: %v %v %d %v", v1, eps, present, v, ok)
	}
	// b takes a's learned IP: a changed too, though no event names it.
	if _, err := k.Observe(b, "h2", ip, t0); err != nil {
		t.Fatal(err)
	}
	eps, present, v, ok := k.ChangesSince(v1)
	if !ok || v != k.Version() || !present[a] || !present[b] || len(present) != 2 {
		t.Fatalf("after b took a's IP: present %v, version %d (%v)", present, v, ok)
	}
	if len(eps[a].IPs) != 0 || !slices.Equal(eps[b].IPs, []netip.Addr{ip}) || eps[b].Host != "h2" {
		t.Fatalf("endpoints after b took a's IP: %+v", eps)
	}
	// a forgotten: present but gone.
	k.Expire(t0.Add(time.Hour), time.Minute, func(string) bool { return true })
	if _, present, _, ok := k.ChangesSince(v); !ok || present[a] || present[b] || len(present) != 2 {
		t.Fatalf("after expiry: present %v (%v)", present, ok)
	}
	if _, _, _, ok := k.ChangesSince(k.Version() + 1); ok {
		t.Fatal("a version from the future was accepted")
	}
	// More changes than the log keeps: the oldest versions are no longer
	// answered.
	for i := range maxChanges + 1 {
		m := key(200, fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff))
		if _, err := k.Observe(m, "h1", netip.Addr{}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, ok := k.ChangesSince(v1); ok {
		t.Fatal("ChangesSince answered for a version older than its log")
	}
	if _, present, _, ok := k.ChangesSince(k.Version() - 1); !ok || len(present) != 1 {
		t.Fatalf("the last change: %v (%v)", present, ok)
	}
}

// TestKnowledgeDeclaredPinned: a declared MAC reported from another host is
// a conflict, never a move, neither by a packet-in nor by adoption; its IP
// stays its own.
func TestKnowledgeDeclaredPinned(t *testing.T) {
	k := NewKnowledge(flows.DeclaredEndpoints(parseTopo(t, testTopo)), Limits{FlapMoves: 4, FlapWindow: 10 * time.Second, FlapHold: time.Minute})
	a1 := key(100, "52:54:00:00:01:01") // declared on h1 with 10.1.0.1
	v := k.Version()
	ev, err := k.Observe(a1, "h2", netip.MustParseAddr("10.1.0.66"), t0)
	var conflict *ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, ErrDeclaredElsewhere) || len(ev) != 0 {
		t.Fatalf("declared MAC seen on h2: %v %v, want a conflict and no event", ev, err)
	}
	if conflict.Key != a1 || conflict.Declared != "h1" || conflict.Seen != "h2" {
		t.Errorf("conflict %+v", conflict)
	}
	t.Log(err)
	if e, _ := k.Lookup(a1); e.Host != "h1" || !slices.Equal(e.IPs, []netip.Addr{netip.MustParseAddr("10.1.0.1")}) || k.Version() != v {
		t.Fatalf("declared MAC changed: %+v (version %d -> %d)", e, v, k.Version())
	}
	// Every report is a conflict, however many.
	for i := range 20 {
		if _, err := k.Observe(a1, "h3", netip.Addr{}, t0.Add(time.Duration(i)*time.Second)); !errors.Is(err, ErrDeclaredElsewhere) {
			t.Fatalf("report %d from h3: %v", i, err)
		}
	}
	// A host whose flows say the declared MAC is local does not move it
	// either (a switch that took a hijacker's flows, an old controller's
	// move).
	if ev := k.Adopt("h3", []MACKey{a1}, nil, t0); len(ev) != 0 {
		t.Fatalf("adoption moved a declared MAC: %v", ev)
	}
	// On its own host it is only refreshed.
	if ev, err := k.Observe(a1, "h1", netip.Addr{}, t0); err != nil || len(ev) != 0 {
		t.Fatalf("declared MAC on its own host: %v %v", ev, err)
	}
	if e, _ := k.Lookup(a1); e.Host != "h1" {
		t.Fatalf("declared MAC on %s", e.Host)
	}
}

// TestKnowledgeFlapDamping: a learned MAC moves at once FlapMoves times
// within FlapWindow; the next move freezes it where it is (reported once as
// Started) for FlapHold; after the hold-down it moves at once again, and
// moves spread wider than the window never freeze it.
func TestKnowledgeFlapDamping(t *testing.T) {
	l := Limits{FlapMoves: 4, FlapWindow: 10 * time.Second, FlapHold: 60 * time.Second}
	k := NewKnowledge(nil, l)
	m := key(100, "52:54:00:00:00:07")
	hosts := []string{"h1", "h2"}
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	if _, err := k.Observe(m, "h1", netip.Addr{}, at(0)); err != nil {
		t.Fatal(err)
	}
	// Four moves in 2 s: each applied at once.
	for i := 1; i <= l.FlapMoves; i++ {
		ev, err := k.Observe(m, hosts[i%2], netip.Addr{}, at(float64(i)*0.5))
		if err != nil || len(ev) != 1 || ev[0].Kind != EventMoved {
			t.Fatalf("move %d: %v %v", i, ev, err)
		}
	}
	frozenOn := hosts[l.FlapMoves%2]
	// The fifth within the window freezes the MAC where it is.
	ev, err := k.Observe(m, hosts[(l.FlapMoves+1)%2], netip.Addr{}, at(3))
	var damped *DampedError
	if !errors.As(err, &damped) || !damped.Started || len(ev) != 0 {
		t.Fatalf("fifth move: %v %v, want damping to start", ev, err)
	}
	if damped.Host != frozenOn || !damped.Until.Equal(at(3).Add(l.FlapHold)) {
		t.Errorf("damping %+v, want on %s until %v", damped, frozenOn, at(3).Add(l.FlapHold))
	}
	t.Log(err)
	// During the hold-down: refused, not started again, the MAC stays.
	v := k.Version()
	for s := 4.0; s < 63; s += 0.25 {
		_, err := k.Observe(m, hosts[(l.FlapMoves+1)%2], netip.Addr{}, at(s))
		if !errors.As(err, &damped) || damped.Started {
			t.Fatalf("at %.2fs: %v, want a damped refusal that did not start damping", s, err)
		}
	}
	if e, _ := k.Lookup(m); e.Host != frozenOn || k.Version() != v {
		t.Fatalf("MAC moved during the hold-down: %+v", e)
	}
	// Reports from where it is refresh it as usual.
	if _, err := k.Observe(m, frozenOn, netip.Addr{}, at(30)); err != nil {
		t.Fatal(err)
	}
	// The hold-down is over: the next move is applied at once.
	ev, err = k.Observe(m, hosts[(l.FlapMoves+1)%2], netip.Addr{}, at(63))
	if err != nil || len(ev) != 1 || ev[0].Kind != EventMoved {
		t.Fatalf("move after the hold-down: %v %v", ev, err)
	}
	// Moves spread wider than the window are never damped.
	k2 := NewKnowledge(nil, l)
	k2.Observe(m, "h1", netip.Addr{}, at(0))
	for i := 1; i <= 20; i++ {
		if _, err := k2.Observe(m, hosts[i%2], netip.Addr{}, at(float64(i)*3)); err != nil {
			t.Fatalf("move %d, 3 s apart: %v", i, err)
		}
	}
	// Without limits, nothing is damped.
	k3 := NewKnowledge(nil, Limits{})
	for i := range 100 {
		if _, err := k3.Observe(m, hosts[i%2], netip.Addr{}, at(float64(i)*0.01)); err != nil {
			t.Fatalf("undamped move %d: %v", i, err)
		}
	}
}

// TestKnowledgeBoundPerVNI: one network at its bound refuses new MACs
// (scope vni) while the others still learn, up to the global bound (scope
// global); forgetting frees room in the network it was in.
func TestKnowledgeBoundPerVNI(t *testing.T) {
	k := NewKnowledge(nil, Limits{MaxLearned: 5, MaxLearnedPerVNI: 3})
	mk := func(vni uint32, i int) MACKey { return MACKey{VNI: vni, MAC: [6]byte{2, 0, 0, 0, byte(vni), byte(i)}} }
	for i := range 3 {
		if _, err := k.Observe(mk(100, i), "h1", netip.Addr{}, t0); err != nil {
			t.Fatal(err)
		}
	}
	_, err := k.Observe(mk(100, 9), "h1", netip.Addr{}, t0)
	var full *FullError
	if !errors.As(err, &full) || !errors.Is(err, ErrKnowledgeFull) || full.Scope != ScopeVNI || full.VNI != 100 || full.Max != 3 {
		t.Fatalf("fourth MAC of VNI 100: %v, want the per-VNI bound", err)
	}
	t.Log(err)
	// Tenant B is not starved by tenant A.
	for i := range 2 {
		if _, err := k.Observe(mk(200, i), "h1", netip.Addr{}, t0); err != nil {
			t.Fatalf("MAC %d of VNI 200 while VNI 100 is full: %v", i, err)
		}
	}
	// 5 learned in all: the global bound.
	if _, err := k.Observe(mk(300, 0), "h1", netip.Addr{}, t0); !errors.As(err, &full) || full.Scope != ScopeGlobal || full.Max != 5 {
		t.Fatalf("sixth MAC: %v, want the global bound", err)
	}
	// Adoption respects the bounds too.
	if ev := k.Adopt("h2", []MACKey{mk(300, 1)}, nil, t0); len(ev) != 0 {
		t.Fatalf("adoption beyond the bound: %v", ev)
	}
	// One of VNI 100 ages out: VNI 100 (and the total) has room for one.
	k.Observe(mk(100, 0), "h1", netip.Addr{}, t0.Add(-time.Hour))
	k.Observe(mk(100, 1), "h1", netip.Addr{}, t0.Add(time.Hour))
	k.Observe(mk(100, 2), "h1", netip.Addr{}, t0.Add(time.Hour))
	k.Observe(mk(200, 0), "h1", netip.Addr{}, t0.Add(time.Hour))
	k.Observe(mk(200, 1), "h1", netip.Addr{}, t0.Add(time.Hour))
	if ev := k.Expire(t0.Add(30*time.Minute), 10*time.Minute, func(string) bool { return true }); len(ev) != 1 || ev[0].Key != mk(100, 0) {
		t.Fatalf("expiry: %v", ev)
	}
	if _, err := k.Observe(mk(100, 9), "h1", netip.Addr{}, t0.Add(time.Hour)); err != nil {
		t.Fatalf("VNI 100 after one of its MACs aged out: %v", err)
	}
	if _, l := k.Counts(); l != 5 {
		t.Fatalf("%d learned, want 5", l)
	}
}

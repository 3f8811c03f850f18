package controller

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// TestReplicaHealthSlavesReady: /readyz of a replica counts a switch it is
// a slave of as ready once connected (its master programs it), so every
// replica becomes ready; a slave switch that goes away makes it not ready.
func TestReplicaHealthSlavesReady(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	start := func(name string) (*runningServer, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: name, OpenDirectory: dir.open,
			Grace: 100 * time.Millisecond, MetricsListen: "127.0.0.1:0"}), l.Addr().String()
	}
	a, addrA := start("ctl-a")
	b, addrB := start("ctl-b")
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 20*time.Second, "one master per switch", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	for _, r := range []*runningServer{a, b} {
		eventually(t, 10*time.Second, "/readyz of "+r.Name()+" says ready", func() bool {
			code, _ := get(t, r.MetricsAddr(), "/readyz")
			return code == http.StatusOK
		})
	}
	// Some switch is a slave of each (the hash spreads 6 switches over 2).
	slaves := map[string]int{}
	for _, r := range []*runningServer{a, b} {
		for _, st := range r.Switches() {
			if st.Role == ofcodec.RoleSlave.String() {
				slaves[r.Name()]++
				if st.Synced {
					t.Errorf("%s: slave switch %s %s counted programmed", r.Name(), st.Host, st.Bridge)
				}
			}
		}
	}
	if slaves["ctl-a"]+slaves["ctl-b"] != 6 {
		t.Errorf("slave sessions %v, want 6 in all", slaves)
	}
	// A switch a replica is slave of goes away: that replica is not ready.
	var victim *runningServer
	var gone *openflowtest.Switch
	for _, sw := range switchesOf(hosts) {
		if !masterOf(a.Server, sw.DatapathID()) {
			victim, gone = a, sw
			break
		}
	}
	if gone == nil {
		t.Fatal("a masters every switch")
	}
	gone.Close()
	eventually(t, 10*time.Second, "/readyz of "+victim.Name()+" names the missing switch", func() bool {
		code, body := get(t, victim.MetricsAddr(), "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not connected")
	})
}

// TestReplicaMasterConnectionLost: a master replica that loses its
// connection to a switch but stays alive releases the switch in the
// directory, so the other replica connected to it becomes its master at
// once instead of never (the first replica's heartbeat goes on).
func TestReplicaMasterConnectionLost(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	a, addrA := replicaServer(t, topo, "ctl-a", dir)
	b, addrB := replicaServer(t, topo, "ctl-b", dir)
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 20*time.Second, "one master per switch", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	var sw *openflowtest.Switch
	for _, s := range switchesOf(hosts) {
		if masterOf(a.Server, s.DatapathID()) {
			sw = s
			break
		}
	}
	if sw == nil {
		t.Fatal("a masters no switch")
	}
	dpid := sw.DatapathID()
	before, _ := dir.owner(dpid)
	for _, c := range sw.Conns() {
		if c.Role() == ofcodec.RoleMaster {
			c.Close() // a's connection; the switch redials it after its backoff
		}
	}
	took := eventually(t, 10*time.Second, "b masters the switch", func() bool {
		o, _ := dir.owner(dpid)
		return masterOf(b.Server, dpid) && o.Master == "ctl-b"
	})
	t.Logf("b master %s after a's connection dropped", took)
	if took > 3*time.Second {
		t.Errorf("takeover took %s, want about a claim delay", took)
	}
	if o, _ := dir.owner(dpid); o.Generation != before.Generation+1 {
		t.Errorf("generation %d after the takeover, want %d", o.Generation, before.Generation+1)
	}
	if got := metricOf(t, a.Server, "claims_total", "result", claimReleased); got != 1 {
		t.Errorf("a counted %v releases, want 1", got)
	}
	eventually(t, 10*time.Second, "a back as a slave", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
}

// TestReplicaClaimAboveSwitchGeneration: the directory was rebuilt (or
// lost a row) while the switches kept running: a switch remembers a
// generation above the directory's, and refuses MASTER with a lower one as
// stale. The replica reads the switch's generation and claims above it.
func TestReplicaClaimAboveSwitchGeneration(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	h1, h2 := emuHostNamed(hosts, "h1"), emuHostNamed(hosts, "h2")
	// A previous controller was master of both with generation 100.
	for _, sw := range []*openflowtest.Switch{h1.tun, h2.tun} {
		nc := sw.Pipe()
		if err := takeMaster(nc, 100); err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	dir := newFakeCluster(time.Second)
	// h2's row names ctl-a itself, with the rebuilt directory's generation 5.
	dir.mu.Lock()
	dir.putRowLocked(fmt.Sprintf("%016x", h2.tun.DatapathID()),
		SwitchOwner{DatapathID: h2.tun.DatapathID(), Host: "h2", Bridge: topology.BridgeTun, Master: "ctl-a", Generation: 5})
	dir.mu.Unlock()
	a, addrA := replicaServer(t, topo, "ctl-a", dir)
	for _, e := range hosts {
		e.connect(t, addrA)
	}
	eventually(t, 20*time.Second, "a masters every switch", func() bool { return oneMasterEach(hosts, a.Server) })
	for _, sw := range []*openflowtest.Switch{h1.tun, h2.tun} {
		if o, _ := dir.owner(sw.DatapathID()); o.Generation != 101 || o.Master != "ctl-a" {
			t.Errorf("row of %016x: %+v, want ctl-a at generation 101", sw.DatapathID(), o)
		}
	}
	if o, _ := dir.owner(emuHostNamed(hosts, "h3").tun.DatapathID()); o.Generation != 1 {
		t.Errorf("a switch with no remembered generation claimed at %d, want 1", o.Generation)
	}
}

// TestReplicaHostileEndpointRows: endpoint rows that do not parse, or name
// a host the topology lacks or one not in the row's network, are counted
// and left out of the knowledge.
func TestReplicaHostileEndpointRows(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	s, err := NewServer(ServerOptions{Topology: parseTopo(t, testTopo), Log: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	learned := func(vni uint32, mac, host string, ips ...string) *directory.Endpoint {
		return &directory.Endpoint{Key: directory.Key{VNI: vni, MAC: mac}, Host: host, IPs: ips, Kind: directory.KindLearned, Writer: "ctl-x"}
	}
	bad := []*directory.Endpoint{
		learned(100, "not-a-mac", "h2"),
		learned(0, "52:54:00:00:07:01", "h2"),
		learned(1<<24, "52:54:00:00:07:02", "h2"),
		learned(100, "01:00:5e:00:00:01", "h2"), // multicast: never learned
		learned(100, "52:54:00:00:07:03", "h9"),
		learned(200, "52:54:00:00:07:04", "h2"), // h2 has no port in 200
		learned(100, "52:54:00:00:07:05", "h2", "10.1.0.300"),
		learned(300, "52:54:00:00:07:07", "h2"), // VNI 300 is no network of the topology
	}
	handDeclared := learned(100, "52:54:00:00:07:08", "h2")
	handDeclared.Kind = directory.KindDeclared // replicas never write declared rows
	bad = append(bad, handDeclared)
	v := s.Knowledge().Version()
	for _, e := range bad {
		if ev := s.merge(e, time.Now()); len(ev) != 0 {
			t.Errorf("row %+v merged: %v", *e, ev)
		}
	}
	if s.Knowledge().Version() != v {
		t.Error("the knowledge changed")
	}
	if got := metricOf(t, s, "directory_endpoints_total", "result", learnedMalformed); got != float64(len(bad)) {
		t.Errorf("malformed rows counted %v, want %d", got, len(bad))
	}
	// a1's declared MAC claimed on h2: refused, the declared host kept.
	if ev := s.merge(learned(100, "52:54:00:00:01:01", "h2"), time.Now()); len(ev) != 0 {
		t.Errorf("a declared MAC moved by a directory row: %v", ev)
	}
	if got := metricOf(t, s, "directory_endpoints_total", "result", learnedRefused); got != 1 {
		t.Errorf("declared MAC claimed elsewhere counted %v as refused, want 1", got)
	}
	if e, _ := s.Knowledge().Lookup(key(100, "52:54:00:00:01:01")); e.Host != "h1" {
		t.Errorf("declared MAC now on %q, want h1", e.Host)
	}
	// Logged once per row, at most hostileRowLines a minute: each of the
	// 10 rows once, the same rows again not at all.
	for _, e := range bad {
		s.merge(e, time.Now())
	}
	if n := logs.Len(); n != hostileRowLines {
		for _, l := range logs.All() {
			t.Log(l.Message, l.ContextMap())
		}
		t.Errorf("%d warnings for %d hostile rows seen twice, want %d (once each, capped)", n, len(bad)+1, hostileRowLines)
	}
	for _, want := range []string{"VNI 300 is not a network", "declared endpoints come from the topology", "declared MAC seen on another host"} {
		found := false
		for _, l := range logs.All() {
			found = found || strings.Contains(fmt.Sprint(l.ContextMap()["error"]), want)
		}
		if !found {
			t.Errorf("no warning says %q", want)
		}
	}
	if ev := s.merge(learned(100, "52:54:00:00:07:06", "h2", "10.1.0.66"), time.Now()); len(ev) == 0 {
		t.Error("a good row was not merged")
	}
}

// TestReplicaHardwareVTEPClaimLost: a replica drives a hardware VTEP only
// while it holds the VTEP's claim, and stops at once (a check interval)
// when the directory names another live holder; it takes the VTEP back
// once that holder is dead.
func TestReplicaHardwareVTEPClaimLost(t *testing.T) {
	const target = "tcp:10.0.0.9:6640"
	f := newFakeVTEPs()
	dir := newFakeCluster(time.Second)
	s := startTestServer(t, ServerOptions{Topology: parseTopo(t, hwTopo), Grace: 10 * time.Millisecond, Name: "ctl-a", OpenDirectory: dir.open},
		func(s *Server) { s.hw.connect = f.connect })
	open := func() int { n, _, _ := f.state(target); return n }
	eventually(t, 10*time.Second, "ctl-a drives tor1", func() bool { return open() == 1 })
	key := directory.HardwareVTEPKey("tor1")
	dir.mu.Lock()
	row := dir.rows[key]
	dir.others["ctl-x"] = true
	dir.rows[key] = SwitchOwner{Host: "tor1", Master: "ctl-x", Generation: row.Generation + 1}
	dir.mu.Unlock()
	took := eventually(t, 5*time.Second, "ctl-a stops driving tor1", func() bool { return open() == 0 })
	t.Logf("stopped %s after the claim went to ctl-x", took)
	time.Sleep(3 * masterCheckInterval)
	if open() != 0 {
		t.Fatal("ctl-a drives tor1 again while ctl-x is alive")
	}
	dir.mu.Lock()
	delete(dir.others, "ctl-x")
	dir.mu.Unlock()
	eventually(t, 5*time.Second, "ctl-a drives tor1 again", func() bool { return open() == 1 })
	if o, _ := (&fakeDir{c: dir}).KeyOwner(key); o.Master != s.Name() || o.Generation != row.Generation+2 {
		t.Errorf("claim row %+v, want ctl-a at generation %d", o, row.Generation+2)
	}
}

package controller

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// metricValue is the value of the metric name (without the
// ovs_vxctl_controller_ prefix) whose labels include labels (name, value
// pairs); ok is false when there is none.
func metricValue(t testing.TB, s *Server, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ovs_vxctl_controller_"+name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

// startTestServer runs a controller on a loopback port until the test
// ends; tweak may change it before it runs.
func startTestServer(t *testing.T, o ServerOptions, tweak func(*Server)) *Server {
	t.Helper()
	o.Listen = []string{"tcp:127.0.0.1:0"}
	if o.Log == nil {
		o.Log = zaptest.NewLogger(t)
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- s.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("controller did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	return s
}

// fakeSwitch is just enough of a switch for identity checks: it says
// hello, answers the features request with its datapath ID and, while
// answer is set, echo requests; everything else is ignored.
type fakeSwitch struct {
	nc     net.Conn
	dpid   uint64
	answer atomic.Bool
	closed chan struct{} // closed when the controller ends the connection
}

func dialFake(t *testing.T, addr string, dpid uint64) *fakeSwitch {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSwitch{nc: nc, dpid: dpid, closed: make(chan struct{})}
	f.answer.Store(true)
	t.Cleanup(func() { nc.Close() })
	f.send(ofconn.TypeHello, 1, nil)
	go f.serve()
	return f
}

func (f *fakeSwitch) send(typ uint8, xid uint32, body []byte) {
	b := make([]byte, ofconn.HeaderLen, ofconn.HeaderLen+len(body))
	b[0], b[1] = ofconn.Version, typ
	binary.BigEndian.PutUint32(b[4:], xid)
	b = append(b, body...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	f.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	f.nc.Write(b)
}

func (f *fakeSwitch) serve() {
	defer close(f.closed)
	for {
		m, err := ofconn.ReadFrame(f.nc)
		if err != nil {
			return
		}
		xid := binary.BigEndian.Uint32(m[4:])
		switch m[1] {
		case ofconn.TypeFeaturesReq:
			body := make([]byte, 24)
			binary.BigEndian.PutUint64(body, f.dpid)
			body[12] = 254
			f.send(ofconn.TypeFeaturesReply, xid, body)
		case ofconn.TypeEchoRequest:
			if f.answer.Load() {
				f.send(ofconn.TypeEchoReply, xid, m[ofconn.HeaderLen:])
			}
		}
	}
}

func (f *fakeSwitch) waitClosed(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-f.closed:
	case <-time.After(d):
		t.Fatalf("%s: connection still open after %v", what, d)
	}
}

// connectedFrom returns the remote address the controller sees for the one
// switch it serves, "" when it serves none or several.
func connectedFrom(s *Server) string {
	sw := s.Switches()
	if len(sw) != 1 {
		return ""
	}
	return sw[0].Remote
}

// TestClaimOfConnectedDatapathRefused: a second connection claiming the
// datapath ID of a connected switch that answers echo requests is refused
// and the switch keeps its session; once the switch stops answering, a new
// claim displaces it. Both are logged and counted.
func TestClaimOfConnectedDatapathRefused(t *testing.T) {
	topo := parseTopo(t, testTopo)
	// No reconcile during the test: the fake switch answers no request.
	s := startTestServer(t, ServerOptions{Topology: topo, Grace: time.Hour}, func(s *Server) { s.probeTimeout = 500 * time.Millisecond })
	addr := s.Addrs()[0].String()
	dpid := topology.BridgeDatapathID(topo.Name, "h1", topology.BridgeInt)
	for _, reason := range []string{refusedClaimed, refusedCertificate, refusedPending} {
		if v, ok := metricValue(t, s, "switches_refused_total", "reason", reason); !ok || v != 0 {
			t.Errorf("refused{reason=%s} at start: %v %v, want 0", reason, v, ok)
		}
	}
	if v, ok := metricValue(t, s, "switches_displaced_total", "reason", displacedUnresponsive); !ok || v != 0 {
		t.Errorf("displaced at start: %v %v, want 0", v, ok)
	}

	real := dialFake(t, addr, dpid)
	eventually(t, 5*time.Second, "the switch served", func() bool { return connectedFrom(s) == real.nc.LocalAddr().String() })

	thief := dialFake(t, addr, dpid)
	thief.waitClosed(t, 5*time.Second, "a second claim of a healthy switch's datapath ID")
	if got := connectedFrom(s); got != real.nc.LocalAddr().String() {
		t.Fatalf("served %q after the second claim, want the first switch %s", got, real.nc.LocalAddr())
	}
	if v, _ := metricValue(t, s, "switches_refused_total", "reason", refusedClaimed); v != 1 {
		t.Errorf("refused{reason=claimed} = %v, want 1", v)
	}
	refusals := s.Refusals()
	if len(refusals) != 1 || refusals[0].DatapathID != dpid || !strings.Contains(refusals[0].Reason, "answers") {
		t.Fatalf("refusals %+v", refusals)
	}
	t.Logf("refused: %s", refusals[0].Reason)
	select {
	case <-real.closed:
		t.Fatal("the connected switch lost its connection to the claim")
	default:
	}

	// The switch stops answering: the next claim displaces it.
	real.answer.Store(false)
	start := time.Now()
	heir := dialFake(t, addr, dpid)
	real.waitClosed(t, 5*time.Second, "an unresponsive switch after a new claim")
	eventually(t, 5*time.Second, "the new connection served", func() bool { return connectedFrom(s) == heir.nc.LocalAddr().String() })
	t.Logf("unresponsive switch displaced after %v", time.Since(start).Round(time.Millisecond))
	// The new session may be served a moment before claim counts the
	// displacement: wait for the counter rather than read it once.
	eventually(t, 5*time.Second, "the displacement counted", func() bool {
		v, _ := metricValue(t, s, "switches_displaced_total", "reason", displacedUnresponsive)
		return v >= 1
	})
	if v, _ := metricValue(t, s, "switches_displaced_total", "reason", displacedUnresponsive); v != 1 {
		t.Errorf("displaced = %v, want 1", v)
	}
	if v, _ := metricValue(t, s, "switches_refused_total", "reason", refusedClaimed); v != 1 {
		t.Errorf("refused{reason=claimed} = %v after the displacement, want still 1", v)
	}
}

// addrConn is a connection from a given address, for admit.
type addrConn struct {
	net.Conn
	remote net.Addr
	closed bool
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }
func (c *addrConn) Close() error         { c.closed = true; return nil }

// TestAdmitBounds: connections not yet identified are admitted up to
// MaxPendingPerSource from one address and MaxPending in all; more are
// closed at once and counted; a release makes room again.
func TestAdmitBounds(t *testing.T) {
	s, err := NewServer(ServerOptions{Topology: parseTopo(t, testTopo), Log: zaptest.NewLogger(t), MaxPending: 4, MaxPendingPerSource: 2})
	if err != nil {
		t.Fatal(err)
	}
	from := func(ip string) *addrConn {
		return &addrConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
	}
	var releases []func()
	for i, c := range []struct {
		src  string
		want bool
	}{
		{"192.0.2.1", true}, {"192.0.2.1", true}, {"192.0.2.1", false}, // per source
		{"192.0.2.2", true}, {"192.0.2.2", true}, {"192.0.2.3", false}, // in all
	} {
		nc := from(c.src)
		release, ok := s.admit(nc)
		if ok != c.want || nc.closed == ok {
			t.Fatalf("connection %d from %s: admitted %v (closed %v), want admitted %v", i, c.src, ok, nc.closed, c.want)
		}
		if ok {
			releases = append(releases, release)
		}
	}
	if v, _ := metricValue(t, s, "connections_pending"); v != 4 {
		t.Errorf("pending = %v, want 4", v)
	}
	for reason, want := range map[string]float64{refusedPendingPerIP: 1, refusedPending: 1} {
		if v, _ := metricValue(t, s, "switches_refused_total", "reason", reason); v != want {
			t.Errorf("refused{reason=%s} = %v, want %v", reason, v, want)
		}
	}
	releases[0]()
	releases[0]() // a second call changes nothing
	if _, ok := s.admit(from("192.0.2.3")); !ok {
		t.Fatal("no room after a release")
	}
	if _, ok := s.admit(from("192.0.2.1")); ok {
		t.Fatal("admitted past the bound after a double release")
	}
}

// TestPendingConnectionsBounded: silent connections to a running
// controller are held up to MaxPending (loopback addresses are not bound
// per source); one more is closed at once, and room comes back when one
// goes away.
func TestPendingConnectionsBounded(t *testing.T) {
	s := startTestServer(t, ServerOptions{Topology: parseTopo(t, testTopo), MaxPending: 3, MaxPendingPerSource: 1}, nil)
	addr := s.Addrs()[0].String()
	dial := func() net.Conn {
		t.Helper()
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	// held reports whether the controller keeps a silent connection open:
	// it sends its hello first, and closes a refused one before.
	held := func(nc net.Conn) bool {
		nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		var hdr [ofconn.HeaderLen]byte
		_, err := io.ReadFull(nc, hdr[:])
		return err == nil && hdr[1] == ofconn.TypeHello
	}
	var open []net.Conn
	for i := range 3 {
		nc := dial()
		if !held(nc) {
			t.Fatalf("connection %d refused", i)
		}
		open = append(open, nc)
	}
	if held(dial()) {
		t.Fatal("a fourth silent connection held")
	}
	if v, _ := metricValue(t, s, "switches_refused_total", "reason", refusedPending); v != 1 {
		t.Errorf("refused{reason=pending-limit} = %v, want 1", v)
	}
	open[0].Close()
	eventually(t, 5*time.Second, "a pending connection released", func() bool {
		v, _ := metricValue(t, s, "connections_pending")
		return v == 2
	})
	if !held(dial()) {
		t.Fatal("no room after a pending connection closed")
	}
}

func TestCertNamesHost(t *testing.T) {
	cert := func(cn string, dns ...string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
	}
	for _, c := range []struct {
		cert *x509.Certificate
		host string
		ok   bool
	}{
		{cert("host1 id:5c6b3f0e-2d4a-4b1e-9a7e-0f1e2d3c4b5a", "host1 id:5c6b3f0e-2d4a-4b1e-9a7e-0f1e2d3c4b5a"), "host1", true}, // ovs-pki req
		{cert("host1"), "host1", true},                       // ovs-pki --unique
		{cert("switch", "other", "host1"), "host1", true},    // SAN
		{cert("host10 id:x", "host10 id:x"), "host1", false}, // a prefix of another name
		{cert("host1id:x"), "host1", false},
		{cert("host2 id:x", "host2 id:x"), "host1", false},
		{cert("Host1"), "host1", false},
		{cert("sc id:x", "sc id:x"), "host1", false}, // signed by the CA, for someone else
		{cert("x", "host1.example.com"), "host1", false},
		{cert(""), "", false},
	} {
		if got := certNamesHost(c.cert, c.host); got != c.ok {
			t.Errorf("certificate %s for host %q: %v, want %v", certNames(c.cert), c.host, got, c.ok)
		}
	}
}

// TestObserveRefusedLogsOnce: what the knowledge refuses is counted every
// time and logged once per (MAC, host), per bound scope, and per damping.
func TestObserveRefusedLogsOnce(t *testing.T) {
	topo := parseTopo(t, testTopo)
	core, logs := observer.New(zap.WarnLevel)
	s, err := NewServer(ServerOptions{Topology: topo, Log: zap.New(core), MaxLearned: 4, MaxLearnedPerVNI: 2,
		FlapMoves: 2, FlapWindow: time.Minute, FlapHold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	declared := key(100, "52:54:00:00:01:01") // on h1
	learned := key(200, "52:54:00:00:00:0e")
	results := map[string]int{}
	observe := func(k MACKey, host string, now time.Time) {
		if _, err := s.know.Observe(k, host, netip.Addr{}, now); err != nil {
			results[s.observeRefused(err, now)]++
		}
	}
	for i := range 100 {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		observe(declared, "h2", now)
		observe(declared, "h3", now)
		observe(learned, []string{"h1", "h3"}[i%2], now)                           // flaps
		observe(MACKey{VNI: 100, MAC: [6]byte{2, 0, 0, 0, 0, byte(i)}}, "h2", now) // fills VNI 100
	}
	t.Logf("results %v", results)
	if results[resultConflict] != 200 || results[resultDamped] != 49 || results[resultFull] != 98 {
		t.Errorf("results %v, want 200 conflicts, 49 damped (the reports from h3 after the freeze), 98 full", results)
	}
	count := func(msg string) int { return logs.FilterMessageSnippet(msg).Len() }
	if n := count("declared MAC seen on another host"); n != 2 {
		t.Errorf("%d conflict lines for 2 (MAC, host) pairs", n)
	}
	if n := count("moving too often"); n != 1 {
		t.Errorf("%d damping lines, want 1", n)
	}
	if n := count("bound on learned MACs"); n != 1 {
		t.Errorf("%d bound lines, want 1", n)
	}
	for name, want := range map[string]float64{"declared_mac_conflicts_total": 200, "mac_flap_dampings_total": 1} {
		if v, _ := metricValue(t, s, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v, _ := metricValue(t, s, "learned_mac_bound_hits_total", "scope", ScopeVNI); v != 98 {
		t.Errorf("bound hits{scope=vni} = %v, want 98", v)
	}
	// An hour later the conflict is worth a line again.
	observe(declared, "h2", t0.Add(time.Hour))
	if n := count("declared MAC seen on another host"); n != 3 {
		t.Errorf("%d conflict lines after an hour, want 3", n)
	}
}

// TestAdmitEvictsStalledHandshakes: with every pending slot taken, a
// newcomer is refused while the others are young, and evicts (closes) the
// oldest once it has been silent for stalledAge; the evicted connection's
// own release then changes nothing.
func TestAdmitEvictsStalledHandshakes(t *testing.T) {
	s, err := NewServer(ServerOptions{Topology: parseTopo(t, testTopo), Log: zaptest.NewLogger(t), MaxPending: 2, MaxPendingPerSource: 2})
	if err != nil {
		t.Fatal(err)
	}
	from := func(ip string) *addrConn {
		return &addrConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
	}
	t0 := time.Unix(1000, 0)
	a, b := from("192.0.2.1"), from("192.0.2.2")
	releaseA, okA := s.admitAt(a, t0)
	_, okB := s.admitAt(b, t0.Add(100*time.Millisecond))
	if !okA || !okB {
		t.Fatal("the first two connections were not admitted")
	}
	if _, ok := s.admitAt(from("192.0.2.3"), t0.Add(500*time.Millisecond)); ok || a.closed || b.closed {
		t.Fatalf("a newcomer while both are young: admitted %v, a closed %v, b closed %v; want refused, none closed", ok, a.closed, b.closed)
	}
	d := from("192.0.2.4")
	if _, ok := s.admitAt(d, t0.Add(stalledAge+time.Millisecond)); !ok || !a.closed || b.closed {
		t.Fatalf("a newcomer once a stalled: admitted %v, a closed %v, b closed %v; want admitted, a (the oldest) closed", ok, a.closed, b.closed)
	}
	releaseA() // a's handshake fails and releases: already done
	if v, _ := metricValue(t, s, "connections_pending"); v != 2 {
		t.Errorf("pending = %v, want 2 (b and d)", v)
	}
	if v, _ := metricValue(t, s, "switches_refused_total", "reason", refusedEvicted); v != 1 {
		t.Errorf("refused{reason=%s} = %v, want 1", refusedEvicted, v)
	}
	if _, ok := s.admitAt(from("192.0.2.5"), t0.Add(stalledAge+2*time.Millisecond)); ok {
		t.Error("admitted a third: b is not stalled yet, so nothing may be evicted")
	}
}

package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
)

// fakeVTEPs stands in for hardware VTEP databases, by endpoint: what each
// connection was told (the last Sync), what the switch reports as local, and
// which connections are open.
type fakeVTEPs struct {
	mu       sync.Mutex
	connects []string // endpoints, in order
	open     map[string]int
	told     map[string][]string // endpoint -> MACs of the last non-dry Sync
	syncs    map[string]int      // endpoint -> non-dry Syncs
	local    map[string][]hwvtep.LocalMAC
	down     map[string]bool // refuse connections
	// total and most connections open at once, all endpoints: the
	// endpoints of a test are one switch, which must never have two
	// writers.
	total, most int
}

func newFakeVTEPs() *fakeVTEPs {
	return &fakeVTEPs{open: map[string]int{}, told: map[string][]string{}, syncs: map[string]int{}, local: map[string][]hwvtep.LocalMAC{}, down: map[string]bool{}}
}

func (f *fakeVTEPs) connect(_ context.Context, endpoint string, _ *tls.Config, _ *zap.Logger) (hwvtepSyncer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects = append(f.connects, endpoint)
	if f.down[endpoint] {
		return nil, errors.New("connection refused")
	}
	f.open[endpoint]++
	f.total++
	f.most = max(f.most, f.total)
	return &fakeConn{f: f, endpoint: endpoint}, nil
}

// state is a snapshot of f for eventually's conditions.
func (f *fakeVTEPs) state(endpoint string) (open, syncs int, told []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open[endpoint], f.syncs[endpoint], slices.Clone(f.told[endpoint])
}

type fakeConn struct {
	f        *fakeVTEPs
	endpoint string
	closed   bool
}

func (c *fakeConn) Sync(_ context.Context, _, _ string, want []hwvtep.RemoteMAC, dry bool) ([]hwvtep.LocalMAC, []string, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.down[c.endpoint] {
		return nil, nil, errors.New("connection lost")
	}
	if !dry {
		var told []string
		for _, w := range want {
			told = append(told, fmt.Sprintf("%s/%s@%s", w.MAC, w.IP, w.VTEP))
		}
		slices.Sort(told)
		c.f.told[c.endpoint], c.f.syncs[c.endpoint] = told, c.f.syncs[c.endpoint]+1
	}
	return slices.Clone(c.f.local[c.endpoint]), nil, nil
}

func (c *fakeConn) Close() {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.f.open[c.endpoint]--
		c.f.total--
	}
}

// withTor1 is hwTopo with tor1's hardware_vtep line replaced.
func withTor1(line string) string {
	return strings.Replace(hwTopo, "  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640'}}", line, 1)
}

// A reload starts, restarts (new target) and stops hardware VTEP loops
// without a restart of the controller: the switch at the old target is let
// go untouched, one no longer driven has its Ucast_Macs_Remote emptied and
// the MACs it reported forgotten.
func TestHardwareVTEPReload(t *testing.T) {
	const first, second = "tcp:10.0.0.9:6640", "tcp:10.0.0.9:6641"
	vm1 := "52:54:00:00:01:01/10.1.1.1@10.0.0.1"
	server := key(100, "02:00:00:00:00:11")
	f := newFakeVTEPs()
	f.local[first] = []hwvtep.LocalMAC{{VNI: 100, MAC: server.HardwareAddr()}}
	f.local[second] = f.local[first]
	s := startTestServer(t, ServerOptions{Topology: parseTopo(t, hwTopo), Grace: 10 * time.Millisecond},
		func(s *Server) { s.hw.connect = f.connect })
	told := func(endpoint string, want ...string) func() bool {
		return func() bool {
			open, syncs, got := f.state(endpoint)
			return open == 1 && syncs > 0 && slices.Equal(got, want)
		}
	}
	eventually(t, 5*time.Second, "tor1 told of vm1 at "+first, told(first, vm1))
	eventually(t, 5*time.Second, "the server tor1 reported learned", func() bool { e, ok := s.know.Lookup(server); return ok && e.Host == "tor1" })

	// A new target: the old connection closes, nothing is emptied there, the
	// new one is told.
	_, before, _ := f.state(first)
	if err := s.Reload(parseTopo(t, withTor1("  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: '"+second+"'}}"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "tor1 told of vm1 at "+second, told(second, vm1))
	if open, syncs, got := f.state(first); open != 0 || !slices.Equal(got, []string{vm1}) || syncs > before+1 {
		t.Errorf("old target after the retarget: %d open, %d syncs (were %d), told %v; want closed, left as it was", open, syncs, before, got)
	}
	if _, ok := s.know.Lookup(server); !ok {
		t.Errorf("a retarget forgot the MACs the switch reported")
	}

	// tor1 in learn mode: no longer driven.
	if err := s.Reload(parseTopo(t, withTor1("  - {name: tor1, vtep: 10.0.0.9, managed: false, mode: learn, hardware_vtep: {ovsdb: '"+second+"'}}"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "tor1's Ucast_Macs_Remote emptied and the connections closed", func() bool {
		open, _, got := f.state(second)
		return open == 0 && len(got) == 0
	})
	if _, ok := s.know.Lookup(server); ok {
		t.Errorf("the server tor1 reported is still known once tor1 is no longer driven")
	}
	_, settled, _ := f.state(second)
	time.Sleep(3 * hwvtepPoll)
	if _, n, _ := f.state(second); n != settled {
		t.Errorf("tor1 in learn mode still written: %d syncs, were %d", n, settled)
	}

	// Back in controller mode: driven again.
	if err := s.Reload(parseTopo(t, hwTopo)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "tor1 driven again at "+first, told(first, vm1))

	// An ssl: target without the controller's TLS files is refused, the old
	// topology kept.
	err := s.Reload(parseTopo(t, withTor1("  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: 'ssl:10.0.0.9:6640'}}")))
	var re *ReloadError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "--private-key") || !strings.Contains(err.Error(), "tor1") {
		t.Errorf("reload with an ssl: target and no TLS: %v, want a ReloadError naming tor1 and --private-key", err)
	}
	if got := s.Topology().Host("tor1").HardwareVTEP.OVSDB; got != first {
		t.Errorf("tor1's target after the refused reload: %s", got)
	}
	if open, _, _ := f.state(first); open != 1 {
		t.Errorf("the refused reload touched tor1's loop: %d connections open", open)
	}
	f.checkOneWriter(t)
}

// checkOneWriter fails t if the switch ever had two connections open.
func (f *fakeVTEPs) checkOneWriter(t *testing.T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.most > 1 {
		t.Errorf("the switch had %d connections open at once: two writers", f.most)
	}
}

// A hardware VTEP removed from the topology altogether stops being driven;
// one whose database is down is retried, not given up.
func TestHardwareVTEPRemovedAndRetried(t *testing.T) {
	const target = "tcp:10.0.0.9:6640"
	f := newFakeVTEPs()
	f.down[target] = true
	s := startTestServer(t, ServerOptions{Topology: parseTopo(t, hwTopo), Grace: 10 * time.Millisecond},
		func(s *Server) { s.hw.connect = f.connect })
	eventually(t, 5*time.Second, "two attempts", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.connects) >= 2
	})
	f.mu.Lock()
	f.down[target] = false
	f.mu.Unlock()
	eventually(t, 10*time.Second, "tor1 reached after it came back", func() bool { _, n, _ := f.state(target); return n > 0 })

	var kept []string
	for _, l := range strings.Split(hwTopo, "\n") {
		if !strings.Contains(l, "tor1") {
			kept = append(kept, l)
		}
	}
	if err := s.Reload(parseTopo(t, strings.Join(kept, "\n"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "tor1 emptied and let go", func() bool { open, _, told := f.state(target); return open == 0 && len(told) == 0 })
	s.hw.mu.Lock()
	n := len(s.hw.loops)
	s.hw.mu.Unlock()
	if n != 0 {
		t.Errorf("%d hardware VTEP loops after tor1 was removed", n)
	}

	// Back, then removed and at once back again: the loop that empties
	// the switch's table goes first, the new one fills it again after.
	vm1 := []string{"52:54:00:00:01:01/10.1.1.1@10.0.0.1"}
	driven := func() bool { _, _, told := f.state(target); return slices.Equal(told, vm1) }
	if err := s.Reload(parseTopo(t, hwTopo)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "tor1 driven again", driven)
	for _, text := range []string{strings.Join(kept, "\n"), hwTopo} {
		if err := s.Reload(parseTopo(t, text)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * hwvtepPoll)
	eventually(t, 5*time.Second, "tor1 driven after remove and re-add", driven)
	if open, _, told := f.state(target); open != 1 || !slices.Equal(told, vm1) {
		t.Errorf("after remove and re-add: %d connections, told %v; want 1 and %v", open, told, vm1)
	}
	f.checkOneWriter(t)
}

// NewServer refuses an ssl: hardware VTEP target without the TLS files.
func TestHardwareVTEPSSLNeedsTLS(t *testing.T) {
	topo := parseTopo(t, withTor1("  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: 'ssl:10.0.0.9:6640'}}"))
	_, err := NewServer(ServerOptions{Topology: topo})
	if err == nil || !strings.Contains(err.Error(), "tor1") || !strings.Contains(err.Error(), "--ca-cert") {
		t.Errorf("NewServer with an ssl: hardware VTEP and no TLS: %v, want an error naming tor1 and the flags", err)
	}
	if _, err := NewServer(ServerOptions{Topology: topo, HardwareVTEPTLS: &tls.Config{}}); err != nil {
		t.Errorf("with TLS: %v", err)
	}
}

// An IP the switch reports after the MAC (ipaddr filled in later) still
// reaches the knowledge, so the OVS hosts answer ARP for it; reading the
// same rows again changes nothing.
func TestHardwareVTEPLocalIPLater(t *testing.T) {
	s, err := NewServer(ServerOptions{Topology: parseTopo(t, hwTopo), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tor, log := s.Topology().Host("tor1"), zaptest.NewLogger(t)
	server := key(100, "02:00:00:00:00:11")
	prev := s.observeLocal(tor, []hwvtep.LocalMAC{{VNI: 100, MAC: server.HardwareAddr()}}, nil, log)
	ip := netip.MustParseAddr("10.1.1.11")
	prev = s.observeLocal(tor, []hwvtep.LocalMAC{{VNI: 100, MAC: server.HardwareAddr(), IP: ip}}, prev, log)
	if e, ok := s.know.Lookup(server); !ok || e.Host != "tor1" || !slices.Equal(e.IPs, []netip.Addr{ip}) {
		t.Errorf("server after the switch reported its IP: %+v, %v; want on tor1 with %s", e, ok, ip)
	}
	v := s.know.Version()
	s.observeLocal(tor, []hwvtep.LocalMAC{{VNI: 100, MAC: server.HardwareAddr(), IP: ip}}, prev, log)
	if s.know.Version() != v {
		t.Errorf("reading the same rows again changed the knowledge")
	}
}

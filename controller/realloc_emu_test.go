package controller

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Rebuilding a lost allocation advertisement (realloc.go) against emulated
// switches: a br-tun comes back from an ovs-vswitchd restart with its ports
// and no flow at all.

// oddAlloc is h1's allocation in these tests: not what Allocate gives a
// fresh host (VLANs 1 and 2, ports 10 and 11), as on a host whose networks
// and peers changed over time. A controller that guessed with Allocate
// would swap h1's tenants.
var oddAlloc = topology.Allocation{
	LocalVLAN:    map[uint32]uint16{100: 7, 200: 3},
	TunnelOFPort: map[string]uint32{"h2": 12, "h3": 10, "kv": 15},
}

// emulateOdd is emulate with h1 on oddAlloc.
func emulateOdd(t *testing.T, topo *topology.Topology, advertised func(host string) bool) []*emuHost {
	t.Helper()
	hosts := emulate(t, topo, advertised)
	h1 := emuHostNamed(hosts, "h1")
	h1.tun.Close()
	h1.alloc = oddAlloc
	h1.tun = newTun(t, topo, h1, advertised == nil || advertised("h1"))
	return hosts
}

// newTun is e's br-tun as ovs-vswitchd (re)starts it: the ports apply
// made, and the advertisement only when advertised.
func newTun(t *testing.T, topo *topology.Topology, e *emuHost, advertised bool) *openflowtest.Switch {
	t.Helper()
	c := openflowtest.TunnelBridge(topo, e.h, e.alloc)
	if !advertised {
		c.Flows = nil
	}
	c.Backoff, c.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	sw, err := openflowtest.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	return sw
}

// restartTun replaces e's br-tun by a new one without any flow, as
// ovs-vswitchd leaves it when it restarts, connected to addr.
func restartTun(t *testing.T, topo *topology.Topology, e *emuHost, addr string) {
	t.Helper()
	e.tun.Close()
	e.tun = newTun(t, topo, e, false)
	if err := e.tun.Connect("tcp:" + addr); err != nil {
		t.Fatal(err)
	}
}

// observed is a logger for o that also records warnings in logs.
func observed(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.WarnLevel)
	return zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)), logs
}

// notReadyWarnings counts the "switch not ready" warnings about host.
func notReadyWarnings(logs *observer.ObservedLogs, host string) int {
	n := 0
	for _, e := range logs.FilterMessageSnippet("not ready").All() {
		if e.ContextMap()["host"] == host {
			n++
		}
	}
	return n
}

// restartServer stops srv and starts another on addr with o.
func restartServer(t *testing.T, srv *runningServer, addr string, o ServerOptions) *runningServer {
	t.Helper()
	srv.stop()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o.Listeners = []net.Listener{l}
	return runServer(t, t, o)
}

// TestRebuildFromMemoryEmulated: h1's ovs-vswitchd restarts while the
// controller runs; the controller puts back h1's advertisement from what
// it read before, then everything else, within moments.
func TestRebuildFromMemoryEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulateOdd(t, topo, nil)
	srv, addr := emuServer(t, topo, hosts, ServerOptions{})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, 6) })

	h1 := emuHostNamed(hosts, "h1")
	start := time.Now()
	restartTun(t, topo, h1, addr)
	eventually(t, 10*time.Second, "h1's new br-tun synced", func() bool {
		return h1.tun.Counters().FlowMods > 0 && srv.synced(0, 6)
	})
	t.Logf("h1's br-tun programmed %s after it came back without flows", time.Since(start))
	checkEmulated(t, topo, hosts, srv.Server)
	if got := metricOf(t, srv.Server, "allocations_rebuilt_total", "source", rebuiltFromMemory); got != 1 {
		t.Errorf("allocations_rebuilt_total{source=memory} = %v, want 1", got)
	}
	if got := metricOf(t, srv.Server, "switches_not_ready"); got != 0 {
		t.Errorf("switches_not_ready = %v, want 0", got)
	}
}

// TestRebuildFromStateFileEmulated: the controller and h1's ovs-vswitchd
// restart together. A controller with a state file rebuilds h1's
// advertisement from it; one without says once that h1 is not ready,
// counts it, and sends h1 nothing until apply advertises again.
func TestRebuildFromStateFileEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulateOdd(t, topo, nil)
	state := filepath.Join(t.TempDir(), "state", "controller.json")
	srv, addr := emuServer(t, topo, hosts, ServerOptions{StateFile: state})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, 6) })
	eventually(t, 5*time.Second, "h1's VLANs in the state file", func() bool {
		kept, err := loadState(state, topo)
		return err == nil && maps.Equal(kept["h1"].LocalVLANs, oddAlloc.LocalVLAN) && len(kept) == 3
	})
	h1 := emuHostNamed(hosts, "h1")

	t.Run("without the state file", func(t *testing.T) {
		log, logs := observed(t)
		srv2 := restartServer(t, srv, addr, ServerOptions{Topology: topo, Log: log, Grace: 200 * time.Millisecond})
		restartTun(t, topo, h1, addr)
		eventually(t, 10*time.Second, "the other switches synced, h1 not ready", func() bool {
			return syncedCount(srv2.Server) == 5 && metricOf(t, srv2.Server, "switches_not_ready") == 1
		})
		time.Sleep(1500 * time.Millisecond) // a few retries
		if c := h1.tun.Counters(); c.FlowMods != 0 || h1.tun.FlowCount() != 0 {
			t.Fatalf("h1's br-tun got %d flow-mods without an advertisement or a record of its VLANs", c.FlowMods)
		}
		if n := notReadyWarnings(logs, "h1"); n != 1 {
			t.Errorf("%d warnings that h1 is not ready, want exactly 1", n)
		}
		if w := logs.FilterMessageSnippet("not ready").All(); len(w) > 0 && !strings.Contains(w[0].ContextMap()["error"].(string), "no record") {
			t.Errorf("the warning does not say why: %v", w[0].ContextMap())
		}
		// Apply advertises again: h1 is served.
		if err := h1.tun.Install(flows.CompileAllocation(h1.alloc)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "h1 synced after apply", func() bool { return srv2.synced(0, 6) })
		checkEmulated(t, topo, hosts, srv2.Server)
		if got := metricOf(t, srv2.Server, "switches_not_ready"); got != 0 {
			t.Errorf("switches_not_ready = %v once h1 is served, want 0", got)
		}
		srv = srv2
	})

	t.Run("with the state file", func(t *testing.T) {
		srv3 := restartServer(t, srv, addr, ServerOptions{Topology: topo, StateFile: state})
		start := time.Now()
		restartTun(t, topo, h1, addr)
		eventually(t, 10*time.Second, "h1 synced", func() bool { return h1.tun.Counters().FlowMods > 0 && srv3.synced(0, 6) })
		t.Logf("h1 programmed %s after its br-tun came back without flows, to a controller that had just started", time.Since(start))
		checkEmulated(t, topo, hosts, srv3.Server)
		if got := metricOf(t, srv3.Server, "allocations_rebuilt_total", "source", rebuiltFromStateFile); got != 1 {
			t.Errorf("allocations_rebuilt_total{source=state-file} = %v, want 1", got)
		}
	})
}

// metricOf is the value of a metric of s (metricValue), 0 when absent.
func metricOf(t testing.TB, s *Server, name string, labels ...string) float64 {
	t.Helper()
	v, _ := metricValue(t, s, name, labels...)
	return v
}

// syncedCount is how many connected switches are synced.
func syncedCount(srv *Server) int {
	n := 0
	for _, st := range srv.Switches() {
		if st.Synced {
			n++
		}
	}
	return n
}

// TestRebuildWaitsForPortsEmulated: a remembered allocation is put back
// only on a br-tun that has every port apply makes; until then the switch
// waits, and the warning names what is missing.
func TestRebuildWaitsForPortsEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulateOdd(t, topo, nil)
	state := filepath.Join(t.TempDir(), "controller.json")
	srv, addr := emuServer(t, topo, hosts, ServerOptions{StateFile: state})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, 6) })
	eventually(t, 5*time.Second, "state written", func() bool { _, err := os.Stat(state); return err == nil })

	log, logs := observed(t)
	srv2 := restartServer(t, srv, addr, ServerOptions{Topology: topo, StateFile: state, Log: log, Grace: 200 * time.Millisecond})
	h1 := emuHostNamed(hosts, "h1")
	h1.tun.Close()
	c := openflowtest.TunnelBridge(topo, h1.h, h1.alloc)
	all := c.Ports
	c.Flows, c.Ports = nil, all[:len(all)-1] // vx-kv not there yet
	c.Backoff, c.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	sw, err := openflowtest.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	h1.tun = sw
	if err := sw.Connect("tcp:" + addr); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "h1 not ready", func() bool { return metricOf(t, srv2.Server, "switches_not_ready") == 1 })
	time.Sleep(time.Second)
	if n := sw.Counters().FlowMods; n != 0 {
		t.Fatalf("h1's br-tun without vx-kv got %d flow-mods", n)
	}
	w := logs.FilterMessageSnippet("not ready").All()
	if len(w) != 1 || !strings.Contains(w[0].ContextMap()["error"].(string), "no tunnel port vx-kv") {
		t.Errorf("want one warning naming vx-kv, got %v", w)
	}
	sw.SetPorts(all)
	eventually(t, 10*time.Second, "h1 synced once vx-kv is there", func() bool { return srv2.synced(0, 6) })
	checkEmulated(t, topo, hosts, srv2.Server)
	if got := metricOf(t, srv2.Server, "switches_not_ready"); got != 0 {
		t.Errorf("switches_not_ready = %v, want 0", got)
	}
}

// TestAllocMemory: the state file round-trips, is written only when
// something changed, and what cannot be trusted in it is ignored.
func TestAllocMemory(t *testing.T) {
	topo := parseTopo(t, testTopo)
	path := filepath.Join(t.TempDir(), "state.json")
	m := newAllocMemory(path, topo, zaptest.NewLogger(t))
	m.delay = time.Hour // flushed by close only
	m.keep("h1", oddAlloc.LocalVLAN, time.Now())
	m.keep("h2", map[uint32]uint16{100: 1}, time.Now())
	if _, err := os.Stat(path); err == nil {
		t.Fatal("state written before the flush")
	}
	m.close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	m2 := newAllocMemory(path, topo, zaptest.NewLogger(t))
	if got, ok := m2.get("h1"); !ok || !maps.Equal(got, oddAlloc.LocalVLAN) {
		t.Errorf("h1 read back as %v, %v", got, ok)
	}
	if _, ok := m2.get("h3"); ok {
		t.Error("h3 was never kept, yet read back")
	}
	// The same VLANs again: no write.
	m2.delay = 0
	m2.keep("h1", oddAlloc.LocalVLAN, time.Now().Add(time.Hour))
	m2.close()
	if st2, _ := os.Stat(path); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("state rewritten though nothing changed")
	}

	for name, text := range map[string]string{
		"other topology": `{"topology": "other", "hosts": {"h1": {"local_vlans": {"100": 1}}}}`,
		"corrupt":        `{"topology": "ctl", "hosts": `,
	} {
		os.WriteFile(path, []byte(text), 0o644)
		if _, ok := newAllocMemory(path, topo, zaptest.NewLogger(t)).get("h1"); ok {
			t.Errorf("%s: h1 read from %s", name, text)
		}
	}
	os.WriteFile(path, []byte(`{"topology": "ctl", "hosts": {
		"h1": {"local_vlans": {"100": 5, "200": 5}},
		"h2": {"local_vlans": {"100": 4095}},
		"kv": {"local_vlans": {"100": 1}},
		"h3": {"local_vlans": {"100": 9, "200": 4}}}}`), 0o644)
	m3 := newAllocMemory(path, topo, zaptest.NewLogger(t))
	for _, h := range []string{"h1", "h2", "kv"} {
		if v, ok := m3.get(h); ok {
			t.Errorf("invalid entry of %s kept: %v", h, v)
		}
	}
	if v, ok := m3.get("h3"); !ok || v[100] != 9 || v[200] != 4 {
		t.Errorf("h3's valid entry read as %v, %v", v, ok)
	}
}

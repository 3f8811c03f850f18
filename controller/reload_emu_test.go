package controller

import (
	"context"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Reloading the topology against emulated switches: each switch gets the
// flows the new topology changes and nothing else.

// tenantC adds a network on h1 and h2 (already peers) with a declared MAC
// on h2.
const tenantC = `
  - name: tenant-c
    vni: 300
    ports:
      - {host: h1, name: c1}
      - {host: h2, name: c2, mac: "52:54:00:00:03:02", ip: 10.3.0.2/24}
`

// withoutH3 is testTopo less host h3 and its ports.
func withoutH3(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "name: h3") || strings.Contains(l, "host: h3") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// reconcileCount is how many reconciles succeeded so far, all switches.
func reconcileCount(t *testing.T, s *Server) uint64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == "ovs_vxctl_controller_reconcile_duration_seconds" {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// flowMods is every switch's flow-mod count, by host and bridge.
func flowMods(hosts []*emuHost) map[string]uint64 {
	out := map[string]uint64{}
	for _, e := range hosts {
		out[e.h.Name+"/br-tun"] = e.tun.Counters().FlowMods
		out[e.h.Name+"/br-int"] = e.int.Counters().FlowMods
	}
	return out
}

// applyEmulated does what apply does to the emulated bridges for topology
// topo: the new allocation (keeping every number already given) is
// advertised on br-tun, and the hosts take their new definitions.
func applyEmulated(t *testing.T, topo *topology.Topology, hosts []*emuHost) {
	t.Helper()
	for _, e := range hosts {
		h := topo.Host(e.h.Name)
		if h == nil {
			continue
		}
		alloc, err := topo.Allocate(h, e.alloc)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.tun.Install(flows.CompileAllocation(alloc)); err != nil {
			t.Fatal(err)
		}
		e.h, e.alloc = h, alloc
	}
}

// wantedMods is how many flow-mods take each switch of hosts from what it
// holds now to what topo and the knowledge eps say.
func wantedMods(t *testing.T, topo *topology.Topology, hosts []*emuHost, eps []flows.Endpoint) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, e := range hosts {
		prog, err := flows.Compile(topo, e.h, e.alloc)
		if err != nil {
			t.Fatal(err)
		}
		tun := append(slices.Clone(prog.Tun), flows.CompileEndpoints(topo, e.h, e.alloc, eps)...)
		tun = append(tun, flows.CompileAllocation(e.alloc)...)
		for _, c := range []struct {
			br   string
			sw   *openflowtest.Switch
			want []flows.Flow
		}{{"br-int", e.int, prog.Int}, {"br-tun", e.tun, tun}} {
			held, err := c.sw.Flows()
			if err != nil {
				t.Fatal(err)
			}
			d := openflow.ComputeDiff(c.want, held)
			out[e.h.Name+"/"+c.br] = uint64(len(d.Add) + len(d.Modify) + len(d.Delete))
		}
	}
	return out
}

func deltas(after, before map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

func TestReloadEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	srv, _ := emuServer(t, topo, hosts, ServerOptions{})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, 6) })
	reloads := func(result string) float64 {
		v, _ := metricValue(t, srv.Server, "reloads_total", "result", result)
		return v
	}

	t.Run("the same file sends nothing", func(t *testing.T) {
		before := flowMods(hosts)
		if err := srv.Reload(parseTopo(t, "# a comment\n"+testTopo)); err != nil {
			t.Fatal(err)
		}
		if reloads(reloadUnchanged) != 1 {
			t.Errorf("reloads_total{result=unchanged} = %v, want 1", reloads(reloadUnchanged))
		}
		// A change that changes no flow (an MTU): every switch is
		// reconciled, and sent nothing.
		n := reconcileCount(t, srv.Server)
		if err := srv.Reload(parseTopo(t, strings.Replace(testTopo, "vni: 200", "vni: 200\n    mtu: 1400", 1))); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "every switch reconciled", func() bool { return reconcileCount(t, srv.Server) >= n+6 })
		if got := flowMods(hosts); !maps.Equal(got, before) {
			t.Errorf("flow-mods after a reload that changes no flow: %v, were %v", got, before)
		}
		if reloads(reloadOK) != 1 {
			t.Errorf("reloads_total{result=ok} = %v, want 1", reloads(reloadOK))
		}
	})

	t.Run("an invalid file changes nothing", func(t *testing.T) {
		before, served := flowMods(hosts), srv.Topology()
		path := filepath.Join(t.TempDir(), "topo.yaml")
		broken := strings.Replace(testTopo, "vni: 200", "vni: 100", 1) + tenantC
		if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		err := srv.ReloadFile(path)
		if err == nil || !strings.Contains(err.Error(), "vni") {
			t.Fatalf("reload of a file with a duplicate VNI: %v", err)
		}
		if srv.Topology() != served {
			t.Error("the topology served changed")
		}
		if reloads(reloadInvalid) != 1 {
			t.Errorf("reloads_total{result=invalid} = %v, want 1", reloads(reloadInvalid))
		}
		time.Sleep(100 * time.Millisecond)
		if got := flowMods(hosts); !maps.Equal(got, before) {
			t.Errorf("flow-mods after an invalid reload: %v, were %v", got, before)
		}
	})

	t.Run("a new network gets just its flows", func(t *testing.T) {
		next := parseTopo(t, testTopo+tenantC)
		applyEmulated(t, next, hosts)
		eps := append(srvEndpoints(srv.Server), flows.DeclaredEndpoints(next)...)
		want := wantedMods(t, next, hosts, dedupe(eps))
		before := flowMods(hosts)
		start := time.Now()
		if err := srv.Reload(next); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "new network's flows everywhere", func() bool {
			return maps.Equal(deltas(flowMods(hosts), before), want)
		})
		t.Logf("reload to flows on every switch: %s", time.Since(start))
		settled(t, hosts, srv)
		if w := want["h3/br-tun"] + want["h3/br-int"]; w != 0 {
			t.Errorf("h3, not in the new network, was to get %d flow-mods", w)
		}
		if want["h1/br-tun"] == 0 || want["h2/br-tun"] == 0 {
			t.Errorf("h1 and h2 were to get the new network's flows: %v", want)
		}
		if e, ok := srv.Knowledge().Lookup(key(300, "52:54:00:00:03:02")); !ok || e.Host != "h2" || e.Learned {
			t.Errorf("the new declared MAC is known as %+v (%v)", e, ok)
		}
	})

	t.Run("a removed host is disconnected and forgotten", func(t *testing.T) {
		h3 := emuHostNamed(hosts, "h3")
		vm := mac("52:54:00:00:07:03")
		frame := openflowtest.ARPRequest(vm, netip.MustParseAddr("10.1.0.33"), netip.MustParseAddr("10.1.0.1"), h3.alloc.LocalVLAN[100])
		h3.tun.SendPacketIn(openflowtest.UnknownSource(frame))
		eventually(t, 5*time.Second, "MAC learned on h3", func() bool {
			e, ok := srv.Knowledge().Lookup(key(100, vm.String()))
			return ok && e.Host == "h3"
		})
		settled(t, hosts, srv)
		refused := srv.Stats().Refused
		next := parseTopo(t, withoutH3(testTopo+tenantC))
		if err := srv.Reload(next); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "h3's switches disconnected and refused", func() bool {
			return len(srv.Switches()) == 4 && srv.Stats().Refused > refused
		})
		for _, st := range srv.Switches() {
			if st.Host == "h3" {
				t.Errorf("h3's %s is still served", st.Bridge)
			}
		}
		if _, ok := srv.Knowledge().Lookup(key(100, vm.String())); ok {
			t.Error("the MAC learned on h3 is still known")
		}
		if _, ok := srv.Knowledge().Lookup(key(200, "52:54:00:00:02:03")); ok {
			t.Error("the MAC declared on h3 is still known")
		}
		rest := slices.DeleteFunc(slices.Clone(hosts), func(e *emuHost) bool { return e.h.Name == "h3" })
		for _, e := range rest {
			e.h = next.Host(e.h.Name)
		}
		eventually(t, 5*time.Second, "the others reconciled", func() bool { return emulatedHold(t, next, rest, srv.Server) })
		if holds(t, emuHostNamed(hosts, "h1").tun, "dl_dst="+vm.String()) {
			t.Error("h1 still sends the MAC learned on h3 to its tunnel")
		}
	})
}

// emulatedHold reports whether every host's bridges hold exactly what the
// topology and the controller's knowledge say (checkEmulated, as a
// condition to wait for).
func emulatedHold(t *testing.T, topo *topology.Topology, hosts []*emuHost, srv *Server) bool {
	t.Helper()
	eps, _ := srv.Knowledge().Endpoints()
	for _, e := range hosts {
		wantInt, wantTun := e.want(t, topo, eps)
		gotInt, err := e.int.Dump()
		if err != nil {
			t.Fatal(err)
		}
		gotTun, err := e.tun.Dump()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotInt, wantInt) || !slices.Equal(gotTun, wantTun) {
			return false
		}
	}
	return true
}

// srvEndpoints is what the server knows now.
func srvEndpoints(s *Server) []flows.Endpoint {
	eps, _ := s.Knowledge().Endpoints()
	return eps
}

// dedupe keeps the first endpoint of each key, sorted.
func dedupe(eps []flows.Endpoint) []flows.Endpoint {
	seen := map[MACKey]bool{}
	var out []flows.Endpoint
	for _, e := range eps {
		k, _ := KeyOf(e.VNI, e.MAC)
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	flows.SortEndpoints(out)
	return out
}

// TestReloadWatchesFileEmulated: a file rewritten (renamed over, as editors
// do) is reloaded by itself; SIGHUP with a broken file changes nothing.
func TestReloadWatchesFileEmulated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "topo.yaml")
	write := func(text string) {
		tmp := filepath.Join(dir, ".topo.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(testTopo)
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	srv, _ := emuServer(t, topo, hosts, ServerOptions{})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, 6) })
	sig := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.WatchFile(ctx, path, sig)
	}()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(50 * time.Millisecond) // the watch is set up

	next := parseTopo(t, testTopo+tenantC)
	applyEmulated(t, next, hosts)
	start := time.Now()
	write(testTopo + tenantC)
	eventually(t, 5*time.Second, "new network served", func() bool {
		return holds(t, emuHostNamed(hosts, "h1").tun, "dl_dst=52:54:00:00:03:02")
	})
	t.Logf("file written to flows on h1's br-tun: %s", time.Since(start))
	eventually(t, 5*time.Second, "every switch reconciled", func() bool { return emulatedHold(t, next, hosts, srv.Server) })

	before, served := flowMods(hosts), srv.Topology()
	write("name: [broken\n")
	sig <- syscall.SIGHUP
	eventually(t, 5*time.Second, "broken file refused", func() bool {
		v, _ := metricValue(t, srv.Server, "reloads_total", "result", reloadInvalid)
		return v >= 1
	})
	time.Sleep(200 * time.Millisecond) // the file event's reload too
	if srv.Topology() != served {
		t.Error("a broken file changed the topology served")
	}
	if got := flowMods(hosts); !maps.Equal(got, before) {
		t.Errorf("flow-mods after a broken file: %v, were %v", got, before)
	}
}

package controller

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// The controller against emulated switches (openflowtest): its sessions'
// logic without root or OVS, in milliseconds. The real-OVS tests
// (server_ovs_test.go) check the same against ovs-vswitchd.

// emuHost is a controller-mode host whose br-tun and br-int are emulated
// switches, as apply leaves them.
type emuHost struct {
	h        *topology.Host
	alloc    topology.Allocation
	tun, int *openflowtest.Switch
}

// emulate makes the bridges of every controller-mode host of topo; only
// the hosts advertised names get the allocation advertisement (nil: all).
func emulate(t *testing.T, topo *topology.Topology, advertised func(host string) bool) []*emuHost {
	t.Helper()
	var out []*emuHost
	for _, h := range topo.ManagedHosts() {
		if h.Mode != topology.ModeController {
			continue
		}
		alloc, err := topo.Allocate(h, topology.Allocation{})
		if err != nil {
			t.Fatal(err)
		}
		tc, ic := openflowtest.TunnelBridge(topo, h, alloc), openflowtest.IntegrationBridge(topo, h)
		if advertised != nil && !advertised(h.Name) {
			tc.Flows = nil
		}
		e := &emuHost{h: h, alloc: alloc}
		for _, p := range []struct {
			c  openflowtest.Config
			sw **openflowtest.Switch
		}{{tc, &e.tun}, {ic, &e.int}} {
			p.c.Backoff, p.c.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
			sw, err := openflowtest.New(p.c)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sw.Close)
			*p.sw = sw
		}
		out = append(out, e)
	}
	return out
}

// connect has both bridges dial the controller at addr.
func (e *emuHost) connect(t *testing.T, addr string) {
	t.Helper()
	for _, sw := range []*openflowtest.Switch{e.tun, e.int} {
		if err := sw.Connect("tcp:" + addr); err != nil {
			t.Fatal(err)
		}
	}
}

// want is what the host's bridges should hold for the knowledge eps: the
// compiled flows (controller mode), the endpoints' and the advertisement.
func (e *emuHost) want(t *testing.T, topo *topology.Topology, eps []flows.Endpoint) (brInt, brTun []string) {
	t.Helper()
	prog, err := flows.Compile(topo, e.h, e.alloc)
	if err != nil {
		t.Fatal(err)
	}
	tun := append(slices.Clone(prog.Tun), flows.CompileEndpoints(topo, e.h, e.alloc, eps)...)
	tun = append(tun, flows.CompileAllocation(e.alloc)...)
	return sortedTexts(prog.Int), sortedTexts(tun)
}

func sortedTexts(fl []flows.Flow) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.String()
	}
	sort.Strings(out)
	return out
}

// checkEmulated fails unless every host's bridges hold exactly what the
// topology and the controller's knowledge say.
func checkEmulated(t *testing.T, topo *topology.Topology, hosts []*emuHost, srv *Server) {
	t.Helper()
	eps, _ := srv.Knowledge().Endpoints()
	for _, e := range hosts {
		wantInt, wantTun := e.want(t, topo, eps)
		for _, c := range []struct {
			name string
			sw   *openflowtest.Switch
			want []string
		}{{"br-int", e.int, wantInt}, {"br-tun", e.tun, wantTun}} {
			got, err := c.sw.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s %s differs:\n%s", e.h.Name, c.name, lineDiff(c.want, got))
			}
		}
	}
}

// emuServer runs a controller for topo on a loopback port and connects
// every host's bridges to it.
func emuServer(t *testing.T, topo *topology.Topology, hosts []*emuHost, o ServerOptions) (*runningServer, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Topology, o.Listeners = topo, []net.Listener{l}
	srv := runServer(t, t, o)
	for _, e := range hosts {
		e.connect(t, l.Addr().String())
	}
	return srv, l.Addr().String()
}

func emuHostNamed(hosts []*emuHost, name string) *emuHost {
	for _, e := range hosts {
		if e.h.Name == name {
			return e
		}
	}
	return nil
}

// remotes are the addresses the controller sees its switches connect from.
func remotes(srv *Server) []string {
	var out []string
	for _, st := range srv.Switches() {
		out = append(out, st.Remote)
	}
	return out
}

// reconnected reports whether n switches are connected and synced, none of
// them over a connection in old.
func reconnected(srv *Server, n int, old []string) bool {
	for _, r := range remotes(srv) {
		if slices.Contains(old, r) {
			return false
		}
	}
	return srv.synced(0, n)
}

// TestControllerEmulated runs the controller through a life like
// TestControllerOVS's, against emulated switches.
func TestControllerEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	const nSwitches = 6
	srv, addr := emuServer(t, topo, hosts, ServerOptions{})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, nSwitches) })
	checkEmulated(t, topo, hosts, srv.Server)

	// Each bridge got its flows in one bundle and nothing more.
	eps, _ := srv.Knowledge().Endpoints()
	for _, e := range hosts {
		wantInt, wantTun := e.want(t, topo, eps)
		adv := len(flows.CompileAllocation(e.alloc))
		for _, c := range []struct {
			sw   *openflowtest.Switch
			mods int
		}{{e.int, len(wantInt)}, {e.tun, len(wantTun) - adv}} {
			if got := c.sw.Counters(); got.FlowMods != uint64(c.mods) || got.Bundles != 1 {
				t.Errorf("%s %016x: %d flow-mods in %d bundles, want %d in 1", e.h.Name, c.sw.DatapathID(), got.FlowMods, got.Bundles, c.mods)
			}
		}
	}

	t.Run("unknown datapath ID refused", func(t *testing.T) {
		before := srv.Stats().Refused
		stranger, err := openflowtest.New(openflowtest.Config{DatapathID: 0xaa, Backoff: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		if err := stranger.Connect(addr); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "stranger refused", func() bool { return srv.Stats().Refused > before })
		if c := stranger.Counters(); c.FlowMods != 0 || stranger.FlowCount() != 0 {
			t.Errorf("the refused switch got %d flow-mods", c.FlowMods)
		}
		if n := len(srv.Switches()); n != nSwitches {
			t.Errorf("%d switches served, want %d", n, nSwitches)
		}
	})

	t.Run("learn from a packet-in", func(t *testing.T) {
		h1, h2, h3 := emuHostNamed(hosts, "h1"), emuHostNamed(hosts, "h2"), emuHostNamed(hosts, "h3")
		vm := mac("52:54:00:00:02:02")
		before := map[string]uint64{"h1": h1.tun.Counters().FlowMods, "h3": h3.tun.Counters().FlowMods}
		frame := openflowtest.ARPRequest(vm, netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.77"), h2.alloc.LocalVLAN[100])
		if n := h2.tun.SendPacketIn(openflowtest.UnknownSource(frame)); n != 1 {
			t.Fatalf("packet-in reached %d controllers", n)
		}
		eventually(t, 5*time.Second, "MAC and IP learned", func() bool {
			e, ok := srv.Knowledge().Lookup(key(100, vm.String()))
			return ok && e.Host == "h2" && slices.Contains(e.IPs, netip.MustParseAddr("10.1.0.2"))
		})
		v := srv.Knowledge().Version()
		eventually(t, 5*time.Second, "learned MAC pushed everywhere", func() bool { return srv.synced(v, nSwitches) })
		checkEmulated(t, topo, hosts, srv.Server)
		// The other hosts got the MAC's flows and nothing else.
		learned := flows.Endpoint{VNI: 100, MAC: vm, Host: "h2", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.2")}}
		for _, e := range []*emuHost{h1, h3} {
			mine := flows.CompileEndpoints(topo, e.h, e.alloc, []flows.Endpoint{learned})
			if got := e.tun.Counters().FlowMods - before[e.h.Name]; got != uint64(len(mine)) || len(mine) == 0 {
				t.Errorf("%s got %d flow-mods for the new MAC, want %d", e.h.Name, got, len(mine))
			}
			port := fmt.Sprintf("output:%d", e.alloc.TunnelOFPort["h2"])
			dump, _ := e.tun.Dump()
			if !slices.ContainsFunc(dump, func(l string) bool {
				return strings.Contains(l, "table=20") && strings.Contains(l, "dl_dst="+vm.String()) && strings.Contains(l, port)
			}) {
				t.Errorf("%s has no table-20 entry for %s to %s", e.h.Name, vm, port)
			}
		}
	})

	t.Run("reconnect sends nothing", func(t *testing.T) {
		before := counters(hosts)
		mods := srv.Stats().FlowMods
		old := remotes(srv.Server)
		for _, e := range hosts {
			e.tun.Disconnect()
			e.int.Disconnect()
		}
		eventually(t, 10*time.Second, "switches back and synced", func() bool { return reconnected(srv.Server, nSwitches, old) })
		if got := counters(hosts); !slices.Equal(got, before) {
			t.Errorf("switch counters after reconnecting %v, were %v", got, before)
		}
		if got := srv.Stats().FlowMods; got != mods {
			t.Errorf("controller sent %d flow-mods on reconnection", got-mods)
		}
		checkEmulated(t, topo, hosts, srv.Server)
	})

	t.Run("controller restart sends nothing", func(t *testing.T) {
		before := counters(hosts)
		learned, _ := srv.Knowledge().Endpoints()
		srv.stop()
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv2 := runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}})
		eventually(t, 10*time.Second, "switches back and synced", func() bool { return srv2.synced(0, nSwitches) })
		if st := srv2.Stats(); st.FlowMods != 0 || st.Bundles != 0 {
			t.Errorf("restarted controller sent %d flow-mods in %d bundles, want none", st.FlowMods, st.Bundles)
		}
		if got := counters(hosts); !slices.Equal(got, before) {
			t.Errorf("switch counters after the restart %v, were %v", got, before)
		}
		if got, _ := srv2.Knowledge().Endpoints(); fmt.Sprint(got) != fmt.Sprint(learned) {
			t.Errorf("knowledge after restart:\n got %v\nwant %v", got, learned)
		}
		checkEmulated(t, topo, hosts, srv2.Server)
	})
}

// counters are every bridge's flow-mod and bundle counts, in host order.
func counters(hosts []*emuHost) []uint64 {
	var out []uint64
	for _, e := range hosts {
		for _, sw := range []*openflowtest.Switch{e.tun, e.int} {
			c := sw.Counters()
			out = append(out, c.FlowMods, c.Bundles)
		}
	}
	return out
}

// TestControllerWaitsForAdvertisementEmulated: a br-tun without apply's
// advertisement gets nothing, stays connected and does not hold the other
// hosts back; once apply advertises, it is programmed.
func TestControllerWaitsForAdvertisementEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, func(h string) bool { return h != "h1" })
	srv, _ := emuServer(t, topo, hosts, ServerOptions{Grace: 200 * time.Millisecond})
	eventually(t, 10*time.Second, "the other switches synced", func() bool {
		n := 0
		for _, st := range srv.Switches() {
			if st.Synced {
				n++
			}
		}
		return n == 5
	})
	h1 := emuHostNamed(hosts, "h1")
	if n, c := h1.tun.FlowCount(), h1.tun.Counters(); n != 0 || c.FlowMods != 0 {
		t.Fatalf("h1's br-tun got %d flow-mods (holds %d flows) without an advertisement", c.FlowMods, n)
	}
	if n := len(srv.Switches()); n != 6 {
		t.Fatalf("%d switches connected, want 6", n)
	}
	if err := h1.tun.Install(flows.CompileAllocation(h1.alloc)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "h1 synced after apply", func() bool { return srv.synced(0, 6) })
	checkEmulated(t, topo, hosts, srv.Server)
}

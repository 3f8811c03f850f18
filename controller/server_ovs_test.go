package controller

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// checkFlows fails unless every host's br-int and br-tun hold exactly what
// the topology and the controller's current knowledge say.
func checkFlows(t *testing.T, topo *topology.Topology, hosts []*ovsHost, srv *Server) {
	t.Helper()
	eps, _ := srv.Knowledge().Endpoints()
	for _, oh := range hosts {
		wantInt, wantTun := oh.want(t, topo, eps)
		if got := oh.dump(t, topology.BridgeInt); !slices.Equal(got, wantInt) {
			t.Errorf("%s br-int:\n got %q\nwant %q", oh.h.Name, got, wantInt)
		}
		if got := oh.dump(t, topology.BridgeTun); !slices.Equal(got, wantTun) {
			t.Errorf("%s br-tun differs:\n%s", oh.h.Name, lineDiff(wantTun, got))
		}
	}
}

func lineDiff(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("-" + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+" + l + "\n")
		}
	}
	return b.String()
}

func hostNamed(hosts []*ovsHost, name string) *ovsHost {
	for _, oh := range hosts {
		if oh.h.Name == name {
			return oh
		}
	}
	return nil
}

// TestControllerOVS runs the controller against three real switches (each
// host's br-int and br-tun) through its life: first connection, learning
// from a real VM port, a move, a switch that does not belong, a controller
// restart, an ovs-vswitchd restart and ageing.
func TestControllerOVS(t *testing.T) {
	ovstest.Require(t)
	top := t
	topo := parseTopo(t, testTopo)
	hosts, ls := startHosts(t, topo, "tcp")
	h1, h2, h3 := hostNamed(hosts, "h1"), hostNamed(hosts, "h2"), hostNamed(hosts, "h3")
	const nSwitches = 6
	opts := ServerOptions{Topology: topo, Listeners: ls, AgeInterval: 500 * time.Millisecond, MetricsListen: "127.0.0.1:0",
		EchoInterval: 500 * time.Millisecond}
	srv := runServer(t, t, opts)

	// The switches connect before apply has advertised the allocation (as in
	// the lab): br-tun waits, then catches up once it is there.
	eventually(t, 20*time.Second, "all switches connected", func() bool { return len(srv.Switches()) == nSwitches })
	time.Sleep(300 * time.Millisecond)
	for _, oh := range hosts {
		oh.advertise(t)
	}
	took := eventually(t, 30*time.Second, "all switches synced", func() bool { return srv.synced(0, nSwitches) })
	t.Logf("all %d switches synced %s after the advertisements", nSwitches, took)
	checkFlows(t, topo, hosts, srv.Server)

	t.Run("unknown datapath ID refused", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		before := srv.Stats().Refused
		target := fmt.Sprintf("tcp:127.0.0.1:%d", h1.port)
		if _, err := h1.inst.Vsctl(ctx, "add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev",
			"fail_mode=secure", "protocols=OpenFlow13", "other_config:datapath-id=00000000000000aa",
			"other_config:disable-in-band=true", "--", "set-controller", "br-x", target); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "br-x refused", func() bool { return srv.Stats().Refused > before })
		if got := h1.dump(t, "br-x"); len(got) != 0 {
			t.Errorf("refused switch got flows: %q", got)
		}
		if n := len(srv.Switches()); n != nSwitches {
			t.Errorf("%d switches connected, want %d", n, nSwitches)
		}
		h1.inst.Vsctl(ctx, "del-br", "br-x")
	})

	// A VM port on h2 (an internal port standing in for the VM's
	// interface, tagged with tenant-a's local VLAN).
	vmMAC := "52:54:00:00:02:02"
	vmKey := key(100, vmMAC)
	t.Run("learn from a VM port", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		vlan := h2.alloc.LocalVLAN[100]
		if _, err := h2.inst.Vsctl(ctx, "add-port", "br-int", "vm2", "tag="+fmt.Sprint(vlan), "--", "set", "interface", "vm2",
			"type=internal", "mac=\""+vmMAC+"\""); err != nil {
			t.Fatal(err)
		}
		// Without IPv6 the VM's first frame is the ARP below: the
		// controller learns IPs only from ARPs reported before the
		// known-source flows stop the reports (see the package doc).
		if _, err := h2.inst.Run(ctx, "sysctl", "-qw", "net.ipv6.conf.vm2.disable_ipv6=1"); err != nil {
			t.Fatal(err)
		}
		for _, c := range [][]string{{"link", "set", "vm2", "address", vmMAC}, {"addr", "add", "10.1.0.2/24", "dev", "vm2"}, {"link", "set", "vm2", "up"}} {
			if _, err := h2.inst.Run(ctx, "ip", c...); err != nil {
				t.Fatal(err)
			}
		}
		v0 := srv.Knowledge().Version()
		start := time.Now()
		// An ARP for an address nobody declared floods: the controller
		// learns the VM's MAC and IP from it.
		h2.inst.Run(ctx, "ping", "-c1", "-W1", "10.1.0.77")
		var learnedAt time.Duration
		eventually(t, 10*time.Second, "VM MAC learned", func() bool {
			e, ok := srv.Knowledge().Lookup(vmKey)
			learnedAt = time.Since(start)
			return ok && e.Host == "h2" && slices.Contains(e.IPs, netip.MustParseAddr("10.1.0.2"))
		})
		v := srv.Knowledge().Version()
		if v <= v0 {
			t.Fatalf("knowledge version %d after learning, was %d", v, v0)
		}
		eventually(t, 10*time.Second, "learned MAC pushed everywhere", func() bool { return srv.synced(v, nSwitches) })
		t.Logf("learned %s after %s (ping start), every switch committed after %s", vmMAC, learnedAt, time.Since(start))
		checkFlows(t, topo, hosts, srv.Server)
		for _, oh := range []*ovsHost{h1, h3} {
			if got := oh.dump(t, topology.BridgeTun, "table=20"); !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "dl_dst="+vmMAC) }) {
				t.Errorf("%s table 20 has no entry for %s: %q", oh.h.Name, vmMAC, got)
			}
			if got := oh.dump(t, topology.BridgeTun, "table=3"); !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "arp_tpa=10.1.0.2") }) {
				t.Errorf("%s has no ARP responder for the learned 10.1.0.2: %q", oh.h.Name, got)
			}
		}
		// ARP for a declared IP (a1's 10.1.0.1 on h1) is answered on h2 by
		// br-tun's responder: the VM's neighbour table has a1's MAC.
		h2.inst.Run(ctx, "ping", "-c1", "-W1", "10.1.0.1")
		neigh, _ := h2.inst.Run(ctx, "ip", "neigh", "show", "10.1.0.1", "dev", "vm2")
		if !strings.Contains(neigh, "52:54:00:00:01:01") {
			t.Errorf("ARP for 10.1.0.1 not answered locally: %q", neigh)
		}
	})

	t.Run("convergence", func(t *testing.T) {
		// Sources reported by h1 on tenant-a, one at a time: the time from
		// the knowledge change to every other switch's committed bundle.
		var worst, total time.Duration
		const n = 20
		for i := range n {
			src := fmt.Sprintf("02:00:00:00:10:%02x", i)
			start := time.Now()
			h1.packetOut(t, taggedFrame(src, h1.alloc.LocalVLAN[100], fmt.Sprintf("0a0110%02x", i)))
			var v uint64
			eventually(t, 10*time.Second, "learned "+src, func() bool {
				_, ok := srv.Knowledge().Lookup(key(100, src))
				v = srv.Knowledge().Version()
				return ok
			})
			learned := time.Now()
			eventually(t, 10*time.Second, "pushed "+src, func() bool { return srv.synced(v, nSwitches) })
			d := time.Since(learned)
			total += d
			worst = max(worst, d)
			t.Logf("%s: learned %s after the packet-out, committed everywhere %s later", src, learned.Sub(start), d)
		}
		t.Logf("convergence (learned -> every switch committed): mean %s, worst %s over %d MACs", total/n, worst, n)
		mfs, err := srv.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "ovs_vxctl_controller_convergence_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				if h.GetSampleCount() > 0 {
					t.Logf("convergence_seconds %v: %d samples, mean %s", m.GetLabel(), h.GetSampleCount(),
						time.Duration(h.GetSampleSum()/float64(h.GetSampleCount())*float64(time.Second)))
				}
			}
		}
		checkFlows(t, topo, hosts, srv.Server)
	})

	t.Run("move", func(t *testing.T) {
		// The VM's MAC shows up on h3: it moves at once everywhere.
		h3.packetOut(t, taggedFrame(vmMAC, h3.alloc.LocalVLAN[100], "0a010002"))
		eventually(t, 10*time.Second, "MAC moved to h3", func() bool {
			e, _ := srv.Knowledge().Lookup(vmKey)
			return e.Host == "h3"
		})
		v := srv.Knowledge().Version()
		eventually(t, 10*time.Second, "move pushed", func() bool { return srv.synced(v, nSwitches) })
		checkFlows(t, topo, hosts, srv.Server)
		port := fmt.Sprintf("output:%d", h1.alloc.TunnelOFPort["h3"])
		if got := h1.dump(t, topology.BridgeTun, "table=20,dl_dst="+vmMAC); len(got) != 1 || !strings.Contains(got[0], port) {
			t.Errorf("h1's entry for the moved MAC: %q, want one to %s", got, port)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + srv.MetricsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		text := b.String()
		for _, want := range []string{
			`ovs_vxctl_controller_switches_connected{bridge="br-tun"} 3`,
			`ovs_vxctl_controller_switches_connected{bridge="br-int"} 3`,
			`ovs_vxctl_controller_macs_known{kind="declared"} 3`,
			`ovs_vxctl_controller_macs_known{kind="learned"} 21`,
			`ovs_vxctl_controller_packet_ins_total{host="h3",result="moved"} 1`,
			`ovs_vxctl_controller_switches_refused_total{reason="unknown"} 1`,
			`ovs_vxctl_controller_flows{bridge="br-tun",host="h1"}`,
			`ovs_vxctl_controller_flow_mods_sent_total{bridge="br-tun",host="h2"}`,
			`ovs_vxctl_controller_bundles_sent_total{bridge="br-int",host="h1"} 1`,
			`ovs_vxctl_controller_reconcile_duration_seconds_count{bridge="br-tun"}`,
			`ovs_vxctl_controller_convergence_seconds_count{bridge="br-tun"}`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if t.Failed() {
			t.Log(text)
		}
	})

	learnedBefore, _ := srv.Knowledge().Endpoints()
	t.Run("controller restart sends nothing", func(t *testing.T) {
		srv.stop()
		// Flows stay (fail_mode=secure) while no controller runs.
		checkFlows(t, topo, hosts, srv.Server)
		var ls2 []net.Listener
		for _, oh := range hosts {
			ls2 = append(ls2, ovsruntest.ListenTCP(t, oh.inst.NetNS, fmt.Sprintf("127.0.0.1:%d", oh.port)))
		}
		o := opts
		o.Listeners, o.MetricsListen, o.Log = ls2, "", nil
		srv = runServer(t, top, o)
		eventually(t, 30*time.Second, "switches back and synced", func() bool { return srv.synced(0, nSwitches) })
		if st := srv.Stats(); st.FlowMods != 0 || st.Bundles != 0 {
			t.Errorf("restarted controller sent %d flow-mods in %d bundles, want none", st.FlowMods, st.Bundles)
		}
		got, _ := srv.Knowledge().Endpoints()
		if fmt.Sprint(got) != fmt.Sprint(learnedBefore) {
			t.Errorf("knowledge after restart:\n got %v\nwant %v", got, learnedBefore)
		}
		checkFlows(t, topo, hosts, srv.Server)
	})

	t.Run("ovs-vswitchd restart", func(t *testing.T) {
		ctx := ctxFor(t, time.Minute)
		if err := h2.inst.StopVswitchd(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "h2 disconnected", func() bool { return len(srv.Switches()) == nSwitches-2 })
		start := time.Now()
		if err := h2.inst.StartVswitchd(ctx); err != nil {
			t.Fatal(err)
		}
		// It comes back with no flow at all, the advertisement included:
		// the controller restores everything.
		v := srv.Knowledge().Version()
		eventually(t, 30*time.Second, "h2 restored", func() bool { return srv.synced(v, nSwitches) })
		t.Logf("h2's flows restored %s after ovs-vswitchd started again", time.Since(start))
		checkFlows(t, topo, hosts, srv.Server)
	})

	t.Run("a frozen switch delays no other", func(t *testing.T) {
		// h3's ovs-vswitchd stops answering (SIGSTOP): its connection
		// stays open but nothing comes back.
		pid := ovsruntest.Pid(t, h3.inst, "ovs-vswitchd")
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		defer resume()
		src := "02:00:00:00:30:01"
		start := time.Now()
		h1.packetOut(t, taggedFrame(src, h1.alloc.LocalVLAN[100], "00000000"))
		var v uint64
		eventually(t, 10*time.Second, "learned "+src, func() bool {
			_, ok := srv.Knowledge().Lookup(key(100, src))
			v = srv.Knowledge().Version()
			return ok
		})
		took := eventually(t, 5*time.Second, "h1 and h2 synced while h3 is frozen", func() bool {
			n := 0
			for _, st := range srv.Switches() {
				if st.Bridge == topology.BridgeTun && st.Host != "h3" && st.SyncedVersion >= v {
					n++
				}
			}
			return n == 2
		})
		t.Logf("h1 and h2 committed %s after the packet-out, %s after learning, with h3 frozen", time.Since(start), took)
		// Three unanswered echoes (500ms apart) drop h3.
		took = eventually(t, 10*time.Second, "frozen h3 dropped", func() bool { return len(srv.Switches()) == nSwitches-2 })
		t.Logf("h3 dropped %s later", took)
		resume()
		eventually(t, 20*time.Second, "h3 back and synced", func() bool { return srv.synced(srv.Knowledge().Version(), nSwitches) })
		checkFlows(t, topo, hosts, srv.Server)
	})

	t.Run("ageing and rate limit", func(t *testing.T) {
		srv.stop()
		var ls3 []net.Listener
		for _, oh := range hosts {
			ls3 = append(ls3, ovsruntest.ListenTCP(t, oh.inst.NetNS, fmt.Sprintf("127.0.0.1:%d", oh.port)))
		}
		o := opts
		o.Listeners, o.MetricsListen, o.Log = ls3, "", nil
		o.MACIdle, o.AgeInterval, o.Grace = 4*time.Second, 300*time.Millisecond, 500*time.Millisecond
		o.PacketInRate, o.PacketInBurst = 0.5, 5
		srv = runServer(t, top, o)
		eventually(t, 30*time.Second, "switches back and synced", func() bool { return srv.synced(0, nSwitches) })
		if _, l := srv.Knowledge().Counts(); l != 22 {
			t.Fatalf("%d learned MACs adopted, want 22", l)
		}
		// Nothing sends from the learned MACs: they age out, everywhere.
		eventually(t, 15*time.Second, "learned MACs forgotten", func() bool {
			_, l := srv.Knowledge().Counts()
			return l == 0
		})
		v := srv.Knowledge().Version()
		eventually(t, 10*time.Second, "expiry pushed", func() bool { return srv.synced(v, nSwitches) })
		checkFlows(t, topo, hosts, srv.Server)
		for _, oh := range hosts {
			for _, l := range oh.dump(t, topology.BridgeTun) {
				if strings.Contains(l, "02:00:00:00:10:") || strings.Contains(l, "02:00:00:00:30:") || strings.Contains(l, vmMAC) {
					t.Errorf("%s still has a flow for a forgotten MAC: %s", oh.h.Name, l)
				}
			}
		}

		// A flood of 40 new sources on h1: 5 (the burst) are learned.
		for i := range 40 {
			h1.packetOut(t, taggedFrame(fmt.Sprintf("02:00:00:00:20:%02x", i), h1.alloc.LocalVLAN[100], "00000000"))
		}
		eventually(t, 10*time.Second, "packet-ins counted", func() bool {
			st := srv.Stats().PacketIns
			return st[resultLearned]+st[resultRateLimited] == 40
		})
		st := srv.Stats().PacketIns
		if st[resultLearned] < 5 || st[resultLearned] > 7 || st[resultRateLimited] < 33 {
			t.Errorf("flood of 40: %d learned, %d rate-limited; want 5-7 and the rest dropped", st[resultLearned], st[resultRateLimited])
		}
	})
}

// TestControllerWaitsForAdvertisement: without apply's advertisement a
// switch gets nothing and the controller keeps retrying, without blocking
// the other hosts.
func TestControllerWaitsForAdvertisement(t *testing.T) {
	ovstest.Require(t)
	topo := parseTopo(t, testTopo)
	hosts, ls := startHosts(t, topo, "tcp")
	srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: ls, Grace: 500 * time.Millisecond})
	h1 := hostNamed(hosts, "h1")
	for _, oh := range hosts {
		if oh != h1 {
			oh.advertise(t)
		}
	}
	// Five switches sync; h1's br-tun has nothing but stays connected.
	eventually(t, 20*time.Second, "other switches synced", func() bool {
		n := 0
		for _, st := range srv.Switches() {
			if st.Synced {
				n++
			}
		}
		return n == 5
	})
	if got := h1.dump(t, topology.BridgeTun); len(got) != 0 {
		t.Fatalf("h1 br-tun got flows without an advertisement: %q", got)
	}
	// A controller that never read h1's VLANs cannot rebuild them: h1 is
	// counted as not ready until apply advertises.
	if v, _ := metricValue(t, srv.Server, "switches_not_ready"); v != 1 {
		t.Errorf("switches_not_ready = %v while h1 waits, want 1", v)
	}
	h1.advertise(t)
	eventually(t, 20*time.Second, "h1 synced after apply", func() bool { return srv.synced(0, 6) })
	checkFlows(t, topo, hosts, srv.Server)
	if v, _ := metricValue(t, srv.Server, "switches_not_ready"); v != 0 {
		t.Errorf("switches_not_ready = %v once h1 is served, want 0", v)
	}
}

// TestFlowsCompiledForControllerMode guards the assumption the controller's
// packet-in filter relies on: the report flows, in table 1 and (for
// unmanaged peers' tunnels) table 2, carry CookieOwned.
func TestFlowsCompiledForControllerMode(t *testing.T) {
	topo := parseTopo(t, testTopo)
	h := topo.Host("h1")
	alloc, _ := topo.Allocate(h, topology.Allocation{})
	prog, err := flows.Compile(topo, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range prog.Tun {
		for _, a := range f.Actions {
			if _, ok := a.(flows.Controller); ok {
				n++
				if f.Table != flows.TableFromPort && f.Table != flows.TableFromTun || f.Cookie&flows.CookieOwnerMask != flows.CookieOwned {
					t.Errorf("report flow outside tables 1 and 2 or CookieOwned: %s", f)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no flow reports to the controller")
	}
}

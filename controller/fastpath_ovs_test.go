package controller

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// tunCounters is what one br-tun session has sent so far.
type tunCounters struct {
	dumps, flowMods, bundles uint64
}

// tunCounts reads every br-tun session's counters, by host.
func (s *Server) tunCounts() map[string]tunCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]tunCounters{}
	for _, sess := range s.sessions {
		if !sess.tun() {
			continue
		}
		st := sess.snapshot()
		out[sess.id.host.Name] = tunCounters{dumps: sess.sw.Dumps(), flowMods: st.FlowMods, bundles: st.Bundles}
	}
	return out
}

// markAllFull asks every br-tun session for a full reconcile.
func (s *Server) markAllFull() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		if sess.tun() {
			sess.markDirty(time.Now())
		}
	}
}

// TestIncrementalUpdatesOVS checks the fast path on three real switches: a
// learned MAC, a move and an IP taken by another MAC reach every br-tun as a
// handful of flow-mods in one bundle, without a single flow dump, and leave
// exactly the flows a full reconcile computes (a full reconcile afterwards
// has nothing to change).
func TestIncrementalUpdatesOVS(t *testing.T) {
	ovstest.Require(t)
	topo := parseTopo(t, testTopo)
	hosts, ls := startHosts(t, topo, "tcp")
	h1, h2, h3 := hostNamed(hosts, "h1"), hostNamed(hosts, "h2"), hostNamed(hosts, "h3")
	const nSwitches = 6
	// No periodic reconcile or activity read during the test: every dump
	// counted would come from the path under test.
	srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: ls, AgeInterval: time.Hour, EchoInterval: time.Second})
	for _, oh := range hosts {
		oh.advertise(t)
	}
	eventually(t, 30*time.Second, "all switches synced", func() bool { return srv.synced(0, nSwitches) })
	checkFlows(t, topo, hosts, srv.Server)

	// step makes change happen, waits until every switch reflects it and
	// checks what each br-tun was sent: no dump, one bundle of at most
	// maxMods flow-mods on the hosts in touched, nothing elsewhere.
	step := func(t *testing.T, what string, do func(), change func() bool, touched map[string]int) {
		t.Helper()
		before := srv.tunCounts()
		v0 := srv.Knowledge().Version()
		do()
		var v uint64
		eventually(t, 10*time.Second, what, func() bool {
			v = srv.Knowledge().Version()
			return v > v0 && change()
		})
		eventually(t, 10*time.Second, what+" pushed", func() bool { return srv.synced(v, nSwitches) })
		after := srv.tunCounts()
		for host, a := range after {
			b := before[host]
			if a.dumps != b.dumps {
				t.Errorf("%s: %d flow dumps for %s, want none", host, a.dumps-b.dumps, what)
			}
			mods, bundles := a.flowMods-b.flowMods, a.bundles-b.bundles
			maxMods, ok := touched[host]
			switch {
			case !ok && (mods != 0 || bundles != 0):
				t.Errorf("%s: %d flow-mods in %d bundles for %s, want none", host, mods, bundles, what)
			case ok && (mods == 0 || int(mods) > maxMods || bundles != 1):
				t.Errorf("%s: %d flow-mods in %d bundles for %s, want 1..%d in one", host, mods, bundles, what, maxMods)
			}
			t.Logf("%s: %s: %d flow-mods, %d bundles, %d dumps", host, what, mods, bundles, a.dumps-b.dumps)
		}
		checkFlows(t, topo, hosts, srv.Server)
		// A full reconcile finds nothing to change.
		before = srv.tunCounts()
		srv.markAllFull()
		// A full reconcile of br-tun dumps twice: the advertisement
		// (refreshAlloc), then the reconciled range.
		eventually(t, 10*time.Second, "full reconciles", func() bool {
			for host, a := range srv.tunCounts() {
				if a.dumps < before[host].dumps+2 {
					return false
				}
			}
			return true
		})
		eventually(t, 10*time.Second, "synced after the full reconciles", func() bool { return srv.synced(v, nSwitches) })
		for host, a := range srv.tunCounts() {
			if a.flowMods != before[host].flowMods {
				t.Errorf("%s: a full reconcile after %s sent %d flow-mods, want none", host, what, a.flowMods-before[host].flowMods)
			}
		}
	}

	const src = "02:00:00:00:20:01"
	ip := netip.MustParseAddr("10.1.0.50")
	t.Run("learn", func(t *testing.T) {
		// h1: two known-source flows, the known ARP, the local ARP
		// flow and the gratuitous ARP flood; h2, h3: the unicast entry,
		// the ARP responder, the owner's own request and the
		// gratuitous ARP flood.
		step(t, "learning "+src, func() { h1.packetOut(t, taggedFrame(src, h1.alloc.LocalVLAN[100], "0a010032")) }, func() bool {
			e, ok := srv.Knowledge().Lookup(key(100, src))
			return ok && e.Host == "h1" && slices.Contains(e.IPs, ip)
		}, map[string]int{"h1": 5, "h2": 4, "h3": 4})
	})
	t.Run("move", func(t *testing.T) {
		// Every host's flows for the MAC change: h1 and h2 swap roles
		// (the gratuitous ARP flood, the same for both, stays), h3's
		// entry and responder point at h2's tunnel.
		step(t, "moving "+src, func() { h2.packetOut(t, taggedFrame(src, h2.alloc.LocalVLAN[100], "0a010032")) }, func() bool {
			e, ok := srv.Knowledge().Lookup(key(100, src))
			return ok && e.Host == "h2"
		}, map[string]int{"h1": 7, "h2": 7, "h3": 2})
	})
	t.Run("IP taken by another MAC", func(t *testing.T) {
		const other = "02:00:00:00:20:02"
		step(t, other+" taking "+ip.String(), func() { h3.packetOut(t, taggedFrame(other, h3.alloc.LocalVLAN[100], "0a010032")) }, func() bool {
			e, ok := srv.Knowledge().Lookup(key(100, other))
			old, _ := srv.Knowledge().Lookup(key(100, src))
			return ok && slices.Contains(e.IPs, ip) && !slices.Contains(old.IPs, ip)
		}, map[string]int{"h1": 5, "h2": 8, "h3": 8})
		for _, oh := range []*ovsHost{h1, h2} {
			if got := oh.dump(t, topology.BridgeTun, "table=3"); slices.ContainsFunc(got, func(l string) bool {
				return containsAll(l, "arp_tpa=10.1.0.50", "set_field:02:00:00:00:20:01->eth_src")
			}) {
				t.Errorf("%s still answers 10.1.0.50 with the old MAC: %q", oh.h.Name, got)
			}
		}
	})
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

package ovsdb

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// bigTopo is host1 with n peers, one network per peer, and one internal
// port of host1 in each network: n tunnels, n access ports, n VLANs.
func bigTopo(n int) *topology.Topology {
	t := &topology.Topology{Name: "hxbench"}
	addr := netip.MustParseAddr("10.200.0.1")
	for i := 0; i <= n; i++ {
		t.Hosts = append(t.Hosts, &topology.Host{
			Name: fmt.Sprintf("host%d", i+1), VTEP: addr, Managed: true, Mode: topology.ModeLearn,
			DstPort: 4789, Datapath: topology.DatapathNetdev,
		})
		addr = addr.Next()
	}
	for i := 1; i <= n; i++ {
		nw := &topology.Network{Name: fmt.Sprintf("net%d", i), VNI: uint32(1000 + i)}
		addPort(nw, t.Hosts[0], fmt.Sprintf("hxi%d", i), topology.PortInternal)
		addPort(nw, t.Hosts[i], "vm", topology.PortVM)
		t.Networks = append(t.Networks, nw)
	}
	return t
}

// BenchmarkReconcile measures, against a real ovsdb-server and
// ovs-vswitchd, a plan that finds nothing to do and a reconcile that
// changes every tunnel's dst_port in place (Plan + Apply, waiting for
// ovs-vswitchd), for 50 peers and 50 access ports.
func BenchmarkReconcile(b *testing.B) {
	const n = 50
	l := newLab(b)
	tp := bigTopo(n)
	h := tp.Hosts[0]
	start := time.Now()
	plan := l.reconcile(tp, h)
	b.Logf("initial apply of %d changes (%d operations): %s", len(plan.Changes), len(plan.Ops), time.Since(start))

	b.Run("noop-plan", func(b *testing.B) {
		for b.Loop() {
			if p := l.planOnly(tp, h); !p.Empty() {
				b.Fatalf("not converged: %q", p.Changes)
			}
		}
	})
	b.Run("change-all-tunnels", func(b *testing.B) {
		port := uint16(4789)
		for b.Loop() {
			port ^= 1 // 4789 <-> 4788
			for _, host := range tp.Hosts {
				host.DstPort = port
			}
			if p := l.reconcile(tp, h); len(p.Changes) != n {
				b.Fatalf("%d changes, want %d", len(p.Changes), n)
			}
		}
	})
}

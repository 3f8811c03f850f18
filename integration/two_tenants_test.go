package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/lab"
)

// TestTwoTenants runs the two-tenant example (tenant-a VNI 100 and tenant-b
// VNI 200 on the same three hosts, with the same addresses) through the lab.
func TestTwoTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs root, Open vSwitch and network namespaces")
	}
	t.Parallel()
	l := upLab(t, "two-tenants")
	t.Run("AllPairsPing", func(t *testing.T) { checkAllPairsPing(t, l) })
	t.Run("VXLANOnUnderlay", func(t *testing.T) { checkVXLANOnUnderlay(t, l) })
	t.Run("TenantsIsolated", func(t *testing.T) { checkIsolation(t, l) })
	t.Run("FlowsMatchCompiledAndGolden", func(t *testing.T) { checkFlowsMatch(t, l) })
	t.Run("ReapplyChangesNothing", func(t *testing.T) { checkReapply(t, l) })
	t.Run("LabDownLeavesNothing", func(t *testing.T) { checkLabDown(t, l) })
}

// checkIsolation pings from a1 to 10.1.1.3 and 10.1.1.4 (addresses that
// tenant-b's b2 and b3 hold too) after flushing a1's neighbours, so ARP
// broadcasts go out: a1 must resolve them to a2's and a3's MACs, and
// captures on b1's, b2's and b3's eth0 must see no frame from a tenant-a MAC.
// b1 pings b2 and b3 meanwhile, so the captures provably see tenant-b traffic.
func checkIsolation(t *testing.T, l *labEnv) {
	a1, b1 := l.vmByPort(t, "a1"), l.vmByPort(t, "b1")
	targets := []vm{l.vmByPort(t, "a2"), l.vmByPort(t, "a3")}
	others := []vm{l.vmByPort(t, "b2"), l.vmByPort(t, "b3")}
	tenantA, tenantB := map[string]bool{}, map[string]bool{}
	for _, v := range l.vms() {
		if v.network == a1.network {
			tenantA[v.mac] = true
		} else if v.network == b1.network {
			tenantB[v.mac] = true
		}
	}
	// b1 shares host1 (and br-int) with a1: local isolation; b2 and b3
	// are behind the tunnels.
	watched := append([]vm{b1}, others...)
	var caps []*capture
	for _, o := range watched {
		caps = append(caps, startCapture(t, lab.VMNS(l.opts, o.host, o.port), lab.VMIf, "", 1000, 60*time.Second))
	}
	for _, v := range []vm{a1, b1} {
		l.mustExec(t, v.name(), "ip", "neigh", "flush", "dev", lab.VMIf)
	}
	for i, target := range targets {
		l.ping(t, a1, target.ip, "("+target.name()+", ARP flushed)")
		neigh := l.mustExec(t, a1.name(), "ip", "neigh", "show", target.ip, "dev", lab.VMIf).stdout
		if !strings.Contains(strings.ToLower(neigh), "lladdr "+target.mac) {
			t.Errorf("%s resolves %s to %q, want %s's MAC %s", a1.name(), target.ip, strings.TrimSpace(neigh), target.name(), target.mac)
		} else {
			t.Logf("%s: %s", a1.name(), strings.TrimSpace(neigh))
		}
		l.ping(t, b1, others[i].ip, "("+others[i].name()+", ARP flushed, capture control)")
	}
	for i, c := range caps {
		o := watched[i]
		pkts := c.decode(t, "eth.src", "arp.src.hw_mac", "eth.dst")
		fromB := 0
		var leaks []string
		for _, f := range pkts {
			leaked := false
			for _, field := range f[:min(2, len(f))] {
				for _, mac := range strings.Split(field, ",") {
					leaked = leaked || tenantA[strings.ToLower(mac)]
				}
			}
			if leaked {
				leaks = append(leaks, strings.Join(f, " "))
			}
			if len(f) > 0 && tenantB[strings.ToLower(f[0])] {
				fromB++
			}
		}
		if len(leaks) > 0 {
			t.Errorf("%s saw %d frames from tenant-a MACs (eth.src, arp sender, eth.dst), e.g.:\n%s", o.name(), len(leaks), strings.Join(leaks[:min(5, len(leaks))], "\n"))
		}
		if fromB == 0 {
			t.Errorf("the capture on %s's %s saw no frame from tenant-b (%d frames): it would not have seen a leak either", o.name(), lab.VMIf, len(pkts))
		}
		t.Logf("capture on %s: %d frames, %d from tenant-b, %d from tenant-a", o.name(), len(pkts), fromB, len(leaks))
	}
}

package lab

import (
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// forwardTopo has a host with a route (r1), a host with internal ports in
// two networks (g1), a host with two internal ports in one network and a VM
// (p1), a plain host (v1) and an unmanaged host with a VM in two networks
// (k1): only r1 and g1 route.
func forwardTopo(t *testing.T) *topology.Topology {
	topo := newTopo("labf").
		host("r1", "10.249.0.1", true, 0).
		host("g1", "10.249.0.2", true, 0).
		host("p1", "10.249.0.3", true, 0).
		host("v1", "10.249.0.4", true, 0).
		host("k1", "10.249.0.5", false, 0).
		network("a", 10).
		port(t, "r1", "ta", topology.PortInternal, "", "1.1.1.1/24", "").
		port(t, "g1", "ga", topology.PortInternal, "", "1.1.1.2/24", "").
		port(t, "p1", "pa1", topology.PortInternal, "", "1.1.1.3/24", "").
		port(t, "p1", "pa2", topology.PortInternal, "", "", "").
		port(t, "p1", "pvm", topology.PortVM, "", "1.1.1.4/24", "").
		port(t, "v1", "vvm", topology.PortVM, "", "1.1.1.5/24", "").
		port(t, "k1", "kvm", topology.PortVM, "02:00:00:00:00:01", "1.1.1.6/24", "").
		network("b", 20).
		port(t, "g1", "gb", topology.PortInternal, "", "10.1.8.1/24", "").
		port(t, "v1", "vvm2", topology.PortVM, "", "10.1.8.5/24", "").
		port(t, "k1", "kvm2", topology.PortVM, "02:00:00:00:00:02", "10.1.8.6/24", "").
		t
	topo.Host("r1").Routes = []topology.Route{{To: netip.MustParsePrefix("10.1.5.0/24"), Via: netip.MustParseAddr("1.1.1.2")}}
	return topo
}

func TestForwards(t *testing.T) {
	topo := forwardTopo(t)
	want := map[string]bool{"r1": true, "g1": true, "p1": false, "v1": false, "k1": false}
	for _, h := range topo.Hosts {
		if got := Forwards(topo, h); got != want[h.Name] {
			t.Errorf("Forwards(%s) = %v, want %v", h.Name, got, want[h.Name])
		}
	}
	// Routes on an unmanaged host (which validation rejects) do not
	// make the lab touch it.
	k1 := topo.Host("k1")
	k1.Routes = topo.Host("r1").Routes
	if Forwards(topo, k1) {
		t.Errorf("Forwards(unmanaged host with routes) = true")
	}
}

// TestForwardingInNamespaces brings the hosts up (without apply) and reads
// the forwarding settings inside each host's namespace.
func TestForwardingInNamespaces(t *testing.T) {
	needRoot(t)
	topo := forwardTopo(t)
	o := Options{Topology: topo, Dir: labDir(t), Log: zaptest.NewLogger(t), SkipApply: true}
	upForTest(t, o)
	files := forwardingFiles()
	if len(files) != 2 {
		t.Logf("no IPv6 in this kernel: checking %v only", files)
	}
	for _, h := range topo.Hosts {
		want := "0"
		if Forwards(topo, h) {
			want = "1"
		}
		for _, f := range files {
			got := strings.TrimSpace(mustRun(t, "ip", "netns", "exec", HostNS(o, h.Name), "cat", f))
			if got != want {
				t.Errorf("host %s: %s = %s, want %s", h.Name, f, got, want)
			}
		}
	}
}

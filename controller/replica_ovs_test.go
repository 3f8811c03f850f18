package controller

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// addSecondController points both bridges of oh at a second controller
// listening in its namespace, and returns that listener.
func addSecondController(t *testing.T, oh *ovsHost) net.Listener {
	t.Helper()
	l := ovsruntest.ListenTCP(t, oh.inst.NetNS, "127.0.0.1:0")
	target := fmt.Sprintf("tcp:127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
	var args []string
	for _, br := range []string{topology.BridgeInt, topology.BridgeTun} {
		id := "@r" + br[3:]
		args = append(args, "--", "--id="+id, "create", "controller", "target=\""+target+"\"", "max_backoff=1000",
			"connection_mode=out-of-band", "--", "add", "bridge", br, "controller", id)
	}
	if _, err := oh.inst.Vsctl(ctxFor(t, 30*time.Second), args...); err != nil {
		t.Fatal(err)
	}
	return l
}

// controllerRoles counts the roles ovs-vswitchd reports for oh's
// controllers (the Controller table's role column).
func controllerRoles(t *testing.T, oh *ovsHost) string {
	t.Helper()
	out, err := oh.inst.Vsctl(ctxFor(t, 30*time.Second), "--bare", "--columns=role", "list", "controller")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(out)
	n := map[string]int{}
	for _, f := range fields {
		n[f]++
	}
	return fmt.Sprint(n)
}

// TestReplicaOVS: two replicas (a fake directory) against real switches:
// OVS grants one master per switch, the slave's connection is a slave in
// OVS's own eyes, a MAC learned from a real frame by one replica reaches the
// switches the other masters, and when a master stops the other takes over
// without a flow-mod.
func TestReplicaOVS(t *testing.T) {
	ovstest.Require(t)
	topo := parseTopo(t, testTopo)
	hosts, lsA := startHosts(t, topo, "tcp")
	var lsB []net.Listener
	for _, oh := range hosts {
		lsB = append(lsB, addSecondController(t, oh))
		oh.advertise(t)
	}
	dir := newFakeCluster(time.Second)
	opts := func(name string, ls []net.Listener) ServerOptions {
		return ServerOptions{Topology: topo, Listeners: ls, Name: name, OpenDirectory: dir.open,
			Grace: 200 * time.Millisecond, EchoInterval: 500 * time.Millisecond}
	}
	a := runServer(t, t, opts("ctl-a", lsA))
	b := runServer(t, t, opts("ctl-b", lsB))
	const nSwitches = 6
	mastered := func(srvs ...*Server) bool {
		for _, oh := range hosts {
			for _, br := range []string{topology.BridgeInt, topology.BridgeTun} {
				dpid := topology.BridgeDatapathID(topo.Name, oh.h.Name, br)
				n := 0
				for _, s := range srvs {
					if masterOf(s, dpid) {
						n++
						if st, ok := stateOf(s, dpid); !ok || !st.Synced {
							return false
						}
					}
				}
				if n != 1 {
					return false
				}
			}
		}
		return true
	}
	took := eventually(t, 30*time.Second, "one master per switch", func() bool { return mastered(a.Server, b.Server) })
	t.Logf("every switch mastered and programmed %s after start", took)
	for _, oh := range hosts {
		// Each host's OVS: 2 bridges x 2 controllers, one master and one
		// slave per bridge (ovs-vswitchd writes the column every few
		// seconds).
		eventually(t, 20*time.Second, oh.h.Name+" reports a master and a slave per bridge", func() bool {
			return controllerRoles(t, oh) == "map[master:2 slave:2]"
		})
	}
	checkFlows(t, topo, hosts, a.Server)
	checkFlows(t, topo, hosts, b.Server)
	for _, r := range []*runningServer{a, b} {
		for _, st := range r.Switches() {
			if st.Role == "slave" && (st.FlowMods != 0 || st.LastError != "") {
				t.Errorf("slave %s: %d flow-mods to %s %s (%s)", r.Name(), st.FlowMods, st.Host, st.Bridge, st.LastError)
			}
		}
	}

	// A frame from an unknown source on h2: its master learns it, the other
	// replica hears of it, every switch gets it.
	h2 := hostNamed(hosts, "h2")
	src := "02:00:00:00:20:01"
	h2.packetOut(t, taggedFrame(src, h2.alloc.LocalVLAN[100], "0a012001"))
	for _, r := range []*runningServer{a, b} {
		eventually(t, 10*time.Second, "MAC known to "+r.Name(), func() bool {
			e, ok := r.Knowledge().Lookup(key(100, src))
			return ok && e.Host == "h2"
		})
	}
	eventually(t, 10*time.Second, "learned MAC on every other host", func() bool {
		for _, oh := range hosts {
			if oh.h.Name == "h2" {
				continue
			}
			found := false
			for _, l := range oh.dump(t, topology.BridgeTun, "table=20") {
				found = found || strings.Contains(l, "dl_dst="+src)
			}
			if !found {
				return false
			}
		}
		return true
	})
	checkFlows(t, topo, hosts, a.Server)

	// The master of h2's br-tun stops: the other replica takes every
	// switch over, sending nothing.
	victim, heir := a, b
	if masterOf(b.Server, topology.BridgeDatapathID(topo.Name, "h2", topology.BridgeTun)) {
		victim, heir = b, a
	}
	heirMods := heir.Stats().FlowMods
	victim.stop()
	took = eventually(t, 15*time.Second, "the heir masters every switch", func() bool { return mastered(heir.Server) })
	t.Logf("new master of every switch %s after the stop", took)
	if took > 3*time.Second {
		t.Errorf("failover took %s, want within 3 s", took)
	}
	if got := heir.Stats().FlowMods - heirMods; got != 0 {
		t.Errorf("the heir sent %d flow-mods taking over, want 0", got)
	}
	checkFlows(t, topo, hosts, heir.Server)
	if len(heir.Switches()) != nSwitches {
		t.Errorf("heir serves %d switches", len(heir.Switches()))
	}
}

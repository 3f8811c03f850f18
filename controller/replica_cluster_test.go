package controller

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// TestReplicaFailoverCluster: replicaFailover with the real directory, a
// 3-member clustered ovsdb-server (no root needed; skipped with -short).
func TestReplicaFailoverCluster(t *testing.T) {
	ms := ovstest.StartCluster(t, 3, directory.DatabaseName, directory.Schema(), 41)
	topo := parseTopo(t, testTopo)
	replicaFailover(t, topo, func(t *testing.T, name string) (*runningServer, string) {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: name,
			Directory: ovstest.Endpoints(ms), Grace: 100 * time.Millisecond})
		return srv, l.Addr().String()
	})
}

// TestReplicaDirectoryLeaderKilledCluster and ...StoppedCluster: the
// directory's leader dies or hangs; every replica keeps its roles, and a
// MAC learned meanwhile reaches the other replica once a new leader is
// elected.
func TestReplicaDirectoryLeaderKilledCluster(t *testing.T) { directoryLeaderLost(t, syscall.SIGKILL) }

func TestReplicaDirectoryLeaderStoppedCluster(t *testing.T) { directoryLeaderLost(t, syscall.SIGSTOP) }

func directoryLeaderLost(t *testing.T, sig syscall.Signal) {
	ms := ovstest.StartCluster(t, 3, directory.DatabaseName, directory.Schema(), 44)
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	start := func(name string) (*runningServer, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: name,
			Directory: ovstest.Endpoints(ms), Grace: 100 * time.Millisecond}), l.Addr().String()
	}
	a, addrA := start("ctl-a")
	b, addrB := start("ctl-b")
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 20*time.Second, "one master per switch", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	roles := func() string {
		var out []bool
		for _, sw := range switchesOf(hosts) {
			out = append(out, masterOf(a.Server, sw.DatapathID()))
		}
		return fmt.Sprint(out)
	}
	before := roles()
	leader := a.dir.(*directory.Client).Leader()
	killed := false
	for _, m := range ms {
		if m.Remote == leader {
			if err := m.Cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatalf("no member at the leader %q", leader)
	}
	killedAt := time.Now()
	h2 := emuHostNamed(hosts, "h2")
	master, other := a, b
	if masterOf(b.Server, h2.tun.DatapathID()) {
		master, other = b, a
	}
	vm := mac("52:54:00:00:02:0b")
	frame := openflowtest.ARPRequest(vm, netip.MustParseAddr("10.1.0.41"), netip.MustParseAddr("10.1.0.77"), h2.alloc.LocalVLAN[100])
	h2.tun.SendPacketIn(openflowtest.UnknownSource(frame))
	k := key(100, vm.String())
	eventually(t, 5*time.Second, "the master learns", func() bool { _, ok := master.Knowledge().Lookup(k); return ok })
	eventually(t, 20*time.Second, "the other replica hears of it", func() bool { _, ok := other.Knowledge().Lookup(k); return ok })
	t.Logf("learned MAC reached the other replica %s after the leader got %v", time.Since(killedAt), sig)
	// Past a heartbeat timeout more: a replica that judged the others
	// dead over the outage would have taken their switches by now.
	time.Sleep(2 * time.Second)
	if got := roles(); got != before {
		t.Errorf("roles changed over the leader's death: %s, were %s", got, before)
	}
	if !oneMasterEach(hosts, a.Server, b.Server) {
		t.Error("not one master per switch after the leader's death")
	}
}

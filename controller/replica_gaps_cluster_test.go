package controller

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/hwvtep"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// Controller replicas' remaining duties against the real directory, a
// 3-member clustered ovsdb-server (no root needed; skipped with -short).

// TestReplicaForgetCluster: a MAC its master ages out is deleted from the
// directory; the other replica forgets it and the switches lose its flows;
// after every replica restarts it does not come back.
func TestReplicaForgetCluster(t *testing.T) {
	ms := ovstest.StartCluster(t, 3, directory.DatabaseName, directory.Schema(), 61)
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	start := func(name string) (*runningServer, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: name, Directory: ovstest.Endpoints(ms),
			Grace: 100 * time.Millisecond, MACIdle: 3 * time.Second, AgeInterval: 250 * time.Millisecond}), l.Addr().String()
	}
	a, addrA := start("ctl-a")
	b, addrB := start("ctl-b")
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 20*time.Second, "one master per switch", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	h2 := emuHostNamed(hosts, "h2")
	master, other := a, b
	if masterOf(b.Server, h2.tun.DatapathID()) {
		master, other = b, a
	}
	vm := mac("52:54:00:00:02:0f")
	frame := openflowtest.ARPRequest(vm, netip.MustParseAddr("10.1.0.15"), netip.MustParseAddr("10.1.0.77"), h2.alloc.LocalVLAN[100])
	h2.tun.SendPacketIn(openflowtest.UnknownSource(frame))
	k := key(100, vm.String())
	dk := directory.Key{VNI: 100, MAC: vm.String()}
	knows := func(r *runningServer) bool { _, ok := r.Knowledge().Lookup(k); return ok }
	inDir := func(r *runningServer) bool { _, ok := r.dir.Endpoint(dk); return ok }
	eventually(t, 10*time.Second, "both replicas and the directory know the MAC", func() bool {
		return knows(master) && knows(other) && inDir(master) && inDir(other)
	})
	onSwitches := func() bool {
		for _, e := range hosts {
			if e.h.Name != "h2" && holds(t, e.tun, "table=20", "dl_dst="+vm.String()) {
				return true
			}
		}
		return false
	}
	eventually(t, 10*time.Second, "its flows on the switches", onSwitches)
	took := eventually(t, 20*time.Second, "the aged-out MAC gone from the directory and both replicas", func() bool {
		return !knows(master) && !knows(other) && !inDir(master) && !inDir(other)
	})
	t.Logf("forgotten everywhere %s after it was known (MACIdle 3 s)", took)
	eventually(t, 10*time.Second, "its flows gone from every switch", func() bool { return !onSwitches() })
	if n := master.dir.(*directory.Client).Stats().Forgotten; n != 1 {
		t.Errorf("the master deleted %d rows, want 1", n)
	}
	if got := metricOf(t, master.Server, "directory_endpoints_total", "result", learnedForgotten); got < 1 {
		t.Errorf("forgotten endpoints counted %v", got)
	}

	a.stop()
	b.stop()
	a, addrA = start("ctl-a")
	b, addrB = start("ctl-b")
	for _, e := range hosts {
		e.connect(t, addrA)
		e.connect(t, addrB)
	}
	eventually(t, 20*time.Second, "one master per switch after the restart", func() bool { return oneMasterEach(hosts, a.Server, b.Server) })
	if knows(a) || knows(b) || inDir(a) {
		t.Error("the aged-out MAC came back after every replica restarted")
	}
}

// TestReplicaNameInUseCluster: a second replica started with the name of
// a live one refuses to start, naming the conflict.
func TestReplicaNameInUseCluster(t *testing.T) {
	ms := ovstest.StartCluster(t, 3, directory.DatabaseName, directory.Schema(), 64)
	topo := parseTopo(t, testTopo)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: "ctl-a", Directory: ovstest.Endpoints(ms)})
	eventually(t, 10*time.Second, "a beats", func() bool { return a.dir.(*directory.Client).Stats().Heartbeats > 2 })
	dup, err := NewServer(ServerOptions{Topology: topo, Listen: []string{"tcp:127.0.0.1:0"}, Name: "ctl-a", Directory: ovstest.Endpoints(ms),
		Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = dup.Run(ctx, nil)
	if !errors.Is(err, directory.ErrNameInUse) {
		t.Fatalf("second replica named ctl-a: Run returned %v, want the name conflict", err)
	}
	t.Logf("refused: %v", err)
	if !a.DirectoryConnected() {
		t.Error("the first replica lost the directory")
	}
}

// TestReplicaHardwareVTEPCluster: with a directory only the replica
// holding a hardware VTEP's claim drives it (one writer of its database,
// never two); the switch's MACs reach the other replica through the
// directory; when the holder stops, the other takes the VTEP over.
func TestReplicaHardwareVTEPCluster(t *testing.T) {
	ms := ovstest.StartCluster(t, 3, directory.DatabaseName, directory.Schema(), 67)
	const target = "tcp:10.0.0.9:6640"
	f := newFakeVTEPs()
	server := key(100, "02:00:00:00:00:11")
	f.local[target] = []hwvtep.LocalMAC{{VNI: 100, MAC: server.HardwareAddr()}}
	topo := parseTopo(t, hwTopo)
	start := func(name string) *runningServer {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o := ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: name, Directory: ovstest.Endpoints(ms), Grace: 10 * time.Millisecond}
		return runServerTweaked(t, t, o, func(s *Server) { s.hw.connect = f.connect })
	}
	a, b := start("ctl-a"), start("ctl-b")
	eventually(t, 10*time.Second, "tor1 driven", func() bool { open, syncs, _ := f.state(target); return open == 1 && syncs > 0 })
	vtepKey := directory.HardwareVTEPKey("tor1")
	var row SwitchOwner
	eventually(t, 10*time.Second, "both replicas see the claim", func() bool {
		ra, _ := a.dir.KeyOwner(vtepKey)
		rb, _ := b.dir.KeyOwner(vtepKey)
		row = ra
		return ra.Master != "" && ra == rb
	})
	holder, other := a, b
	if row.Master == "ctl-b" {
		holder, other = b, a
	}
	if row.Master != holder.Name() {
		t.Fatalf("claim row %+v", row)
	}
	eventually(t, 10*time.Second, "the other replica knows the MAC tor1 reported", func() bool {
		e, ok := other.Knowledge().Lookup(server)
		return ok && e.Host == "tor1"
	})
	time.Sleep(time.Second)
	f.mu.Lock()
	most := f.most
	f.mu.Unlock()
	if most != 1 {
		t.Fatalf("%d connections to tor1's database at once, want 1", most)
	}
	holder.stop()
	took := eventually(t, 10*time.Second, "the other replica drives tor1", func() bool {
		open, _, _ := f.state(target)
		r, _ := other.dir.KeyOwner(vtepKey)
		return open == 1 && r.Master == other.Name()
	})
	t.Logf("tor1 taken over %s after the holder stopped", took)
	if r, _ := other.dir.KeyOwner(vtepKey); r.Generation != row.Generation+1 {
		t.Errorf("claim generation %d after the takeover, want %d (released, not timed out)", r.Generation, row.Generation+1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.most != 1 {
		t.Errorf("%d connections to tor1's database at once, want 1", f.most)
	}
}

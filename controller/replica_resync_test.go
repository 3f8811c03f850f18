package controller

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// droppingDir is a replica's client whose queue is full while drop is
// set: Learn and Forget drop, as the real client's bounded queue does.
type droppingDir struct {
	Directory
	drop atomic.Bool
}

func (d *droppingDir) Learn(e directory.Endpoint) bool {
	return !d.drop.Load() && d.Directory.Learn(e)
}

func (d *droppingDir) Forget(k directory.Key, host string) bool {
	return !d.drop.Load() && d.Directory.Forget(k, host)
}

// A learned MAC whose write the directory's queue dropped reaches the
// directory at a later age pass; one forgotten while its delete was
// dropped leaves it at a later pass too.
func TestReplicaResyncsWhatTheQueueDropped(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	dir := newFakeCluster(time.Second)
	var dd *droppingDir
	open := func(h DirectoryHooks) (Directory, error) {
		d, err := dir.open(h)
		dd = &droppingDir{Directory: d}
		return dd, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := runServer(t, t, ServerOptions{Topology: topo, Listeners: []net.Listener{l}, Name: "ctl-a", OpenDirectory: open,
		Grace: 100 * time.Millisecond, AgeInterval: 200 * time.Millisecond})
	for _, e := range hosts {
		e.connect(t, l.Addr().String())
	}
	eventually(t, 20*time.Second, "ctl-a ready", func() bool { return len(a.NotReady()) == 0 })
	row := func() bool {
		dir.mu.Lock()
		defer dir.mu.Unlock()
		_, ok := dir.eps[directory.Key{VNI: 100, MAC: "52:54:00:00:02:02"}]
		return ok
	}

	dd.drop.Store(true)
	h2 := emuHostNamed(hosts, "h2")
	vm := mac("52:54:00:00:02:02")
	frame := openflowtest.ARPRequest(vm, netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.77"), h2.alloc.LocalVLAN[100])
	if n := h2.tun.SendPacketIn(openflowtest.UnknownSource(frame)); n != 1 {
		t.Fatalf("packet-in reached %d controllers, want 1", n)
	}
	eventually(t, 5*time.Second, "MAC learned", func() bool { _, ok := a.Knowledge().Lookup(key(100, vm.String())); return ok })
	time.Sleep(100 * time.Millisecond)
	if row() {
		t.Fatal("the directory has the row although its Learn was dropped")
	}
	dd.drop.Store(false)
	eventually(t, 5*time.Second, "the dropped Learn re-sent", row)

	dd.drop.Store(true)
	now := time.Now()
	a.changed(a.Knowledge().Withdraw(key(100, vm.String()), "h2"), now)
	time.Sleep(100 * time.Millisecond)
	if !row() {
		t.Fatal("the row is gone although its Forget was dropped")
	}
	dd.drop.Store(false)
	eventually(t, 5*time.Second, "the dropped Forget re-sent", func() bool { return !row() })
}

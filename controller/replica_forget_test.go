package controller

// After a failover the replica that now masters a MAC's host ages the MAC
// out and deletes its row, which another replica wrote. The writer must
// forget the MAC too: it no longer masters that host, so its own expiry
// skips it, and it would keep the MAC for good.

import (
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
)

func TestReplicaForgetsOwnRowDeletedByAnotherReplica(t *testing.T) {
	topo := parseTopo(t, testTopo)
	dir := newFakeCluster(time.Second)
	b, _ := replicaServer(t, topo, "ctl-b", dir)
	a, _ := replicaServer(t, topo, "ctl-a", dir)
	vm := key(100, "52:54:00:00:0a:01")
	k := directory.Key{VNI: 100, MAC: "52:54:00:00:0a:01"}
	// ctl-b learned the MAC on h1 while it mastered h1's br-tun.
	dir.mu.Lock()
	dir.learnLocked("ctl-b", directory.Endpoint{Key: k, Host: "h1", Updated: time.Now()})
	dir.mu.Unlock()
	eventually(t, 5*time.Second, "ctl-a merged the MAC", func() bool { _, ok := a.Knowledge().Lookup(vm); return ok })
	if _, ok := b.Knowledge().Lookup(vm); !ok {
		// Its own row coming back is not news; in real life it knew the
		// MAC already, having learned it.
		if _, err := b.Knowledge().Merge(vm, "h1", nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// ctl-a, now master of h1, ages the MAC out: its Forget deletes the row.
	(&fakeDir{c: dir, hooks: DirectoryHooks{Name: "ctl-a"}}).Forget(k, "h1")
	time.Sleep(500 * time.Millisecond)
	dir.mu.Lock()
	_, still := dir.eps[k]
	dir.mu.Unlock()
	if still {
		t.Fatal("row not deleted")
	}
	eventually(t, 5*time.Second, "ctl-b forgot the MAC whose row ctl-a deleted", func() bool {
		_, ok := b.Knowledge().Lookup(vm)
		return !ok
	})
}

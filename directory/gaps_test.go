package directory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
)

// rawCommit runs ops on c's session, as a careless tool writing the
// directory would.
func rawCommit(t *testing.T, c *Client, ops ...ovsdb.Operation) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.commit(ctx, s, ops); err != nil {
		t.Fatal(err)
	}
}

// Forget deletes a learned row only while it is the one the cache holds on
// that host: after another replica moved the MAC, the stale forget leaves
// the fresher row alone; a matching one deletes it and the other replica
// hears of the delete.
func TestClusterForgetConditional(t *testing.T) {
	ms := startCluster(t, 3)
	deleted := make(chan Endpoint, 4)
	a := open(t, ms, "ctl-a", nil)
	b := open(t, ms, "ctl-b", func(old, new *Endpoint) {
		if new == nil {
			deleted <- *old
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := ep(100, 1, "h1")
	e.Kind = KindLearned
	if !a.Learn(e) {
		t.Fatal("queue full")
	}
	waitFor(t, 10*time.Second, "b sees a's row", func() bool { got, ok := b.Endpoint(e.Key); return ok && got.Host == "h1" })
	moved := e
	moved.Host = "h2"
	if err := b.Write(ctx, moved); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a sees the move", func() bool { got, ok := a.Endpoint(e.Key); return ok && got.Host == "h2" })
	a.Forget(e.Key, "h1") // a forgot it on h1: stale
	time.Sleep(500 * time.Millisecond)
	if got, ok := b.Endpoint(e.Key); !ok || got.Host != "h2" || got.Writer != "ctl-b" {
		t.Fatalf("a stale forget changed the row: %+v %v", got, ok)
	}
	if n := a.Stats().Forgotten; n != 0 {
		t.Errorf("forgotten %d rows, want 0", n)
	}
	a.Forget(e.Key, "h2") // forgotten where the row says: deleted
	select {
	case got := <-deleted:
		if got.Key != e.Key {
			t.Errorf("b told of the delete of %v", got.Key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b not told of the delete")
	}
	waitFor(t, 10*time.Second, "a's cache loses the row, one row counted", func() bool {
		_, ok := a.Endpoint(e.Key)
		return !ok && a.Stats().Forgotten == 1
	})
	// A restarted client does not bring it back.
	c := open(t, ms, "ctl-c", nil)
	if _, ok := c.Endpoint(e.Key); ok {
		t.Error("the forgotten row is in a new client's cache")
	}
}

// Release lets another replica claim a switch whose master is alive; a
// release with a generation no longer the row's changes nothing.
func TestClusterReleaseAndClaimAbove(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	b := openReplica(t, ms, "ctl-b", nil)
	bothAlive(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, won, err := a.Claim(ctx, 9, "h", "br-tun")
	if err != nil || !won {
		t.Fatalf("a's claim: %+v %v %v", o, won, err)
	}
	waitFor(t, 10*time.Second, "b sees a's row", func() bool { r, ok := b.Owner(9); return ok && r.Master == "ctl-a" })
	if _, won, _ := b.Claim(ctx, 9, "h", "br-tun"); won {
		t.Fatal("b took a live master's switch")
	}
	if ok, err := a.Release(ctx, 9, o.Generation+5); err != nil || ok {
		t.Fatalf("release with the wrong generation: %v %v, want false nil", ok, err)
	}
	if ok, err := a.Release(ctx, 9, o.Generation); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	waitFor(t, 10*time.Second, "b sees the release", func() bool { r, ok := b.Owner(9); return ok && r.Master == "" })
	got, won, err := b.Claim(ctx, 9, "h", "br-tun")
	if err != nil || !won || got.Generation != o.Generation+1 {
		t.Fatalf("b's claim after the release: %+v %v %v, want generation %d", got, won, err, o.Generation+1)
	}
	// The switch remembers generation 40: b's own row is bumped above.
	got, won, err = b.ClaimAbove(ctx, 9, "h", "br-tun", 41)
	if err != nil || !won || got.Generation != 41 {
		t.Fatalf("ClaimAbove 41: %+v %v %v", got, won, err)
	}
	got, won, err = b.ClaimAbove(ctx, 9, "h", "br-tun", 41)
	if err != nil || !won || got.Generation != 41 {
		t.Fatalf("ClaimAbove again: %+v %v %v, want no new generation", got, won, err)
	}
	if _, _, err := b.ClaimAbove(ctx, 9, "h", "br-tun", MaxGeneration+1); !errors.Is(err, ErrGenerationRange) {
		t.Fatalf("ClaimAbove beyond MaxGeneration: %v", err)
	}
	// Claim keys share the table; OnSwitch and Owner stay the switches'.
	k := HardwareVTEPKey("tor1")
	if _, _, err := a.ClaimKey(ctx, "0000000000000009", "h", ""); err == nil {
		t.Error("ClaimKey took a datapath ID")
	}
	ko, won, err := a.ClaimKey(ctx, k, "tor1", "")
	if err != nil || !won || ko.Generation != 1 || ko.DatapathID != 0 {
		t.Fatalf("ClaimKey: %+v %v %v", ko, won, err)
	}
	waitFor(t, 10*time.Second, "b sees the key's row", func() bool { r, ok := b.KeyOwner(k); return ok && r.Master == "ctl-a" })
	if _, won, _ := b.ClaimKey(ctx, k, "tor1", ""); won {
		t.Error("b took a live holder's key")
	}
	if _, ok := b.Owner(0); ok {
		t.Error("a key's row shows as switch 0")
	}
}

// Rows ovs-vxctl does not write (a datapath_id that does not parse, a
// generation near 2^63) are logged, counted and left out; a claim of such
// a switch fails and changes nothing.
func TestClusterHostileSwitchRows(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	rawCommit(t, a,
		ovsdb.Operation{Op: ovsdb.OperationInsert, Table: model.SwitchTable, Row: ovsdb.Row{"datapath_id": "not-a-dpid", "master": "x", "generation": 1}},
		ovsdb.Operation{Op: ovsdb.OperationInsert, Table: model.SwitchTable, Row: ovsdb.Row{"datapath_id": "0000000000000005", "master": "x", "generation": 1<<63 - 2}})
	waitFor(t, 10*time.Second, "both rows counted malformed", func() bool { return a.Stats().Malformed >= 2 })
	// The out-of-range row stays in the cache (else the row it replaced
	// would pass for the truth), as a row nobody can count up from.
	if o, ok := a.Owner(5); !ok || o.Master != "x" || o.Generation != MaxGeneration {
		t.Errorf("the out-of-range row in the cache: %+v, %v; want master x at MaxGeneration", o, ok)
	}
	// Its master is no live replica: claimed, the generation starts again
	// (the switch knows none of it), above what the switch remembers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if o, won, err := a.ClaimAbove(ctx, 5, "h", "br-tun", 7); err != nil || !won || o.Generation != 7 {
		t.Errorf("claim of the out-of-range row: %+v won %v err %v, want won at generation 7", o, won, err)
	}
	waitFor(t, 5*time.Second, "the monitor brings the claimed row", func() bool {
		o, ok := a.Owner(5)
		return ok && o.Master == "ctl-a" && o.Generation == 7
	})
	if o, won, err := a.Claim(ctx, 5, "h", "br-tun"); err != nil || !won || o.Generation != 7 {
		t.Errorf("re-claim by its master: %+v won %v err %v, want generation 7 kept", o, won, err)
	}
	// A client opened later counts them at its sync.
	b := openReplica(t, ms, "ctl-b", nil)
	if got := b.Stats().Malformed; got != 1 {
		t.Errorf("b counted %d malformed rows, want 1 (the datapath_id; the generation was claimed again)", got)
	}
}

// A second client with a live replica's name refuses to take part.
func TestClusterNameInUse(t *testing.T) {
	ms := startCluster(t, 3)
	a := openReplica(t, ms, "ctl-a", nil)
	waitFor(t, 10*time.Second, "a's heartbeat", func() bool { return a.Stats().Heartbeats > 2 })
	dup, err := Open(Options{Endpoints: endpoints(ms), Name: "ctl-a", HeartbeatInterval: 100 * time.Millisecond, ReplicaTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := dup.Ready(ctx); !errors.Is(err, ErrNameInUse) {
		t.Fatalf("Ready of a duplicate name: %v, want ErrNameInUse", err)
	}
	if n := dup.Stats().Heartbeats; n != 0 {
		t.Errorf("the duplicate wrote %d heartbeats", n)
	}
	if _, _, err := dup.Claim(ctx, 1, "h", "br-tun"); !errors.Is(err, ErrNameInUse) {
		t.Errorf("the duplicate's claim: %v, want ErrNameInUse", err)
	}
	// Once a is gone, the name is free (a restart).
	a.Close()
	again := openReplica(t, ms, "ctl-a", nil)
	if again.Stats().Heartbeats == 0 {
		waitFor(t, 5*time.Second, "the restarted replica beats", func() bool { return again.Stats().Heartbeats > 0 })
	}
}

// A MAC forgotten and learned again at once: the write that follows the
// delete lands even while the cache still holds the deleted row (its
// update finds nothing, so it inserts).
func TestClusterForgetThenLearn(t *testing.T) {
	ms := startCluster(t, 3)
	a := open(t, ms, "ctl-a", nil)
	b := open(t, ms, "ctl-b", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		e := ep(100, 100+i, "h1")
		e.Kind = KindLearned
		if err := a.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "a's cache has the row", func() bool { _, ok := a.Endpoint(e.Key); return ok })
		if err := a.deleteForgotten(ctx, []Endpoint{{Key: e.Key, Host: "h1"}}); err != nil {
			t.Fatal(err)
		}
		if err := a.Write(ctx, e); err != nil { // the cache may not have heard of the delete yet
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "a's cache has the row again", func() bool { _, ok := a.Endpoint(e.Key); return ok })
	}
	time.Sleep(200 * time.Millisecond)
	for i := range 20 {
		if _, ok := b.Endpoint(ep(100, 100+i, "h1").Key); !ok {
			t.Errorf("endpoint %d learned again after its delete is missing", i)
		}
	}
}

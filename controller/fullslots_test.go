package controller

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFullSlotsBound: however many ask at once, no more than n hold a slot,
// and everyone gets one in the end.
func TestFullSlotsBound(t *testing.T) {
	const n, askers = 3, 40
	f := newFullSlots(n)
	var inside, peak, done atomic.Int32
	var wg sync.WaitGroup
	for range askers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var busy atomic.Bool
			release, err := f.acquire(context.Background(), &busy)
			if err != nil {
				t.Error(err)
				return
			}
			cur := inside.Add(1)
			for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
			release()
			done.Add(1)
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > n || p < 1 {
		t.Errorf("%d held a slot at once, want at most %d", p, n)
	}
	if d := done.Load(); d != askers {
		t.Errorf("%d of %d got a slot", d, askers)
	}
	if w := f.waiting.Load(); w != 0 {
		t.Errorf("%d still counted as waiting", w)
	}
}

// TestFullSlotsCancel: a wait for a slot ends with its context, and marks
// the session busy only while it waits.
func TestFullSlotsCancel(t *testing.T) {
	f := newFullSlots(1)
	release, err := f.acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var busy atomic.Bool
	sawBusy := make(chan bool, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		sawBusy <- busy.Load()
	}()
	if _, err := f.acquire(ctx, &busy); err == nil {
		t.Fatal("acquired a slot that was held")
	}
	if !<-sawBusy {
		t.Error("not marked busy while waiting")
	}
	if busy.Load() {
		t.Error("still marked busy after the wait")
	}
	release()
	r2, err := f.acquire(context.Background(), &busy)
	if err != nil {
		t.Fatal(err)
	}
	r2()
}

// TestControllerFullReconcileSlotsEmulated: with one full-reconcile slot,
// every switch still gets exactly its flows, one full reconcile at a time.
func TestControllerFullReconcileSlotsEmulated(t *testing.T) {
	topo := parseTopo(t, testTopo)
	hosts := emulate(t, topo, nil)
	const nSwitches = 6
	srv, _ := emuServer(t, topo, hosts, ServerOptions{MaxFullReconciles: 1})
	eventually(t, 10*time.Second, "all switches synced", func() bool { return srv.synced(0, nSwitches) })
	checkEmulated(t, topo, hosts, srv.Server)
	if p := srv.full.peak.Load(); p != 1 {
		t.Errorf("%d full reconciles at once, want 1", p)
	}
}

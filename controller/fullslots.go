package controller

import (
	"context"
	"runtime"
	"sync/atomic"
)

// fullSlots bounds the full reconciles (and adoptions: both dump, compile
// and diff a whole switch) under way at once. A thousand switches
// connecting together would otherwise all dump and compile together, each
// too slowly to finish within ReconcileTimeout, and hold every dump in
// memory at once; in turn, they finish quickly and release the slot.
type fullSlots struct {
	sem     chan struct{}
	inUse   atomic.Int32
	peak    atomic.Int32 // the most slots ever held at once (tests)
	waiting atomic.Int32 // sessions waiting for a slot (tests)
}

// defaultFullSlots is 2×GOMAXPROCS: enough to keep the cores busy while
// some reconciles wait on their switch, few enough to finish quickly.
func defaultFullSlots() int { return 2 * runtime.GOMAXPROCS(0) }

func newFullSlots(n int) *fullSlots {
	return &fullSlots{sem: make(chan struct{}, max(n, 1))}
}

// acquire waits for a slot; the returned function gives it back. While it
// waits, busy (when not nil) is set, so that the keepalive does not count
// the controller's own backlog against the switch.
func (f *fullSlots) acquire(ctx context.Context, busy *atomic.Bool) (release func(), err error) {
	select {
	case f.sem <- struct{}{}:
	default:
		if busy != nil {
			busy.Store(true)
			defer busy.Store(false)
		}
		f.waiting.Add(1)
		defer f.waiting.Add(-1)
		select {
		case f.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n := f.inUse.Add(1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	return func() {
		f.inUse.Add(-1)
		<-f.sem
	}, nil
}

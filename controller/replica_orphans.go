package controller

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Orphaned claims: a Switch row naming this replica while this replica has
// no session to the switch. Nobody else claims a switch whose row names a
// live replica, so such a row leaves the switch without a master for as
// long as this replica lives. A session releases what it won when it ends
// (replicate); the sweep catches whatever that missed: a release that
// failed (directory failover), a row of this replica's previous run whose
// switch never came back to it. It runs on its own goroutine (serve) and
// owns its map.

const (
	// orphanSweepInterval: how often rows naming this replica are checked.
	orphanSweepInterval = time.Second
	// orphanGrace: how long a row must name this replica with no session
	// of its switch before it is released; switches of a restarted
	// replica reconnect within it.
	orphanGrace = 5 * time.Second
)

// orphans tracks since when each switch's row has named this replica with
// no session. Pure: time is passed in.
type orphans struct{ since map[uint64]time.Time }

// due reports whether dpid, orphaned now or not (orphan), has been so for
// orphanGrace; a switch no longer orphaned is forgotten.
func (o *orphans) due(dpid uint64, orphan bool, now time.Time) bool {
	if !orphan {
		delete(o.since, dpid)
		return false
	}
	if o.since == nil {
		o.since = map[uint64]time.Time{}
	}
	t, ok := o.since[dpid]
	if !ok {
		o.since[dpid] = now
		return false
	}
	return now.Sub(t) >= orphanGrace
}

// replicaUpkeep releases the orphaned rows of the topology's switches
// every orphanSweepInterval and re-syncs with the directory every
// AgeInterval (resyncPass), until ctx ends.
func (s *Server) replicaUpkeep(ctx context.Context) {
	if s.dir == nil {
		return
	}
	var o orphans
	var r resync
	// A first sweep at once, before the ticker starts: the grace counts
	// from the start, and the grace-th tick finds it due.
	if s.dir.Connected() {
		s.sweepOrphans(ctx, &o, time.Now())
	}
	tick := time.NewTicker(orphanSweepInterval)
	defer tick.Stop()
	age := time.NewTicker(s.o.AgeInterval)
	defer age.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-age.C:
			s.resyncDone(s.resyncPass(&r), now)
		case now := <-tick.C:
			if s.dir.Connected() { // else the rows cached may be stale
				s.sweepOrphans(ctx, &o, now)
			}
		}
	}
}

// sweepOrphans releases the rows naming this replica of switches it has
// had no session of for orphanGrace.
func (s *Server) sweepOrphans(ctx context.Context, o *orphans, now time.Time) {
	for _, id := range s.topo().ids {
		row, has := s.dir.Owner(id.dpid)
		s.mu.Lock()
		sess := s.sessions[id.dpid]
		s.mu.Unlock()
		orphan := has && row.Master == s.name && sess == nil
		if !o.due(id.dpid, orphan, now) {
			continue
		}
		delete(o.since, id.dpid) // next try after another grace
		s.releaseOrphan(ctx, id, row.Generation)
	}
}

// releaseOrphan releases dpid's row at generation gen (bounded).
func (s *Server) releaseOrphan(ctx context.Context, id switchID, gen uint64) {
	rctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	ok, err := s.dir.Release(rctx, id.dpid, gen)
	log := s.log.With(zap.String("host", id.host.Name), zap.String("bridge", id.bridge), zap.Uint64("generation", gen))
	switch {
	case err != nil:
		log.Warn("releasing a switch this replica has no connection to failed: retried", zap.Error(err))
	case ok:
		s.met.claims.WithLabelValues(claimReleased).Inc()
		log.Info("released a switch the directory named this replica master of, with no connection to it")
	}
}

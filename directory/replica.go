package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/directory/model"
	"go.uber.org/zap"
)

// beat is what liveness knows of one replica: its last heartbeat value and
// the reading of the liveness clock at which it was seen to change.
type beat struct {
	value int
	at    time.Duration
}

// liveness judges which replicas are alive from the heartbeats a monitor
// delivers. A pure state machine: time is passed in, and the Client calls
// it under its mu.
//
// A replica is dead when its heartbeat has not changed for the timeout on
// a clock that only runs while the directory is seen to work: it advances
// when this replica's own heartbeat is seen changing, by the time since
// the previous change but by at most half the timeout per round. So a
// directory that stalls or fails over (no heartbeat of anyone arrives)
// makes nobody look dead, and one slow round (a big transaction ahead of
// everyone's heartbeats) counts as half a timeout, not as its length.
//
// restart, at each (re)sync of a session, gives every other replica a
// fresh timeout plus as long as this replica was cut off (capped): a slow
// or lost leader cuts every replica's session alike, and the others may
// need as long to come back as this one did. Without it the replica that
// reconnected first judged the one that reconnected a second later dead
// (attack finding F3: a 10,000-row transaction stalled the leader 2.3 s).
type liveness struct {
	self    string
	timeout time.Duration
	beats   map[string]beat
	clock   time.Duration // the liveness clock
	last    time.Time     // when our own heartbeat last changed, or the last restart
}

func newLiveness(self string, timeout time.Duration) *liveness {
	return &liveness{self: self, timeout: timeout, beats: map[string]beat{}}
}

// observe records that name's heartbeat is value at now.
func (l *liveness) observe(name string, value int, now time.Time) {
	b, known := l.beats[name]
	if known && b.value == value {
		return
	}
	if name == l.self && now.After(l.last) {
		if !l.last.IsZero() {
			l.clock += min(now.Sub(l.last), l.timeout/2)
		}
		l.last = now
	}
	l.beats[name] = beat{value: value, at: l.clock}
}

// forget drops name (its row was deleted): it is no longer alive.
func (l *liveness) forget(name string) { delete(l.beats, name) }

// restart, at a (re)sync at now, gives every other replica a fresh timeout
// plus the time since cut, when our own heartbeat was last seen changing
// before the sync (at most three timeouts; nothing extra at the first
// sync, cut zero).
func (l *liveness) restart(now, cut time.Time) {
	var extra time.Duration
	if !cut.IsZero() && now.After(cut) {
		extra = min(now.Sub(cut), 3*l.timeout)
	}
	for name, b := range l.beats {
		if name != l.self {
			b.at = max(b.at, l.clock+extra)
			l.beats[name] = b
		}
	}
	l.last = now
}

// alive reports whether another replica, name, is alive. Our own name is
// the Client's business (alive while connected).
func (l *liveness) alive(name string) bool {
	b, known := l.beats[name]
	return known && l.clock-b.at <= l.timeout
}

// live lists the other replicas alive, sorted.
func (l *liveness) live() []string {
	var out []string
	for name := range l.beats {
		if name != l.self && l.alive(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Alive reports whether replica name's heartbeat was seen to change within
// ReplicaTimeout; this replica itself is alive while connected. The time
// is this client's liveness clock (see liveness), which only runs while
// this replica's own heartbeats come back, and restarts for everyone, with
// extra time, at each (re)sync of a session. So an outage, a stall or a
// failover of the directory makes nobody look dead; a replica that stops
// beating is dead about ReplicaTimeout + HeartbeatInterval after its last
// beat, and never before ReplicaTimeout of wall time.
func (c *Client) Alive(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == c.o.Name && name != "" {
		return c.connectedLocked()
	}
	return c.live.alive(name)
}

// LiveReplicas lists the live replicas' names, sorted, this one included
// while connected.
func (c *Client) LiveReplicas() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.live.live()
	if c.o.Name != "" && c.connectedLocked() {
		out = append(out, c.o.Name)
		slices.Sort(out)
	}
	return out
}

// putReplica records a monitored Replica row of the installed session s.
// Rows s delivers before it is installed are left to install, which lists
// them all: liveness must see the sync (restart) before them.
func (c *Client) putReplica(s *session, r *model.Replica) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.isDead() && c.sess == s {
		c.live.observe(r.Name, r.Heartbeat, time.Now())
	}
}

// removeReplica forgets a deleted Replica row of the installed session s.
func (c *Client) removeReplica(s *session, r *model.Replica) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.isDead() && c.sess == s {
		c.live.forget(r.Name)
	}
}

// heartbeat writes this replica's heartbeat every HeartbeatInterval while
// a session is up. It runs on its own goroutine with its own transactions,
// so a slow directory delays no learned endpoint beyond CallTimeout.
func (c *Client) heartbeat(ctx context.Context) {
	if c.o.Name == "" {
		close(c.checked)
		return
	}
	tick := time.NewTicker(c.o.HeartbeatInterval)
	defer tick.Stop()
	failing, checked := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.synced:
		}
		// The name is checked once, at the first sync, before this
		// replica's first beat can touch the row.
		err := errNoSession
		if !checked && c.isReady() {
			if !c.checkName(ctx) {
				return
			}
			checked = true
		}
		sent := time.Now()
		if checked {
			err = c.beat(ctx)
		}
		switch {
		case err == nil:
			c.beats.Add(1)
			c.lastBeat.Store(&sent)
			if failing {
				c.log.Info("directory heartbeat resumed")
			}
			failing = false
		case ctx.Err() != nil:
			return
		default:
			c.beatFails.Add(1)
			if !failing { // once per outage, not once per tick
				c.log.Warn("directory heartbeat failed", zap.Error(err))
			}
			failing = true
		}
	}
}

// errNoSession is a heartbeat skipped because no session is up.
var errNoSession = errors.New("no directory session")

// beat writes one heartbeat: +1 on our row (by its index) when the cache
// has it, else a new row; if another client inserted it meanwhile, the
// index refuses the insert and the next beat, seeing the row, mutates it.
func (c *Client) beat(ctx context.Context) error {
	c.mu.Lock()
	s := c.sess
	_, have := c.live.beats[c.o.Name]
	c.mu.Unlock()
	if s == nil || s.isDead() {
		return errNoSession
	}
	where := []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: c.o.Name}}
	var ops []ovsdb.Operation
	if have {
		ops = []ovsdb.Operation{
			{Op: ovsdb.OperationMutate, Table: model.ReplicaTable, Where: where,
				Mutations: []ovsdb.Mutation{{Column: "heartbeat", Mutator: ovsdb.MutateOperationAdd, Value: 1}}},
			{Op: ovsdb.OperationUpdate, Table: model.ReplicaTable, Where: where, Row: ovsdb.Row{"address": c.o.Address}},
		}
	} else {
		ops = []ovsdb.Operation{{Op: ovsdb.OperationInsert, Table: model.ReplicaTable,
			Row: ovsdb.Row{"name": c.o.Name, "address": c.o.Address, "heartbeat": 1}}}
	}
	_, err := c.commit(ctx, s, ops)
	return err
}

// ErrNameInUse: another replica with this client's name is alive (its
// heartbeat moves); this client writes nothing.
var ErrNameInUse = errors.New("replica name in use by a live replica")

// nameConflict is the error of a name found in use, nil otherwise.
func (c *Client) nameConflict() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conflict
}

// checkName, called once the first session is synced: when the directory
// already has a Replica row of this name, it watches its heartbeat for a heartbeat
// timeout (plus an interval) before this client writes any: a heartbeat
// that moves meanwhile is another live replica of the same name, and two
// would take each other's switches for their own. A row that stands still
// is this replica's previous run. false: do not beat (conflict, or ctx
// ended).
func (c *Client) checkName(ctx context.Context) bool {
	defer close(c.checked)
	c.mu.Lock()
	before, have := c.live.beats[c.o.Name]
	c.mu.Unlock()
	if !have {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(c.o.ReplicaTimeout + c.o.HeartbeatInterval):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now, ok := c.live.beats[c.o.Name]; ok && now.value != before.value {
		c.conflict = fmt.Errorf("replica %q: its heartbeat in the directory moved from %d to %d while this one was silent: %w",
			c.o.Name, before.value, now.value, ErrNameInUse)
		c.log.Error("another live replica has this name: not taking part", zap.Error(c.conflict))
		return false
	}
	return true
}

// isReady reports whether the first session was synced.
func (c *Client) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// LastHeartbeat is when this replica's last committed heartbeat was sent
// (zero before the first): no other replica saw it change earlier, so none
// judges this one dead before LastHeartbeat + ReplicaTimeout.
func (c *Client) LastHeartbeat() time.Time {
	if t := c.lastBeat.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// LeaseUntil is when what this replica holds without a fence (a hardware
// VTEP's claim) must stop being used unless a heartbeat commits meanwhile:
// LastHeartbeat plus three quarters of ReplicaTimeout, the last quarter
// left for the holder to stop before another replica may take over. Zero
// before the first heartbeat.
func (c *Client) LeaseUntil() time.Time {
	last := c.LastHeartbeat()
	if last.IsZero() {
		return last
	}
	return last.Add(c.o.ReplicaTimeout * 3 / 4)
}

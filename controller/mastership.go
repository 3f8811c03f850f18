package controller

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// Mastership of a switch among controller replicas. After the handshake a
// replica's session asks the switch for the SLAVE role, then loops: it
// claims the switch in the directory when nobody owns it, when the
// directory names this replica, or when the named master is not alive; a
// won claim becomes a MASTER role request with the claim's generation, and
// only then does the session program the switch (serve). A Switch row naming
// another replica, or the switch's role status saying another controller
// became master, stops the programming at once (demote); the session is a
// slave again.
//
// Goroutines: the session's goroutine runs the loop and the master part;
// the directory's goroutine (switchOwnerChanged) and the session's reader
// (readAsync, role status) only call demote and poke.

// Timing of mastership.
const (
	// masterCheckInterval: how often a slave re-checks whether the
	// master is alive (and a master whether the directory still names it).
	masterCheckInterval = 250 * time.Millisecond
	// claimDelay: how long a replica the rendezvous hash does not prefer
	// waits before claiming, so the preferred one usually wins without a
	// race and switches spread over the replicas.
	claimDelay = 300 * time.Millisecond
	// claimTimeout bounds one claim transaction.
	claimTimeout = 3 * time.Second
	// roleTimeout bounds one role request.
	roleTimeout = 5 * time.Second
	// releaseTimeout bounds releasing a switch whose session ended.
	releaseTimeout = time.Second
	// releaseHoldoff: how long a replica that lost its connection to a
	// switch it mastered (and released it) leaves the switch to the
	// replicas that kept theirs, even when the hash prefers it: its
	// link to the switch just failed.
	releaseHoldoff = 2 * time.Second
)

// releaseLog records when this replica released switches whose
// connection it lost. Sessions of any switch call it; mu guards it.
type releaseLog struct {
	mu sync.Mutex
	at map[uint64]time.Time
}

func (r *releaseLog) add(dpid uint64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = map[uint64]time.Time{}
	}
	for d, t := range r.at { // bounded by the switches released lately
		if now.Sub(t) > releaseHoldoff {
			delete(r.at, d)
		}
	}
	r.at[dpid] = now
}

// holding reports whether dpid was released less than releaseHoldoff ago.
func (r *releaseLog) holding(dpid uint64, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.at[dpid]
	return ok && now.Sub(t) < releaseHoldoff
}

// Claim outcomes, the "result" label of ovs_vxctl_controller_claims_total.
const (
	claimWon    = "won"
	claimLost   = "lost"
	claimFailed = "failed"
	// claimReleased: a mastership given up when its session ended.
	claimReleased = "released"
	// claimBackedOff: claims held back after the switch demoted this
	// replica on another controller's behalf (claimBackoff).
	claimBackedOff = "backed_off"
)

// mastership is a session's role among the replicas.
type mastership struct {
	kick chan struct{} // capacity 1: re-examine the mastership now

	mu     sync.Mutex
	master bool
	armed  bool               // a MASTER request is on its way: demote disarms
	cancel context.CancelFunc // ends the master part (serve)
	why    string             // why it was demoted, for the log line
	// bySwitch: the last demotion was the switch's role status, not the
	// directory's doing (claimBackoff).
	bySwitch bool
}

func newMastership() *mastership { return &mastership{kick: make(chan struct{}, 1)} }

// poke asks the session's loop to re-examine the mastership.
func (m *mastership) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// demote stops the master part, if it runs; why is logged once by the
// session when it is a slave again.
func (m *mastership) demote(why string) { m.demoteBy(why, false) }

// demoteBy is demote; bySwitch: the switch's role status asked for it.
func (m *mastership) demoteBy(why string, bySwitch bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.armed {
		m.armed, m.why, m.bySwitch = false, why, bySwitch
	}
	if !m.master {
		return
	}
	m.master, m.why, m.bySwitch = false, why, bySwitch
	if m.cancel != nil {
		m.cancel()
	}
}

// arm marks a MASTER role request on its way; disarm withdraws it.
func (m *mastership) arm() {
	m.mu.Lock()
	m.armed, m.why, m.bySwitch = true, "", false
	m.mu.Unlock()
}

func (m *mastership) disarm() {
	m.mu.Lock()
	m.armed = false
	m.mu.Unlock()
}

// isMaster reports whether the session may program the switch and learn
// from it.
func (m *mastership) isMaster() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.master
}

// claimWanted says whether replica self should claim a switch whose row is
// row (has: there is one): when there is none, when it names self or
// nobody (released), or when its master is not alive.
func claimWanted(self string, row SwitchOwner, has bool, alive func(string) bool) bool {
	return !has || row.Master == self || row.Master == "" || !alive(row.Master)
}

// preferredReplica is the replica of live (plus self) that claims dpid
// first: the highest rendezvous hash of (name, dpid), so that every replica
// agrees on it and switches spread evenly.
func preferredReplica(dpid uint64, live []string, self string) string {
	best, bestScore := self, rendezvous(self, dpid)
	for _, n := range live {
		if sc := rendezvous(n, dpid); sc > bestScore || (sc == bestScore && n < best) {
			best, bestScore = n, sc
		}
	}
	return best
}

func rendezvous(name string, dpid uint64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], dpid)
	h.Write(b[:])
	h.Write([]byte(name))
	// FNV's last bytes reach only its low bits: mix (splitmix64's
	// finalizer) so that names differing in one letter compare fairly.
	x := h.Sum64()
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// claimTimer decides when a replica claims a switch that looks claimable:
// at once when it is preferred (or already named), after claimDelay
// otherwise, counted from when the switch first looked claimable. Pure: time
// is passed in.
type claimTimer struct{ since time.Time }

// due reports whether to claim now; wanted is claimWanted's answer, first
// whether this replica goes first.
func (c *claimTimer) due(now time.Time, wanted, first bool) bool {
	if !wanted {
		c.since = time.Time{}
		return false
	}
	if c.since.IsZero() {
		c.since = now
	}
	return first || now.Sub(c.since) >= claimDelay
}

// Backoff of claims after the switch itself demoted this replica while the
// directory still names it: another controller, not a replica, is master
// (or keeps taking it). Claiming again at once would climb the generation
// every check and redo adopt + full reconcile each time.
const (
	backoffFirst = time.Second
	backoffMax   = 30 * time.Second
)

// claimBackoff holds claims back after such demotions, doubling from
// backoffFirst to backoffMax; a master part that lasted backoffMax resets
// it. Pure: time is passed in.
type claimBackoff struct {
	delay time.Duration
	until time.Time
}

// demoted records a demotion by the switch at now; it returns the wait.
func (b *claimBackoff) demoted(now time.Time) time.Duration {
	b.delay = min(max(2*b.delay, backoffFirst), backoffMax)
	b.until = now.Add(b.delay)
	return b.delay
}

// holding reports whether claims wait at now.
func (b *claimBackoff) holding(now time.Time) bool { return now.Before(b.until) }

// mastered records a master part from start to now: a long one resets.
func (b *claimBackoff) mastered(start, now time.Time) {
	if now.Sub(start) >= backoffMax {
		*b = claimBackoff{}
	}
}

// replicate is a session's life as one of several replicas: slave first,
// master while its claim holds, until ctx ends.
func (s *session) replicate(ctx context.Context) {
	if err := s.becomeSlave(ctx); err != nil {
		if ctx.Err() == nil && s.conn.Err() == nil {
			s.close(fmt.Sprintf("asking for the slave role: %v", err))
		}
		return
	}
	s.srv.roleChanged(s, ofcodec.RoleSlave, 0, "connected")
	tick := time.NewTicker(masterCheckInterval)
	defer tick.Stop()
	// held: the last generation this session won in the directory. A row
	// naming this live replica is never claimed by another, so every way
	// out releases it, whether the switch ever granted the role or not.
	var held uint64
	defer func() {
		if held != 0 {
			s.release(held)
		}
	}()
	var timer claimTimer
	var backoff claimBackoff
	for {
		var gen uint64
		ok := false
		if !backoff.holding(time.Now()) {
			gen, ok = s.tryClaim(ctx, &timer, time.Now())
		}
		if gen != 0 {
			held = gen
		}
		if !ok && gen != 0 && (ctx.Err() != nil || s.conn.Err() != nil) {
			return // won, but the connection is gone: the defer releases it
		}
		if ok {
			start := time.Now()
			s.runMaster(ctx, gen)
			if ctx.Err() != nil || s.conn.Err() != nil {
				return
			}
			s.backOff(&backoff, start)
			timer = claimTimer{}
			if err := s.becomeSlave(ctx); err != nil && ctx.Err() == nil {
				s.log.Debug("asking for the slave role again", zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.rep.kick:
		}
	}
}

// backOff holds the next claim back when the master part that started at
// start ended by the switch's role status, the directory still naming this
// replica; logged once per backoff.
func (s *session) backOff(b *claimBackoff, start time.Time) {
	now := time.Now()
	b.mastered(start, now)
	s.rep.mu.Lock()
	bySwitch := s.rep.bySwitch
	s.rep.mu.Unlock()
	row, has := s.srv.dir.Owner(s.id.dpid)
	if !bySwitch || !has || row.Master != s.srv.name {
		return
	}
	d := b.demoted(now)
	s.srv.met.claims.WithLabelValues(claimBackedOff).Inc()
	log := s.log.Debug
	if d == backoffFirst { // once per series, not once per doubling
		log = s.log.Warn
	}
	log("the switch gave the master role to a controller the directory does not name: claiming again later",
		zap.Duration("wait", d), zap.Uint64("generation", row.Generation))
}

// tryClaim claims the switch when it is due, and on a won claim asks the
// switch for the MASTER role; ok reports that the switch made this replica
// its master, with generation gen. A claim won but refused by the switch
// returns its generation with ok false: the caller must release it if the
// session ends.
func (s *session) tryClaim(ctx context.Context, timer *claimTimer, now time.Time) (gen uint64, ok bool) {
	srv, dir := s.srv, s.srv.dir
	row, has := dir.Owner(s.id.dpid)
	mine := has && row.Master == srv.name
	wanted := claimWanted(srv.name, row, has, dir.Alive) && (mine || now.Sub(srv.joined) >= joinSettle)
	if wanted && has && row.Master == "" && srv.gaveUp.holding(s.id.dpid, now) && len(dir.LiveReplicas()) > 1 {
		return 0, false
	}
	// Asked only of a claimable switch: a thousand sessions tick.
	first := wanted && (mine || preferredReplica(s.id.dpid, dir.LiveReplicas(), srv.name) == srv.name)
	if !timer.due(now, wanted, first) || !dir.Connected() {
		return 0, false
	}
	cctx, cancel := context.WithTimeout(ctx, claimTimeout)
	own, won, err := dir.ClaimAbove(cctx, s.id.dpid, s.id.host.Name, s.id.bridge, s.minGeneration(ctx, row, has))
	cancel()
	switch {
	case err != nil:
		srv.met.claims.WithLabelValues(claimFailed).Inc()
		if errors.Is(err, directory.ErrGenerationRange) && srv.logOnce.allow(fmt.Sprintf("claim-range/%016x", s.id.dpid), now) {
			// A switch (or row) with a generation near 2^63: not ours
			// to count on; a person must reset it.
			s.log.Warn("cannot claim the switch: its generation is out of range", zap.Error(err))
		} else {
			s.log.Debug("claiming the switch in the directory failed", zap.Error(err))
		}
		return 0, false
	case !won:
		srv.met.claims.WithLabelValues(claimLost).Inc()
		s.log.Debug("claim lost", zap.String("master", own.Master), zap.Uint64("generation", own.Generation))
		return 0, false
	}
	srv.met.claims.WithLabelValues(claimWon).Inc()
	// Armed before the request: a role status arriving between the
	// switch's grant and runMaster is not lost (demote disarms).
	s.rep.arm()
	if err := s.requestRole(ctx, ofcodec.RoleMaster, own.Generation); err != nil {
		s.rep.disarm()
		if ctx.Err() == nil && s.conn.Err() == nil && srv.logOnce.allow(fmt.Sprintf("master-refused/%016x", s.id.dpid), now) {
			s.log.Warn("the switch refused the master role this replica claimed", zap.Uint64("generation", own.Generation), zap.Error(err))
		}
		return own.Generation, false
	}
	return own.Generation, true
}

// minGeneration is the least generation a claim needs for the switch to
// accept it: above the one the switch remembers when that is ahead of the
// directory's row (the directory was rebuilt while the switch kept
// running, or the row was lost); 0 otherwise, or when the switch does not
// say.
func (s *session) minGeneration(ctx context.Context, row SwitchOwner, has bool) uint64 {
	cur, err := s.roleRequest(ctx, ofcodec.RoleNoChange, 0)
	if err != nil || cur.GenerationID == ofcodec.GenerationIDNone {
		return 0
	}
	if (has && !ofcodec.GenerationStale(row.Generation, cur.GenerationID)) || (!has && cur.GenerationID == 0) {
		return 0 // not ahead: a fresh switch says 0
	}
	s.log.Info("the switch remembers a generation ahead of the directory's: claiming above it",
		zap.Uint64("switch_generation", cur.GenerationID), zap.Uint64("directory_generation", row.Generation), zap.Bool("row", has))
	return cur.GenerationID + 1
}

// release gives the switch up in the directory after the session ended
// holding generation gen, so that a replica still connected to it claims
// it: this replica stays alive, so nobody else ever would. Bounded; a
// failed release is retried by the orphan sweep (sweepOrphans). A newer
// session of this replica for the switch keeps the row: it may hold gen.
func (s *session) release(gen uint64) {
	s.srv.mu.Lock()
	cur := s.srv.sessions[s.id.dpid]
	s.srv.mu.Unlock()
	if cur != nil && cur != s {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	ok, err := s.srv.dir.Release(ctx, s.id.dpid, gen)
	switch {
	case err != nil:
		s.log.Warn("releasing the switch in the directory failed: retried until it succeeds or the row changes", zap.Error(err))
	case ok:
		s.srv.gaveUp.add(s.id.dpid, time.Now())
		s.srv.met.claims.WithLabelValues(claimReleased).Inc()
		s.log.Info("switch released in the directory", zap.Uint64("generation", gen))
	}
}

// runMaster programs the switch as its master until demoted or ctx ends.
func (s *session) runMaster(ctx context.Context, gen uint64) {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := s.rep
	m.mu.Lock()
	if !m.armed { // demoted between the switch's grant and now
		why := m.why
		m.mu.Unlock()
		s.srv.roleChanged(s, ofcodec.RoleSlave, gen, why)
		return
	}
	m.master, m.armed, m.cancel, m.why = true, false, cancel, ""
	m.mu.Unlock()
	s.srv.roleChanged(s, ofcodec.RoleMaster, gen, "claimed in the directory")
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watchOwner(mctx, gen)
	}()
	s.serve(mctx)
	m.mu.Lock()
	why := m.why
	m.master, m.cancel = false, nil
	m.mu.Unlock()
	cancel()
	<-done
	// The next master part starts afresh: adopt, then reconcile in full.
	s.ready.Store(false)
	s.cache, s.nextCache = nil, nil
	if ctx.Err() == nil && s.conn.Err() == nil {
		s.srv.roleChanged(s, ofcodec.RoleSlave, gen, why)
	}
}

// watchOwner demotes the session when the directory's row names another
// master (a missed or late OnSwitch) or a newer generation; while the
// directory is unreachable the role stays as it is.
func (s *session) watchOwner(ctx context.Context, gen uint64) {
	tick := time.NewTicker(masterCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		row, has := s.srv.dir.Owner(s.id.dpid)
		switch {
		case !has || !s.srv.dir.Connected():
		case row.Master != s.srv.name:
			s.rep.demote(fmt.Sprintf("the directory names replica %s master (generation %d)", row.Master, row.Generation))
		case ofcodec.GenerationStale(gen, row.Generation):
			s.rep.demote(fmt.Sprintf("the directory holds a newer generation %d", row.Generation))
		}
	}
}

// becomeSlave asks the switch for the SLAVE role, with the generation ID
// the switch holds (read first), so that the request is never stale; one
// that races with another replica's master request is retried.
func (s *session) becomeSlave(ctx context.Context) error {
	var err error
	for range 3 {
		var cur RoleReply
		if cur, err = s.roleRequest(ctx, ofcodec.RoleNoChange, 0); err != nil {
			return err
		}
		gen := cur.GenerationID
		if gen == ofcodec.GenerationIDNone {
			gen = 0
			if row, has := s.srv.dir.Owner(s.id.dpid); has {
				gen = row.Generation
			}
		}
		if err = s.requestRole(ctx, ofcodec.RoleSlave, gen); !errors.Is(err, errRoleStale) {
			return err
		}
	}
	return err
}

// errRoleStale: the switch refused a role request's generation ID as older
// than one it has seen.
var errRoleStale = errors.New("generation ID is stale")

// RoleReply is a switch's answer to a role request.
type RoleReply = ofcodec.RoleMessage

// requestRole asks the switch for role with generation gen and checks that
// the switch granted it.
func (s *session) requestRole(ctx context.Context, role ofcodec.Role, gen uint64) error {
	rep, err := s.roleRequest(ctx, role, gen)
	if err != nil {
		return err
	}
	if rep.Role != role {
		return fmt.Errorf("asking for the %s role: the switch answered %s", role, rep.Role)
	}
	return nil
}

// roleRequest sends one role request and decodes the reply.
func (s *session) roleRequest(ctx context.Context, role ofcodec.Role, gen uint64) (RoleReply, error) {
	ctx, cancel := context.WithTimeout(ctx, roleTimeout)
	defer cancel()
	msg, err := s.conn.Request(ctx, ofcodec.NewRoleRequest(role, gen))
	var oe *ofconn.Error
	if errors.As(err, &oe) && oe.Type == ofcodec.ErrorTypeRoleRequestFailed && oe.Code == ofcodec.RoleErrorStale {
		return RoleReply{}, fmt.Errorf("asking for the %s role with generation %d: %w", role, gen, errRoleStale)
	}
	if err != nil {
		return RoleReply{}, fmt.Errorf("asking for the %s role with generation %d: %w", role, gen, err)
	}
	rep, err := ofcodec.DecodeRole(msg.Raw)
	if err != nil {
		return RoleReply{}, fmt.Errorf("asking for the %s role: %w", role, err)
	}
	return rep, nil
}

// roleStatus handles the switch's role status (readAsync): another
// controller became master, so this one stops programming at once.
func (s *session) roleStatus(msg ofconn.Message) {
	st, ok := ofcodec.DecodeRoleStatus(msg.Raw)
	if !ok || s.rep == nil || st.Role == ofcodec.RoleMaster {
		return
	}
	s.rep.demoteBy(fmt.Sprintf("the switch made this connection %s (another controller became master, generation %d)", st.Role, st.GenerationID), true)
	s.rep.poke()
}

// roleChanged logs and counts a session's change of role.
func (s *Server) roleChanged(sess *session, role ofcodec.Role, gen uint64, why string) {
	s.met.roleChanges.WithLabelValues(role.String()).Inc()
	sess.log.Info("role changed", zap.String("role", role.String()), zap.Uint64("generation", gen), zap.String("why", why))
}

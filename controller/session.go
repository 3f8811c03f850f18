package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// errNoAdvertisement: br-tun holds no (or an incomplete) allocation
// advertisement, so the controller cannot know its local VLANs yet: apply
// has not run on the host, or not since the topology changed.
var errNoAdvertisement = errors.New("the allocation advertisement (table 250) is missing or incomplete: has `ovs-vxctl apply` run on the host with this topology?")

// Backoff of reconciles that failed, and of waiting for an advertisement
// (apply usually installs it moments after the switch connects: poll often).
const (
	retryMin      = 100 * time.Millisecond
	retryMax      = 5 * time.Second
	setupRetryMax = time.Second
)

// session is one connected, identified switch. Its goroutine (run) owns the
// connection and reconciles whenever the switch is marked dirty; marks
// coalesce (at most one pending), so nothing queues up behind a slow switch
// and no other switch ever waits for it.
type session struct {
	srv    *Server
	id     switchID
	sw     *openflow.Switch
	conn   *ofconn.Conn
	remote string
	log    *zap.Logger
	bucket *tokenBucket
	dirty  chan struct{} // capacity 1: the coalesced "reconcile again"
	ready  atomic.Bool   // br-tun: adopted and reading activity
	// notReady: br-tun is held back for want of its allocation (counted
	// in the switches_not_ready gauge while set).
	notReady atomic.Bool
	// queued: waiting for a full-reconcile slot (fullSlots); the
	// keepalive does not count those waits against the switch.
	queued atomic.Bool
	// rep is the session's role among controller replicas (mastership.go);
	// nil without a directory: the session always programs the switch.
	rep *mastership
	// met: this switch's metric series, looked up once (fanout.go).
	met switchMetrics

	closeReason atomic.Value // string
	lastWarn    string       // the last reconcile error logged at warn level
	// cache: what br-tun holds after the last successful reconcile, for
	// incremental updates (nil: reconcile in full). next is the one the
	// reconcile under way would leave. Only run's goroutine uses them.
	cache, nextCache *flowCache
	lastFull         time.Time     // the last successful full reconcile
	repairAfter      time.Duration // RepairInterval with this session's jitter

	mu           sync.Mutex
	alloc        topology.Allocation
	vlanVNI      map[uint16]uint32
	pendingSince time.Time // when the oldest change not yet reconciled happened
	fullPending  bool      // a full reconcile was asked for
	knowPending  bool      // the knowledge changed (an incremental update may do)
	state        SwitchState
}

func newSession(srv *Server, id switchID, conn *ofconn.Conn, remote string) *session {
	log := srv.log.With(zap.String("dpid", fmt.Sprintf("%016x", id.dpid)), zap.String("remote", remote),
		zap.String("host", id.host.Name), zap.String("bridge", id.bridge))
	var rep *mastership
	if srv.dir != nil {
		rep = newMastership()
	}
	return &session{
		srv: srv, id: id, conn: conn, remote: remote, log: log, rep: rep, met: newSwitchMetrics(srv.met, id),
		sw:     openflow.New(conn, log),
		bucket: newTokenBucket(srv.o.PacketInRate, srv.o.PacketInBurst),
		dirty:  make(chan struct{}, 1),
		// The jitter keeps a thousand switches connected together from
		// being repaired together, every time.
		repairAfter: srv.o.RepairInterval/2 + rand.N(srv.o.RepairInterval),
		state:       SwitchState{Host: id.host.Name, Bridge: id.bridge, DatapathID: id.dpid, Remote: remote},
	}
}

func (s *session) tun() bool { return s.id.bridge == topology.BridgeTun }

// close ends the connection, recording why (the first reason wins).
func (s *session) close(reason string) {
	s.closeReason.CompareAndSwap(nil, reason)
	s.conn.Close()
}

func (s *session) snapshot() SwitchState {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if s.rep != nil {
		st.Role = ofcodec.RoleSlave.String()
		if s.rep.isMaster() {
			st.Role = ofcodec.RoleMaster.String()
		}
	}
	return st
}

// markDirty asks for a full reconcile; when is the time of the change.
func (s *session) markDirty(when time.Time) { s.mark(when, true) }

// markChanged says the knowledge changed: only the changed endpoints' flows
// need updating, unless a full reconcile is pending anyway.
func (s *session) markChanged(when time.Time) { s.mark(when, false) }

func (s *session) mark(when time.Time, full bool) {
	s.mu.Lock()
	if s.pendingSince.IsZero() || when.Before(s.pendingSince) {
		s.pendingSince = when
	}
	if full {
		s.fullPending = true
	} else {
		s.knowPending = true
	}
	s.mu.Unlock()
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

func (s *session) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := s.srv.met
	m.connected.WithLabelValues(s.id.bridge).Inc()
	s.log.Info("switch connected")
	defer func() {
		m.connected.WithLabelValues(s.id.bridge).Dec()
		s.setNotReady(false)
		reason := "connection closed"
		if r, ok := s.closeReason.Load().(string); ok {
			reason = r
		} else if err := s.conn.Err(); err != nil {
			reason = err.Error()
		}
		s.log.Info("switch disconnected", zap.String("reason", reason))
	}()
	// ctx ends with the connection too: what runs under it waits on
	// ctx.Done() alone.
	go func() {
		select {
		case <-ctx.Done():
			s.close("controller stopping")
		case <-s.conn.Done():
			cancel()
		}
	}()
	go s.keepalive(ctx)
	go s.readAsync()
	if s.rep != nil {
		s.replicate(ctx)
		return
	}
	s.serve(ctx)
}

// serve programs the switch, as its only controller or as the replica that
// is its master, until ctx ends: adopt br-tun's flows, then reconcile.
func (s *session) serve(ctx context.Context) {
	if s.tun() {
		s.srv.know.Touch(s.id.host.Name, time.Now())
		if !s.setup(ctx) {
			return
		}
	}
	// Hold the first reconcile until every switch had the chance to hand
	// over its flows: entries towards a host not yet back must not be
	// deleted by a controller that has not seen them yet.
	select {
	case <-s.srv.released:
	case <-ctx.Done():
		return
	}
	s.reconcileLoop(ctx)
}

// reconcileLoop reconciles at once, then whenever the switch is marked dirty,
// after a failure (with backoff) and every AgeInterval, until ctx ends.
func (s *session) reconcileLoop(ctx context.Context) {
	s.markDirty(time.Now())
	// The first tick comes after a random part of AgeInterval, then one
	// every AgeInterval: a thousand switches connected together would
	// otherwise read their activity together, every time, and delay the
	// updates that land then.
	tick := time.NewTimer(rand.N(s.srv.o.AgeInterval) + time.Millisecond)
	defer tick.Stop()
	var retry <-chan time.Time
	backoff := retryMin
	attempt := func() {
		if err := s.reconcile(ctx); err != nil {
			if ctx.Err() != nil || s.conn.Err() != nil {
				return
			}
			retry = time.After(backoff)
			backoff = min(2*backoff, retryMax)
			return
		}
		retry, backoff = nil, retryMin
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
			attempt()
		case <-retry:
			retry = nil
			attempt()
		case <-tick.C:
			tick.Reset(s.srv.o.AgeInterval)
			// Read activity, then reconcile: that re-reads the
			// advertisement (an apply may have added a network) and
			// repairs flows changed behind the controller's back.
			if s.tun() {
				if err := s.readActivity(ctx); err != nil {
					s.log.Debug("reading activity", zap.Error(err))
				}
			}
			// A switch kept up to date incrementally is repaired less
			// often: a full reconcile of each of a thousand switches
			// every AgeInterval would keep the controller busy.
			if retry == nil && (s.cache == nil || time.Since(s.lastFull) >= s.repairAfter) {
				attempt()
			}
		}
	}
}

// setup reads br-tun's allocation and adopts the flows a previous controller
// left, retrying with backoff while the advertisement is missing. A switch
// held back is a warning once (again only if the reason changes), not one
// per retry. It returns false when the connection or ctx ended first.
func (s *session) setup(ctx context.Context) bool {
	backoff := retryMin
	start := time.Now()
	warned := ""
	for {
		err := s.setupOnce(ctx)
		if err == nil {
			if warned != "" {
				s.log.Info("switch ready", zap.Duration("after", time.Since(start)))
			}
			s.ready.Store(true)
			s.srv.adoptedHost(s.id.host.Name)
			return true
		}
		if ctx.Err() != nil || s.conn.Err() != nil {
			return false
		}
		if msg := err.Error(); msg != warned {
			s.log.Warn("switch not ready, retrying until it is", zap.Error(err))
			warned = msg
		} else {
			s.log.Debug("switch still not ready", zap.Error(err))
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(2*backoff, setupRetryMax)
	}
}

// setupOnce reads the allocation and adopts, holding a full-reconcile slot:
// adopting dumps the whole switch too.
func (s *session) setupOnce(ctx context.Context) error {
	release, err := s.srv.full.acquire(ctx, &s.queued)
	if err != nil {
		return fmt.Errorf("waiting for a full reconcile slot: %w", err)
	}
	defer release()
	if err := s.refreshAlloc(ctx); err != nil {
		return err
	}
	return s.adopt(ctx)
}

// refreshAlloc reads the host's allocation back from br-tun: local VLANs
// from the advertisement flows, tunnel ports from the port descriptions.
func (s *session) refreshAlloc(ctx context.Context) error {
	if err := s.checkServed(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.srv.o.ReconcileTimeout)
	defer cancel()
	adv, err := s.sw.Dump(ctx, flows.CookieAllocation, flows.CookieOwnerMask)
	if err != nil {
		return fmt.Errorf("reading the allocation advertisement: %w", err)
	}
	ports, err := s.sw.Ports(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]uint32, len(ports))
	for _, p := range ports {
		byName[p.Name] = p.No
	}
	alloc := flows.AllocationFromFlows(adv, byName)
	if t, h := s.topo(); len(alloc.LocalVLAN) == 0 && len(t.NetworksOn(h)) > 0 {
		// A switch that lost every flow (ovs-vswitchd restarted) lost the
		// advertisement too. The local VLANs live on in OVSDB (the ports'
		// tags), so the ones read before are still right: put them back
		// rather than wait for the next apply (realloc.go).
		vlans, err := s.rebuildVLANs(ctx, byName)
		if err != nil {
			if errors.Is(err, errNoAdvertisement) {
				s.setNotReady(true)
			}
			return err
		}
		alloc.LocalVLAN = vlans
	}
	if err := s.checkAlloc(alloc); err != nil {
		s.setNotReady(true)
		return err
	}
	s.setNotReady(false)
	s.srv.rememberAlloc(s.id.host.Name, alloc)
	s.srv.mem.keep(s.id.host.Name, alloc.LocalVLAN, time.Now())
	vlanVNI := make(map[uint16]uint32, len(alloc.LocalVLAN))
	for vni, vlan := range alloc.LocalVLAN {
		vlanVNI[vlan] = vni
	}
	s.mu.Lock()
	if !alloc.Equal(s.alloc) && s.alloc.LocalVLAN != nil {
		s.log.Info("allocation changed", zap.Any("local_vlans", alloc.LocalVLAN), zap.Any("tunnel_ports", alloc.TunnelOFPort))
	}
	s.alloc, s.vlanVNI = alloc, vlanVNI
	s.mu.Unlock()
	return nil
}

// checkAlloc reports what the topology needs that alloc lacks.
func (s *session) checkAlloc(alloc topology.Allocation) error {
	t, h := s.topo()
	if missing := flows.AllocationLacks(t, h, alloc); len(missing) > 0 {
		return fmt.Errorf("%w (lacks %s)", errNoAdvertisement, strings.Join(missing, ", "))
	}
	return nil
}

func (s *session) currentAlloc() (topology.Allocation, map[uint16]uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alloc, s.vlanVNI
}

// adopt reads the controller flows br-tun already has and hands them to the
// knowledge: known-source flows say which MACs are on this host, unicast
// entries and ARP responders what this host was told about the others.
func (s *session) adopt(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.srv.o.ReconcileTimeout)
	defer cancel()
	fl, err := s.sw.Dump(ctx, flows.CookieController, flows.CookieOwnerMask)
	if err != nil {
		return fmt.Errorf("reading the flows to adopt: %w", err)
	}
	alloc, _ := s.currentAlloc()
	host := s.id.host.Name
	local, remote := adoptable(flows.EndpointsFromFlows(fl, host, alloc), host)
	// Only controller-mode hosts report and age their MACs, and table 2
	// reports those of unmanaged peers: an entry towards any other host is
	// declared (and known) or stale.
	remote = slices.DeleteFunc(remote, func(e flows.Endpoint) bool {
		if e.Host == host || slices.Contains(s.srv.topo().tunHosts, e.Host) {
			return false
		}
		t, _ := s.topo()
		h := t.Host(e.Host)
		return h == nil || h.Managed
	})
	ev := s.srv.know.Adopt(host, local, remote, time.Now())
	if len(ev) > 0 {
		s.log.Info("adopted what the switch held", zap.Int("changes", len(ev)), zap.Int("local_macs", len(local)), zap.Int("remote_macs", len(remote)))
	}
	s.srv.changed(ev, time.Now())
	// The MACs this host's own flows vouch for are news to the other
	// replicas too (a directory that started empty).
	s.srv.publishEvents(slices.DeleteFunc(ev, func(e Event) bool { return e.Host != host }))
	return nil
}

// adoptable splits the endpoints read back from host's flows
// (flows.EndpointsFromFlows) into what Knowledge.Adopt takes: the keys of
// the host's own MACs (local), and the endpoints on peers plus the host's
// own (MAC, IP) pairs (remote).
func adoptable(eps []flows.Endpoint, host string) (local []MACKey, remote []flows.Endpoint) {
	for _, e := range eps {
		if e.Host != host {
			remote = append(remote, e)
			continue
		}
		if k, ok := KeyOf(e.VNI, e.MAC); ok {
			local = append(local, k)
		}
		if len(e.IPs) > 0 {
			remote = append(remote, e)
		}
	}
	return local, remote
}

// reconcile makes the switch's flows what the topology and the knowledge
// say, in one bundle: incrementally when only the knowledge changed since a
// reconcile that left a cache, in full otherwise or when the incremental
// update cannot be sure of its answer.
//
// A full reconcile waits for a slot (fullSlots) first; ReconcileTimeout
// counts from when it has one.
func (s *session) reconcile(ctx context.Context) error {
	pending, fast := s.takePending()
	if fast {
		fctx, cancel := context.WithTimeout(ctx, s.srv.o.ReconcileTimeout)
		done, err := s.reconcileFast(fctx, pending)
		cancel()
		if done {
			return err
		}
	}
	release, err := s.srv.full.acquire(ctx, &s.queued)
	if err != nil {
		s.restorePending(pending)
		return fmt.Errorf("waiting for a full reconcile slot: %w", err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, s.srv.o.ReconcileTimeout)
	defer cancel()
	return s.reconcileFull(ctx, pending)
}

// takePending clears the marks a reconcile is about to carry out: when the
// oldest change not yet reconciled happened, and whether an incremental
// update may do.
func (s *session) takePending() (pending time.Time, fast bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pending = s.pendingSince
	fast = s.knowPending && !s.fullPending && s.cache != nil
	s.pendingSince, s.knowPending, s.fullPending = time.Time{}, false, false
	return pending, fast
}

// restorePending puts back the time of a change a failed reconcile did not
// carry out, so that the convergence metric still counts from it.
func (s *session) restorePending(pending time.Time) {
	if pending.IsZero() {
		return
	}
	s.mu.Lock()
	if s.pendingSince.IsZero() || pending.Before(s.pendingSince) {
		s.pendingSince = pending
	}
	s.mu.Unlock()
}

// reconcileFast tries the incremental update. done is false when a full
// reconcile must follow: the update was not possible, but the connection
// and ctx are fine.
func (s *session) reconcileFast(ctx context.Context, pending time.Time) (done bool, err error) {
	fr, err := s.incremental(ctx)
	if err == nil {
		s.countSent(fr.Result)
		s.synced(fr.Result, fr.version, fr.flows, pending)
		if fr.FlowMods > 0 {
			s.log.Debug("flows updated", zap.Int("added", fr.Added), zap.Int("modified", fr.Modified),
				zap.Int("deleted", fr.Deleted), zap.Int("flows", fr.flows), zap.Duration("took", fr.Duration))
		}
		return true, nil
	}
	if ctx.Err() != nil || s.conn.Err() != nil {
		s.cache = nil
		s.restorePending(pending)
		return true, err
	}
	s.log.Debug("incremental update not possible, reconciling in full", zap.Error(err))
	return false, nil
}

// reconcileFull compiles the switch's flows and reconciles them against a
// dump; on success the cache it built makes the next update incremental.
func (s *session) reconcileFull(ctx context.Context, pending time.Time) error {
	s.cache = nil
	desired, cookie, mask, version, err := s.desired(ctx)
	var res openflow.Result
	if err == nil {
		res, err = s.sw.Reconcile(ctx, desired, cookie, mask)
	}
	if err == nil {
		s.cache, s.lastFull = s.nextCache, time.Now()
	}
	s.nextCache = nil
	s.countSent(res)
	if err != nil {
		s.failed(ctx, err, pending)
		return err
	}
	s.synced(res, version, len(desired), pending)
	if res.FlowMods > 0 {
		s.log.Info("flows reconciled", zap.Int("added", res.Added), zap.Int("modified", res.Modified),
			zap.Int("deleted", res.Deleted), zap.Int("flows", len(desired)), zap.Duration("took", res.Duration))
	}
	return nil
}

// synced records a successful reconcile that left the switch at knowledge
// version with n flows: the switch's state and the metrics.
func (s *session) synced(res openflow.Result, version uint64, n int, pending time.Time) {
	s.mu.Lock()
	s.state.LastError = ""
	s.state.Synced, s.state.SyncedVersion, s.state.Flows = true, version, n
	s.mu.Unlock()
	s.lastWarn = ""
	m := s.srv.met
	s.met.reconciles.Observe(res.Duration.Seconds())
	m.flows.WithLabelValues(s.id.host.Name, s.id.bridge).Set(float64(n))
	if !pending.IsZero() {
		s.met.convergence.Observe(time.Since(pending).Seconds())
	}
}

// failed records a failed full reconcile. While the connection lives the
// error is logged, at warn level only when it differs from the last one: the
// same failure again (an advertisement still missing) is only worth a
// debug line.
func (s *session) failed(ctx context.Context, err error, pending time.Time) {
	s.mu.Lock()
	s.state.LastError = err.Error()
	s.mu.Unlock()
	s.restorePending(pending)
	s.srv.met.reconErrors.WithLabelValues(s.id.host.Name, s.id.bridge).Inc()
	if ctx.Err() != nil || s.conn.Err() != nil {
		return
	}
	if msg := err.Error(); msg != s.lastWarn {
		s.lastWarn = msg
		s.log.Warn("reconcile failed, retrying", zap.Error(err))
	} else {
		s.log.Debug("reconcile failed again", zap.Error(err))
	}
}

// desired computes the switch's flows and the cookie range they own.
func (s *session) desired(ctx context.Context) (fl []flows.Flow, cookie, mask uint64, version uint64, err error) {
	t, h := s.topo()
	if !s.tun() {
		if err := s.checkServed(); err != nil {
			return nil, 0, 0, 0, err
		}
		// br-int's flows do not depend on the allocation; any complete
		// one compiles them.
		alloc, err := t.Allocate(h, topology.Allocation{})
		if err != nil {
			return nil, 0, 0, 0, err
		}
		prog, err := flows.Compile(t, h, alloc)
		if err != nil {
			return nil, 0, 0, 0, err
		}
		return prog.Int, flows.CookieOwned, flows.CookieOwnerMask, s.srv.know.Version(), nil
	}
	if err := s.refreshAlloc(ctx); err != nil {
		return nil, 0, 0, 0, err
	}
	alloc, _ := s.currentAlloc()
	prog, err := flows.Compile(t, h, alloc)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	eps, version := s.srv.know.Endpoints()
	// Compiled endpoint by endpoint, the flows come with who gives each:
	// the cache of incremental updates. A conflict between endpoints
	// leaves it to CompileEndpoints (first wins) and to full reconciles.
	cache, epFlows, ok := buildCache(s.memoFor(t), t, h, alloc, prog.Tun, eps, version)
	if !ok {
		cache, epFlows = nil, flows.CompileEndpoints(t, h, alloc, eps)
	}
	fl = append(prog.Tun, epFlows...)
	// Compile checked its own flows; this checks the endpoints' too. A
	// violation is a bug: better no reconcile than a broken pipeline.
	if err := flows.Validate(fl); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("checking the flows of host %s: %w", h.Name, err)
	}
	s.nextCache = cache
	return fl, flows.CookieOwned, flows.ControllerReconcileMask, version, nil
}

// readActivity reads the packet counts of br-tun's known-source flows.
func (s *session) readActivity(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.srv.o.ReconcileTimeout)
	defer cancel()
	st, err := s.sw.DumpStats(ctx, flows.TableFromPort, flows.CookieController, flows.CookieOwnerMask)
	if err != nil {
		return err
	}
	_, vlanVNI := s.currentAlloc()
	counts := map[MACKey]uint64{}
	for _, f := range st {
		if f.Flow.Priority != flows.PriorityKnownSource || f.Flow.Match.EthSrc == nil || !f.Flow.Match.HasVLAN {
			continue
		}
		vni, ok := vlanVNI[f.Flow.Match.VLAN]
		if !ok {
			continue
		}
		if k, ok := KeyOf(vni, f.Flow.Match.EthSrc); ok {
			counts[k] += f.Packets
		}
	}
	s.srv.know.Activity(s.id.host.Name, counts, time.Now())
	return nil
}

// keepalive sends echo requests; a switch that misses EchoMisses in a row
// is disconnected (it reconnects by itself if it is alive). Any message from
// the switch proves it alive, not only an echo reply: a busy controller
// reads replies late, and must not drop a switch for its own delay. Nor
// does a miss count while the session waits for a full-reconcile slot.
func (s *session) keepalive(ctx context.Context) {
	interval := s.srv.o.EchoInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	misses := 0
	heard := func() bool { return time.Since(s.conn.LastRead()) < interval }
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if heard() {
			misses = 0
			continue
		}
		ectx, cancel := context.WithTimeout(ctx, interval)
		err := s.conn.Echo(ectx)
		cancel()
		if err == nil || heard() {
			misses = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if s.queued.Load() {
			continue
		}
		misses++
		s.log.Debug("echo request unanswered", zap.Int("misses", misses), zap.Error(err))
		if misses >= s.srv.o.EchoMisses {
			s.close(fmt.Sprintf("%d echo requests unanswered", misses))
			return
		}
	}
}

// readAsync consumes the switch's asynchronous messages until the
// connection ends: packet-ins teach MACs, port changes on br-tun may change
// its tunnel ports.
func (s *session) readAsync() {
	for msg := range s.conn.Async() {
		if msg.Type == ofconn.TypeExperimenter {
			s.roleStatus(msg)
			continue
		}
		if !s.tun() {
			continue
		}
		switch msg.Type {
		case ofconn.TypePacketIn:
			// A replica learns only from the switches it masters: right
			// after the handshake every connection is EQUAL and gets them
			// all.
			if s.rep != nil && !s.rep.isMaster() {
				s.srv.countPacketIn(s.id.host.Name, resultIgnored)
				continue
			}
			s.packetIn(msg)
		case ofconn.TypePortStatus:
			if ps, ok := msg.Parsed.(*ofconn.PortStatus); ok && strings.HasPrefix(ps.Port.Name, topology.TunnelPortPrefix) && s.ready.Load() {
				s.markDirty(time.Now())
			}
		}
	}
}

// packetIn learns from a report of an unknown source, or of ARP or neighbour
// discovery announcing an unknown (MAC, IP) pair: table 1's CONTROLLER
// action on a frame from the patch port, or table 2's on a frame from an
// unmanaged peer's tunnel (that peer has no switch to report its own).
func (s *session) packetIn(msg ofconn.Message) {
	now := time.Now()
	host := s.id.host.Name
	count := func(result string) { s.srv.countPacketIn(host, result) }
	pi, ok := msg.Parsed.(*ofconn.PacketIn)
	if !ok {
		count(resultMalformed)
		return
	}
	where, ok := s.sourceHost(pi)
	if !ok || pi.Reason != 1 || pi.Cookie&flows.CookieOwnerMask != flows.CookieOwned {
		count(resultIgnored)
		return
	}
	if !s.bucket.allow(now) {
		count(resultRateLimited)
		return
	}
	if !s.srv.global.allow(now) {
		s.bucket.refund()
		count(resultRateLimited)
		return
	}
	f, err := DecodeFrame(pi.Data)
	if err != nil {
		count(resultMalformed)
		return
	}
	if !f.Tagged || !f.UnicastSource() {
		count(resultIgnored)
		return
	}
	_, vlanVNI := s.currentAlloc()
	vni, ok := vlanVNI[f.VLAN]
	if !ok {
		count(resultNotReady)
		return
	}
	ip, _ := f.SenderIP()
	key, _ := KeyOf(vni, f.Src)
	ev, err := s.srv.know.Observe(key, where, ip, now)
	if err != nil {
		count(s.srv.observeRefused(err, now))
		return
	}
	result := resultRefreshed
	for _, e := range ev {
		switch e.Kind {
		case EventLearned:
			result = resultLearned
		case EventMoved:
			result = resultMoved
		}
	}
	count(result)
	s.srv.changed(ev, now)
	s.srv.publishEvents(ev)
}

// sourceHost is the host the reported frame's source is on: this one for
// table 1's reports (from the patch port), the unmanaged peer behind the
// tunnel port for table 2's; ok is false for anything else.
func (s *session) sourceHost(pi *ofconn.PacketIn) (host string, ok bool) {
	port, ok := pi.InPort()
	switch {
	case !ok:
		return "", false
	case pi.TableID == flows.TableFromPort:
		return s.id.host.Name, port == topology.PatchOFPort
	case pi.TableID == flows.TableFromTun:
		alloc, _ := s.currentAlloc()
		for peer, p := range alloc.TunnelOFPort {
			if p == port {
				t, _ := s.topo()
				h := t.Host(peer)
				return peer, h != nil && !h.Managed
			}
		}
	}
	return "", false
}

// countSent adds what a reconcile sent to the server's, the metrics' and the
// session's counters.
func (s *session) countSent(res openflow.Result) {
	if res.FlowMods == 0 {
		return
	}
	s.srv.flowMods.Add(uint64(res.FlowMods))
	s.srv.bundles.Add(1)
	s.met.flowMods.Add(float64(res.FlowMods))
	s.met.bundles.Inc()
	s.mu.Lock()
	s.state.FlowMods += uint64(res.FlowMods)
	s.state.Bundles++
	s.mu.Unlock()
}

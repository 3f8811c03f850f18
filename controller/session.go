package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
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
	return &session{
		srv: srv, id: id, conn: conn, remote: remote, log: log,
		sw:     openflow.New(conn, log),
		bucket: newTokenBucket(srv.o.PacketInRate, srv.o.PacketInBurst),
		dirty:  make(chan struct{}, 1),
		// The jitter keeps a thousand switches connected together from
		// being repaired together, every time.
		repairAfter: srv.o.RepairInterval/2 + rand.N(srv.o.RepairInterval),
		state:       SwitchState{Host: id.host.Name, Bridge: id.bridge, DatapathID: id.dpid, Remote: remote},
	}
}

func (s *session) tun() bool { return s.id.bridge == flows.BridgeTun }

// close ends the connection, recording why (the first reason wins).
func (s *session) close(reason string) {
	s.closeReason.CompareAndSwap(nil, reason)
	s.conn.Close()
}

func (s *session) snapshot() SwitchState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
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
	s.markDirty(time.Now())
	tick := time.NewTicker(s.srv.o.AgeInterval)
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
// left, retrying with backoff while the advertisement is missing. It returns
// false when the connection or ctx ended first.
func (s *session) setup(ctx context.Context) bool {
	backoff := retryMin
	warned := false
	for {
		err := s.refreshAlloc(ctx)
		if err == nil {
			err = s.adopt(ctx)
		}
		if err == nil {
			s.ready.Store(true)
			s.srv.adoptedHost(s.id.host.Name)
			return true
		}
		if !warned || !errors.Is(err, errNoAdvertisement) {
			s.log.Warn("switch not ready, retrying", zap.Error(err))
			warned = true
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(2*backoff, setupRetryMax)
	}
}

// refreshAlloc reads the host's allocation back from br-tun: local VLANs
// from the advertisement flows, tunnel ports from the port descriptions.
func (s *session) refreshAlloc(ctx context.Context) error {
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
	alloc := topology.Allocation{LocalVLAN: flows.LocalVLANsFromFlows(adv), TunnelOFPort: map[string]uint32{}}
	for _, p := range ports {
		if peer, ok := strings.CutPrefix(p.Name, ovsdb.TunnelPortPrefix); ok && p.No >= topology.FirstTunnelOFPort && p.No <= topology.LastTunnelOFPort {
			alloc.TunnelOFPort[peer] = p.No
		}
	}
	if len(alloc.LocalVLAN) == 0 {
		// A switch that lost every flow (ovs-vswitchd restarted) lost the
		// advertisement too. The local VLANs live on in OVSDB (the ports'
		// tags), so the ones read before are still right: put them back
		// rather than wait for the next apply.
		if last, ok := s.srv.lastAlloc(s.id.host.Name); ok && len(last.LocalVLAN) > 0 {
			res, err := s.sw.Reconcile(ctx, flows.CompileAllocation(last), flows.CookieAllocation, flows.CookieOwnerMask)
			if err != nil {
				return fmt.Errorf("restoring the allocation advertisement: %w", err)
			}
			s.countSent(res)
			s.log.Info("restored the allocation advertisement the switch had lost", zap.Int("networks", len(last.LocalVLAN)))
			alloc.LocalVLAN = maps.Clone(last.LocalVLAN)
		}
	}
	if err := s.checkAlloc(alloc); err != nil {
		return err
	}
	s.srv.rememberAlloc(s.id.host.Name, alloc)
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
	var missing []string
	t, h := s.srv.t, s.id.host
	for _, n := range t.NetworksOn(h) {
		if _, ok := alloc.LocalVLAN[n.VNI]; !ok {
			missing = append(missing, fmt.Sprintf("local VLAN of VNI %d", n.VNI))
		}
	}
	for _, p := range t.Peers(h) {
		if _, ok := alloc.TunnelOFPort[p.Name]; !ok {
			missing = append(missing, "port "+ovsdb.TunnelPortName(p.Name))
		}
	}
	if len(missing) > 0 {
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
	alloc, vlanVNI := s.currentAlloc()
	local, localIPs, remote := adoptable(fl, alloc, vlanVNI)
	// Only controller-mode hosts report and age their MACs: an entry
	// towards any other host is declared (and known) or stale.
	remote = slices.DeleteFunc(remote, func(e flows.Endpoint) bool { return !slices.Contains(s.srv.tunHosts, e.Host) })
	// The host's own (MAC, IP) pairs come as endpoints of this host.
	for _, e := range localIPs {
		e.Host = s.id.host.Name
		remote = append(remote, e)
	}
	ev := s.srv.know.Adopt(s.id.host.Name, local, remote, time.Now())
	if len(ev) > 0 {
		s.log.Info("adopted what the switch held", zap.Int("changes", len(ev)), zap.Int("local_macs", len(local)), zap.Int("remote_macs", len(remote)))
	}
	s.srv.changed(ev, time.Now())
	return nil
}

// adoptable reads endpoints out of controller flows (CompileEndpoints'
// output): the MACs of known-source flows (local), the (MAC, IP) pairs of
// known-ARP flows (localIPs) and, per unicast entry, the MAC, the peer its
// tunnel port leads to and the IPs of its ARP responders (remote).
func adoptable(fl []flows.Flow, alloc topology.Allocation, vlanVNI map[uint16]uint32) (local []MACKey, localIPs, remote []flows.Endpoint) {
	portPeer := map[uint32]string{}
	for peer, p := range alloc.TunnelOFPort {
		portPeer[p] = peer
	}
	seen := map[MACKey]bool{}
	byKey := map[MACKey]int{}
	ips := map[MACKey][]flows.Flow{}
	for _, f := range fl {
		if !f.Match.HasVLAN {
			continue
		}
		vni, ok := vlanVNI[f.Match.VLAN]
		if !ok {
			continue
		}
		switch {
		case f.Table == flows.TableFromPort && f.Priority == flows.PriorityKnownSource && f.Match.EthSrc != nil:
			if k, ok := KeyOf(vni, f.Match.EthSrc); ok && !seen[k] {
				seen[k] = true
				local = append(local, k)
			}
		case f.Table == flows.TableUnicast && f.Priority == flows.PriorityInstalled && f.Match.EthDst != nil && f.Match.EthDstMask == nil:
			k, ok := KeyOf(vni, f.Match.EthDst)
			if !ok {
				continue
			}
			for _, a := range f.Actions {
				if o, isOut := a.(flows.Output); isOut {
					if peer, known := portPeer[o.Port]; known {
						if _, dup := byKey[k]; !dup {
							byKey[k] = len(remote)
							remote = append(remote, flows.Endpoint{VNI: vni, MAC: k.HardwareAddr(), Host: peer})
						}
					}
				}
			}
		case f.Table == flows.TableFromPort && f.Priority == flows.PriorityKnownARP && f.Match.EthSrc != nil && f.Match.ArpSPA.IsValid():
			localIPs = append(localIPs, flows.Endpoint{VNI: vni, MAC: f.Match.EthSrc, IPs: []netip.Addr{f.Match.ArpSPA}})
		case f.Table == flows.TableARP && f.Priority == flows.PriorityARP:
			for _, a := range f.Actions {
				if se, ok := a.(flows.SetEthSrc); ok {
					if k, ok := KeyOf(vni, se.MAC); ok {
						ips[k] = append(ips[k], f)
					}
				}
			}
		}
	}
	for k, fs := range ips {
		i, ok := byKey[k]
		if !ok {
			continue
		}
		for _, f := range fs {
			for _, a := range f.Actions {
				if sp, ok := a.(flows.SetARPSPA); ok && sp.IP == f.Match.ArpTPA {
					remote[i].IPs = append(remote[i].IPs, sp.IP)
				}
			}
		}
	}
	return local, localIPs, remote
}

// reconcile makes the switch's flows what the topology and the knowledge
// say, in one bundle.
func (s *session) reconcile(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.srv.o.ReconcileTimeout)
	defer cancel()
	s.mu.Lock()
	pending := s.pendingSince
	fast := s.knowPending && !s.fullPending && s.cache != nil
	s.pendingSince, s.knowPending, s.fullPending = time.Time{}, false, false
	s.mu.Unlock()
	restore := func() {
		if pending.IsZero() {
			return
		}
		s.mu.Lock()
		if s.pendingSince.IsZero() || pending.Before(s.pendingSince) {
			s.pendingSince = pending
		}
		s.mu.Unlock()
	}

	m, host, br := s.srv.met, s.id.host.Name, s.id.bridge
	if fast {
		fr, err := s.incremental(ctx)
		if err == nil {
			s.countSent(fr.Result)
			s.mu.Lock()
			s.state.LastError = ""
			s.state.Synced, s.state.SyncedVersion, s.state.Flows = true, fr.version, fr.flows
			s.mu.Unlock()
			s.lastWarn = ""
			m.reconciles.WithLabelValues(br).Observe(fr.Duration.Seconds())
			m.flows.WithLabelValues(host, br).Set(float64(fr.flows))
			if !pending.IsZero() {
				m.convergence.WithLabelValues(br).Observe(time.Since(pending).Seconds())
			}
			if fr.FlowMods > 0 {
				s.log.Debug("flows updated", zap.Int("added", fr.Added), zap.Int("modified", fr.Modified),
					zap.Int("deleted", fr.Deleted), zap.Int("flows", fr.flows), zap.Duration("took", fr.Duration))
			}
			return nil
		}
		if ctx.Err() != nil || s.conn.Err() != nil {
			s.cache = nil
			restore()
			return err
		}
		s.log.Debug("incremental update not possible, reconciling in full", zap.Error(err))
	}
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
	s.mu.Lock()
	if err != nil {
		s.state.LastError = err.Error()
	} else {
		s.state.LastError = ""
		s.state.Synced, s.state.SyncedVersion, s.state.Flows = true, version, len(desired)
	}
	s.mu.Unlock()
	if err != nil {
		restore()
		m.reconErrors.WithLabelValues(host, br).Inc()
		if ctx.Err() == nil && s.conn.Err() == nil {
			// The same failure again (an advertisement still missing) is
			// only worth a debug line.
			if msg := err.Error(); msg != s.lastWarn {
				s.lastWarn = msg
				s.log.Warn("reconcile failed, retrying", zap.Error(err))
			} else {
				s.log.Debug("reconcile failed again", zap.Error(err))
			}
		}
		return err
	}
	s.lastWarn = ""
	m.reconciles.WithLabelValues(br).Observe(res.Duration.Seconds())
	m.flows.WithLabelValues(host, br).Set(float64(len(desired)))
	if !pending.IsZero() {
		m.convergence.WithLabelValues(br).Observe(time.Since(pending).Seconds())
	}
	if res.FlowMods > 0 {
		s.log.Info("flows reconciled", zap.Int("added", res.Added), zap.Int("modified", res.Modified),
			zap.Int("deleted", res.Deleted), zap.Int("flows", len(desired)), zap.Duration("took", res.Duration))
	}
	return nil
}

// desired computes the switch's flows and the cookie range they own.
func (s *session) desired(ctx context.Context) (fl []flows.Flow, cookie, mask uint64, version uint64, err error) {
	t, h := s.srv.t, s.id.host
	if !s.tun() {
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
	cache, epFlows, ok := buildCache(t, h, alloc, prog.Tun, eps, version)
	if !ok {
		cache, epFlows = nil, flows.CompileEndpoints(t, h, alloc, eps)
	}
	s.nextCache = cache
	fl = append(prog.Tun, epFlows...)
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
// is disconnected (it reconnects by itself if it is alive).
func (s *session) keepalive(ctx context.Context) {
	interval := s.srv.o.EchoInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ectx, cancel := context.WithTimeout(ctx, interval)
		err := s.conn.Echo(ectx)
		cancel()
		if err == nil {
			misses = 0
			continue
		}
		if ctx.Err() != nil {
			return
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
		if !s.tun() {
			continue
		}
		switch msg.Type {
		case ofconn.TypePacketIn:
			s.packetIn(msg)
		case ofconn.TypePortStatus:
			if ps, ok := msg.Parsed.(*ofconn.PortStatus); ok && strings.HasPrefix(ps.Port.Name, ovsdb.TunnelPortPrefix) && s.ready.Load() {
				s.markDirty(time.Now())
			}
		}
	}
}

// packetIn learns from a report of an unknown local source (table 1's
// CONTROLLER action on a frame from the patch port).
func (s *session) packetIn(msg ofconn.Message) {
	now := time.Now()
	host := s.id.host.Name
	count := func(result string) { s.srv.countPacketIn(host, result) }
	pi, ok := msg.Parsed.(*ofconn.PacketIn)
	if !ok {
		count(resultMalformed)
		return
	}
	if port, ok := pi.InPort(); pi.Reason != 1 || pi.TableID != flows.TableFromPort || !ok || port != topology.PatchOFPort ||
		pi.Cookie&flows.CookieOwnerMask != flows.CookieOwned {
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
	ev, err := s.srv.know.Observe(key, host, ip, now)
	if err != nil {
		count(resultFull)
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
}

// countSent adds what a reconcile sent to the server's, the metrics' and the
// session's counters.
func (s *session) countSent(res openflow.Result) {
	if res.FlowMods == 0 {
		return
	}
	s.srv.flowMods.Add(uint64(res.FlowMods))
	s.srv.bundles.Add(1)
	s.srv.met.flowMods.WithLabelValues(s.id.host.Name, s.id.bridge).Add(float64(res.FlowMods))
	s.srv.met.bundles.WithLabelValues(s.id.host.Name, s.id.bridge).Inc()
	s.mu.Lock()
	s.state.FlowMods += uint64(res.FlowMods)
	s.state.Bundles++
	s.mu.Unlock()
}

package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"
)

// claimProbeTimeout is how long the switch holding a datapath ID has to
// answer an echo request when another connection claims the ID.
const claimProbeTimeout = 2 * time.Second

// stalledAge is how long a handshake may take before a newcomer may
// evict it when every pending slot is taken: an OVS switch completes its
// handshakes in milliseconds, a silent peer never does, so a flood of
// silent connections cannot keep a real switch out for handshakeTimeout.
const stalledAge = time.Second

// refusedEvicted labels a pending connection closed to make room.
const refusedEvicted = "evicted-stalled"

// pendingConn is a connection admitted and not yet identified; s.mu
// guards it.
type pendingConn struct {
	nc       net.Conn
	src      string // "" when not counted per source
	since    time.Time
	released bool
}

// admit counts nc among the connections not yet identified, or refuses (and
// closes) it when there are MaxPending of them already and none has stalled
// for stalledAge (else the oldest is closed to make room), or
// MaxPendingPerSource from its address: a flood of silent connections then
// costs a bounded amount of memory. Loopback addresses (this machine, where
// emulated switches connect in bursts) count only against MaxPending.
// release ends the count (once; later calls do nothing).
func (s *Server) admit(nc net.Conn) (release func(), ok bool) {
	return s.admitAt(nc, time.Now())
}

func (s *Server) admitAt(nc net.Conn, now time.Time) (release func(), ok bool) {
	remote := nc.RemoteAddr().String()
	src := pendingSource(remote)
	reason, detail := "", ""
	var evicted *pendingConn
	pc := &pendingConn{nc: nc, src: src, since: now}
	s.mu.Lock()
	if s.pending >= s.o.MaxPending && (src == "" || s.pendingBySrc[src] < s.o.MaxPendingPerSource) {
		evicted = s.evictStalledLocked(now)
	}
	switch {
	case s.pending >= s.o.MaxPending:
		reason, detail = refusedPending, fmt.Sprintf("%d connections are not identified yet (the limit of --max-pending-connections)", s.pending)
	case src != "" && s.pendingBySrc[src] >= s.o.MaxPendingPerSource:
		reason, detail = refusedPendingPerIP, fmt.Sprintf("%d connections from %s are not identified yet (the limit of --max-pending-per-source)", s.pendingBySrc[src], src)
	default:
		s.addPendingLocked(pc)
	}
	s.mu.Unlock()
	if evicted != nil {
		evicted.nc.Close() // its handshake fails; its release does nothing
		s.refuse(0, evicted.nc.RemoteAddr().String(), refusedEvicted,
			fmt.Sprintf("no handshake after %v while every pending slot was taken", now.Sub(evicted.since).Round(time.Millisecond)))
	}
	if reason != "" {
		s.refuse(0, remote, reason, detail)
		nc.Close()
		return nil, false
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.removePendingLocked(pc)
	}, true
}

// pendingSource is the address remote's pending connections are counted
// under, "" for loopback.
func pendingSource(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	if ap.Addr().IsLoopback() {
		return ""
	}
	return ap.Addr().Unmap().String()
}

func (s *Server) addPendingLocked(pc *pendingConn) {
	s.pending++
	if pc.src != "" {
		s.pendingBySrc[pc.src]++
	}
	s.pendingConns[pc] = struct{}{}
	s.met.pending.Inc()
}

// removePendingLocked ends pc's count, once.
func (s *Server) removePendingLocked(pc *pendingConn) {
	if pc.released {
		return
	}
	pc.released = true
	delete(s.pendingConns, pc)
	s.pending--
	if s.pendingBySrc[pc.src]--; pc.src == "" || s.pendingBySrc[pc.src] <= 0 {
		delete(s.pendingBySrc, pc.src)
	}
	s.met.pending.Dec()
}

// evictStalledLocked removes the oldest pending connection if it has been
// pending for stalledAge, and returns it for the caller to close outside
// the lock. The scan is linear, but only runs when every slot is taken.
func (s *Server) evictStalledLocked(now time.Time) *pendingConn {
	var oldest *pendingConn
	for pc := range s.pendingConns {
		if oldest == nil || pc.since.Before(oldest.since) {
			oldest = pc
		}
	}
	if oldest == nil || now.Sub(oldest.since) < stalledAge {
		return nil
	}
	s.removePendingLocked(oldest)
	return oldest
}

// checkCertificate refuses a TLS peer whose certificate does not name the
// host of the datapath ID it claims: any certificate the CA signed would
// otherwise serve as any host's. It reports whether the peer may go on.
func (s *Server) checkCertificate(nc net.Conn, id switchID, remote string) bool {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return true // tcp: nothing to check (and nothing proven)
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		s.refuse(id.dpid, remote, refusedCertificate, fmt.Sprintf("%s of host %s: the switch presented no certificate", id.bridge, id.host.Name))
		return false
	}
	if !certNamesHost(certs[0], id.host.Name) {
		s.refuse(id.dpid, remote, refusedCertificate, fmt.Sprintf("%s of host %s: the certificate names %s, not host %s",
			id.bridge, id.host.Name, certNames(certs[0]), id.host.Name))
		return false
	}
	return true
}

// claim makes sess the session of its datapath ID. A connected switch
// holding the ID is probed first (an echo request): while it answers, the
// newcomer is refused, so a healthy switch is never displaced by whoever
// computed its datapath ID; one that does not answer within the probe's
// deadline is replaced. One claim per datapath ID is probed at a time;
// others meanwhile are refused (a real switch retries within seconds).
func (s *Server) claim(ctx context.Context, sess *session) bool {
	dpid := sess.id.dpid
	s.mu.Lock()
	old := s.sessions[dpid]
	if old == nil {
		s.sessions[dpid] = sess
		s.mu.Unlock()
		return true
	}
	if s.claiming[dpid] {
		s.mu.Unlock()
		s.refuse(dpid, sess.remote, refusedClaimed, fmt.Sprintf("%s of host %s: another claim of this datapath ID is being checked",
			sess.id.bridge, sess.id.host.Name))
		return false
	}
	s.claiming[dpid] = true
	s.mu.Unlock()

	err := s.probe(ctx, old)

	s.mu.Lock()
	delete(s.claiming, dpid)
	cur := s.sessions[dpid]
	take := ctx.Err() == nil && (cur == nil || (cur == old && err != nil))
	if take {
		s.sessions[dpid] = sess
	}
	s.mu.Unlock()
	switch {
	case !take && ctx.Err() == nil:
		holder := old
		if cur != nil {
			holder = cur
		}
		s.refuse(dpid, sess.remote, refusedClaimed, fmt.Sprintf("%s of host %s is connected from %s and answers: a second connection claiming its datapath ID is refused",
			sess.id.bridge, sess.id.host.Name, holder.remote))
	case take && cur == old:
		old.close(fmt.Sprintf("displaced by a new connection from %s: it did not answer an echo request within %v (%v)", sess.remote, s.probeTimeout, err))
		s.met.displaced.WithLabelValues(displacedUnresponsive).Inc()
		s.log.Warn("switch displaced by a new connection claiming its datapath ID",
			zap.String("dpid", fmt.Sprintf("%016x", dpid)), zap.String("host", sess.id.host.Name), zap.String("bridge", sess.id.bridge),
			zap.String("remote", sess.remote), zap.String("old_remote", old.remote), zap.NamedError("probe", err))
	}
	return take
}

// probe sends the session's switch an echo request and waits at most
// probeTimeout for the answer, even when its connection's writer is stuck
// (the request then finishes, or fails, in the background).
func (s *Server) probe(ctx context.Context, sess *session) error {
	ctx, cancel := context.WithTimeout(ctx, s.probeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sess.conn.Echo(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("echo: %w", ctx.Err())
	}
}

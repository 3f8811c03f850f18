package controller

import (
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Re-sync with the directory: Learn and Forget only queue, and a full
// queue drops (counted), so a learned MAC could be missing from the
// directory, or a forgotten one linger there, for good. Every AgeInterval
// the master of each host compares what it knows of the host's learned
// MACs with the directory's cache and queues the differences again. A
// difference is acted on only when the pass before saw it too: a row on
// its way in either direction (a Learn in flight, another replica's row
// not merged yet) is not one. Work per pass is bounded (resyncMax). The
// upkeep goroutine (replicaUpkeep) owns the state.

// resyncMax bounds the writes one pass queues.
const resyncMax = 512

// resync remembers the differences the last pass saw.
type resync struct {
	missing map[directory.Key]bool // known here, absent or different there
	extra   map[directory.Key]bool // there, on a host mastered here, unknown here
}

// resyncPass queues the differences between the knowledge and the
// directory for the hosts this replica masters; it returns how many writes
// it queued.
func (s *Server) resyncPass(r *resync) int {
	if s.dir == nil || !s.dir.Connected() {
		return 0
	}
	mastered := map[string]bool{}
	for _, h := range s.topo().tunHosts {
		if s.live(h) {
			mastered[h] = true
		}
	}
	missing, extra := map[directory.Key]bool{}, map[directory.Key]bool{}
	n := 0
	eps, _ := s.know.Endpoints()
	known := make(map[directory.Key]bool, len(eps))
	for _, e := range eps {
		dk := directory.Key{VNI: e.VNI, MAC: strings.ToLower(e.MAC.String())}
		known[dk] = true
		if !e.Learned || !mastered[e.Host] || s.dirHolds(dk, e) {
			continue
		}
		missing[dk] = true
		if r.missing[dk] && n < resyncMax {
			key, _ := KeyOf(e.VNI, e.MAC)
			s.publish(key, false)
			n++
		}
	}
	for _, de := range s.dir.Endpoints() {
		if de.Kind != directory.KindLearned || !mastered[de.Host] || known[de.Key] {
			continue
		}
		extra[de.Key] = true
		if r.extra[de.Key] && n < resyncMax {
			if s.dir.Forget(de.Key, de.Host) {
				s.met.replicaLearned.WithLabelValues(learnedForgotten).Inc()
			} else {
				s.met.replicaLearned.WithLabelValues(learnedDropped).Inc()
			}
			n++
		}
	}
	r.missing, r.extra = missing, extra
	return n
}

// dirHolds reports whether the directory's cache holds e as known here, or
// holds the MAC on another host: that move is for the other host's master
// to publish and for the merge to bring here, not for this one to undo.
func (s *Server) dirHolds(dk directory.Key, e flows.Endpoint) bool {
	cur, ok := s.dir.Endpoint(dk)
	if !ok {
		return false
	}
	if cur.Host != e.Host {
		return true
	}
	ips := make([]string, len(e.IPs))
	for i, a := range e.IPs {
		ips[i] = a.String()
	}
	slices.Sort(ips)
	return slices.Equal(cur.IPs, ips)
}

// resyncDone logs a pass that queued anything (rate-limited: a directory
// that keeps dropping would log every pass).
func (s *Server) resyncDone(n int, now time.Time) {
	if n > 0 && s.logOnce.allow("directory/resync", now) {
		s.log.Info("queued again for the directory what it lacked or kept", zap.Int("writes", n))
	}
}

package controller

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// observeRefused logs and counts a report the knowledge did not obey
// (Knowledge.Observe's error) and returns the packet-in result it counts
// as. What repeats with every packet is logged once per logInterval: a
// conflict per (MAC, host), a bound per scope; a damping once, when it
// starts.
func (s *Server) observeRefused(err error, now time.Time) string {
	var (
		conflict *ConflictError
		damped   *DampedError
		full     *FullError
	)
	switch {
	case errors.As(err, &conflict):
		s.met.conflicts.Inc()
		k := conflict.Key
		if s.logOnce.allow(fmt.Sprintf("conflict/%d/%s/%s", k.VNI, k.HardwareAddr(), conflict.Seen), now) {
			s.log.Warn("declared MAC seen on another host: not moved (the topology says where it is)",
				zap.Uint32("vni", k.VNI), zap.Stringer("mac", k.HardwareAddr()), zap.String("host", conflict.Declared),
				zap.String("seen_on", conflict.Seen))
		}
		return resultConflict
	case errors.As(err, &damped):
		if damped.Started {
			s.met.dampings.Inc()
			k := damped.Key
			s.log.Warn("MAC moving too often: frozen where it is",
				zap.Uint32("vni", k.VNI), zap.Stringer("mac", k.HardwareAddr()), zap.String("host", damped.Host),
				zap.String("seen_on", damped.Seen), zap.Int("moves", s.o.FlapMoves), zap.Duration("within", s.o.FlapWindow),
				zap.Time("until", damped.Until))
		}
		return resultDamped
	case errors.As(err, &full):
		s.met.boundHits.WithLabelValues(full.Scope).Inc()
		key := "full/" + full.Scope
		if full.Scope == ScopeVNI {
			key = fmt.Sprintf("%s/%d", key, full.VNI)
		}
		if s.logOnce.allow(key, now) {
			s.log.Warn("bound on learned MACs reached: new MACs are not learned", zap.String("scope", full.Scope),
				zap.Uint32("vni", full.VNI), zap.Int("max", full.Max), zap.Error(err))
		}
		return resultFull
	}
	s.log.Warn("MAC report not learned", zap.Error(err))
	return resultFull
}

package controller

import (
	"errors"
	"fmt"
	"slices"
	"sync"
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

// Why MACs are forgotten: the reason in their log lines.
const (
	ForgotIdle      = "idle"                    // aged out (expireLoop)
	ForgotWithdrawn = "withdrawn"               // its host or the directory withdrew it
	ForgotBySwitch  = "withdrawn by the switch" // gone from a hardware VTEP's Ucast_Macs_Local
	ForgotRemoved   = "network or host removed from the topology"
	ForgotUndriven  = "hardware VTEP no longer driven by the controller"
)

// macLogPerSecond is how many per-MAC lines are written a second; the
// rest are summarised, so a burst of thousands of MACs (a flood, a
// network removed) costs a few lines, not one each.
const macLogPerSecond = 20

// logMACEvents writes the lines of knowledge events: learned, moved and
// forgotten ones at INFO, at most macLogPerSecond a second, then one line
// per kind for the rest once the second is over.
func (s *Server) logMACEvents(ev []Event, when time.Time, why string) {
	for _, e := range ev {
		fields := []zap.Field{zap.Uint32("vni", e.Key.VNI), zap.Stringer("mac", e.Key.HardwareAddr()), zap.String("host", e.Host)}
		if e.IP.IsValid() {
			fields = append(fields, zap.Stringer("ip", e.IP))
		}
		var what string
		switch e.Kind {
		case EventMoved:
			what = "moved"
			fields = append(fields, zap.String("from", e.OldHost))
		case EventForgotten:
			what = "forgotten (" + s.forgotWhy(e, why) + ")"
		case EventLearned:
			what = "learned"
		default:
			s.log.Debug("MAC "+e.Kind.String(), fields...)
			continue
		}
		ok, held, first := s.macLog.take(what, when)
		s.logHeld(held)
		if first {
			// Nothing may follow to end the second: a timer does.
			time.AfterFunc(time.Second, func() { s.logHeld(s.macLog.flush(time.Now())) })
		}
		if ok {
			s.log.Info("MAC "+what, fields...)
		}
	}
}

// forgotWhy refines why for one forgotten MAC: one whose host left the
// network (or the topology) went with it, whoever withdrew it.
func (s *Server) forgotWhy(e Event, why string) string {
	if why == ForgotWithdrawn && !inNetwork(s.topo().t, e.Host, e.Key.VNI) {
		return ForgotRemoved
	}
	return why
}

// logHeld writes the summary of a second's held-back lines.
func (s *Server) logHeld(held map[string]int) {
	kinds := make([]string, 0, len(held))
	for k := range held {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		s.log.Info(fmt.Sprintf("%d more MACs %s in the last second", held[k], k), zap.Int("count", held[k]), zap.String("event", k))
	}
}

// macLogLimiter counts the per-MAC lines of the current second. Any
// goroutine may call it (sessions, the hardware VTEP loops, the ageing
// loop, timers): mu guards its fields.
type macLogLimiter struct {
	max   int
	mu    sync.Mutex
	start time.Time      // of the current second; zero: none
	n     int            // lines written in it
	held  map[string]int // lines held back in it, by kind
}

func newMACLogLimiter(max int) *macLogLimiter { return &macLogLimiter{max: max} }

// take reports whether a line of kind at now may be written. When now is
// past the current second, it first ends it and returns what it held back
// (to be logged before). first is true when this line is the first held
// back of its second: the caller arranges a flush after it.
func (l *macLogLimiter) take(kind string, now time.Time) (ok bool, held map[string]int, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() || now.Sub(l.start) >= time.Second || now.Before(l.start) {
		held = l.end()
		l.start = now
	}
	if l.n < l.max {
		l.n++
		return true, held, false
	}
	if l.held == nil {
		l.held = map[string]int{}
	}
	first = len(l.held) == 0
	l.held[kind]++
	return false, held, first
}

// flush ends the current second if now is past it and returns what it
// held back (nil if nothing, or if the second is not over).
func (l *macLogLimiter) flush(now time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() || now.Sub(l.start) < time.Second {
		return nil
	}
	return l.end()
}

// end closes the current second; mu is held.
func (l *macLogLimiter) end() map[string]int {
	held := l.held
	l.held, l.n, l.start = nil, 0, time.Time{}
	if len(held) == 0 {
		return nil
	}
	return held
}

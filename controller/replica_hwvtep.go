package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/directory"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Hardware VTEPs among controller replicas. A VTEP database has no roles:
// two replicas writing one switch's Ucast_Macs_Remote would wipe each
// other's rows. So with a directory, only the replica holding the VTEP's
// claim (directory.HardwareVTEPKey, a row of the Switch table like a
// switch's mastership) drives it; the others wait, re-checking every
// masterCheckInterval, and take it over when the holder is dead or lets
// it go. Without a directory the loop runs as it always did.

// errHWVTEPLost: the directory names another replica holder of the VTEP.
var errHWVTEPLost = errors.New("another replica holds the hardware VTEP's claim")

// errHWVTEPLease: this replica's heartbeats stopped committing, so others
// may soon judge it dead and take the VTEP over.
var errHWVTEPLease = errors.New("this replica's directory lease ran out")

// driveHardwareVTEP runs h's loop while this replica holds h's claim, until
// ctx ends (a reload removed h, or the controller stops).
func (s *Server) driveHardwareVTEP(ctx context.Context, h *topology.Host) {
	if s.dir == nil {
		s.runHardwareVTEP(ctx, h)
		return
	}
	key := directory.HardwareVTEPKey(h.Name)
	tick := time.NewTicker(masterCheckInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		if gen, ok := s.claimHardwareVTEP(ctx, key, h); ok {
			s.runHeldHardwareVTEP(ctx, h, key, gen)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// claimHardwareVTEP claims h when nobody holds it, the holder is dead or
// released it, or it is this replica's (its previous run's); after
// joinSettle, like a switch, so that replicas started together agree.
func (s *Server) claimHardwareVTEP(ctx context.Context, key string, h *topology.Host) (uint64, bool) {
	row, has := s.dir.KeyOwner(key)
	mine := has && row.Master == s.name
	if !s.dir.Connected() || !time.Now().Before(s.dir.LeaseUntil()) || !claimWanted(s.name, row, has, s.dir.Alive) || (!mine && time.Since(s.joined) < joinSettle) {
		return 0, false
	}
	cctx, cancel := context.WithTimeout(ctx, claimTimeout)
	own, won, err := s.dir.ClaimKey(cctx, key, h.Name, "")
	cancel()
	switch {
	case err != nil:
		s.met.claims.WithLabelValues(claimFailed).Inc()
		s.log.Debug("claiming a hardware VTEP in the directory failed", zap.String("hardware_vtep", h.Name), zap.Error(err))
		return 0, false
	case !won:
		s.met.claims.WithLabelValues(claimLost).Inc()
		return 0, false
	}
	s.met.claims.WithLabelValues(claimWon).Inc()
	return own.Generation, true
}

// runHeldHardwareVTEP runs h's loop until ctx ends, the directory names
// another holder (checked every masterCheckInterval), or this replica's
// lease runs out (Directory.LeaseUntil): a VTEP database has no generation
// to fence an old writer, so unlike a switch's master, a holder cut off
// from the directory stops before the others may judge it dead and take
// over. Ended by ctx, it releases the claim so another replica takes over
// at once.
func (s *Server) runHeldHardwareVTEP(ctx context.Context, h *topology.Host, key string, gen uint64) {
	log := s.log.With(zap.String("hardware_vtep", h.Name), zap.Uint64("generation", gen))
	log.Info("driving the hardware VTEP: this replica holds its claim")
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.runHardwareVTEP(hctx, h)
	}()
	wake := time.NewTimer(0)
	defer wake.Stop()
	for {
		select {
		case <-done:
			if ctx.Err() != nil {
				s.releaseHardwareVTEPClaim(key, gen, log)
			}
			return
		case <-wake.C:
		}
		lease := time.Until(s.dir.LeaseUntil())
		if lease <= 0 {
			cancel(errHWVTEPLease)
			<-done
			log.Warn("stopped driving the hardware VTEP", zap.String("reason",
				"no heartbeat of this replica committed lately: another replica may take the VTEP over"))
			return
		}
		wake.Reset(min(lease, masterCheckInterval))
		row, has := s.dir.KeyOwner(key)
		if has && s.dir.Connected() && (row.Master != s.name || row.Generation != gen) {
			cancel(errHWVTEPLost)
			<-done
			log.Warn("stopped driving the hardware VTEP", zap.String("reason",
				fmt.Sprintf("the directory names replica %q holder (generation %d)", row.Master, row.Generation)))
			return
		}
	}
}

// releaseHardwareVTEPClaim lets h's claim go (best effort, bounded).
func (s *Server) releaseHardwareVTEPClaim(key string, gen uint64, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if ok, err := s.dir.ReleaseKey(ctx, key, gen); err != nil {
		log.Warn("releasing the hardware VTEP's claim failed: another replica takes it once this one's heartbeat times out", zap.Error(err))
	} else if ok {
		s.met.claims.WithLabelValues(claimReleased).Inc()
		log.Info("hardware VTEP claim released")
	}
}

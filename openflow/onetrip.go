package openflow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// This file is the incremental path's wire side: one round trip per update.
// A reconcile against a dump keeps Bundle's three (open, adds + barrier,
// commit), which let it discard a bundle whose add failed; an incremental
// update to a thousand switches cannot afford them, since each round trip
// waits for the busiest switch's reply.
//
// What OVS does that this relies on (checked against ovs-vswitchd in
// onetrip_ovs_test.go): a connection's messages are handled in order, so
// the reply to the last message of a write comes after the error replies
// to all before it; a bundle-add the switch rejects on arrival (it cannot
// decode it) is left out of the bundle, which a commit then applies without
// it; a flow-mod refused while the bundle is committed fails the commit,
// which changes nothing, the refused add's error coming first. The price
// of the one trip is that a rejected flow-mod is known only after the rest
// was applied: undo then reverts it (that costs round trips, but only when
// something is wrong).

// oneTripOp encodes op k of an update with xid: as a plain flow-mod when
// bundle is false, else as a bundle-add of bundle id.
type oneTripOp func(b []byte, k int, xid uint32, bundle bool, id uint32) ([]byte, error)

// sendOneTrip applies n flow-mods in one write and one wait. Flow-mods of
// one kind (all adds, which replace a flow of the same Key in one step, or
// all deletes) need no bundle: they go plain, followed by a barrier. Deletes
// and adds together go as a bundle, open, adds and commit pipelined, so
// that no packet sees a flow deleted and its successor not yet added.
// what(k) names op k in errors.
func (s *Switch) sendOneTrip(ctx context.Context, n int, mixed bool, enc oneTripOp, what func(int) string) error {
	if !mixed {
		return s.sendPlain(ctx, n, enc, what)
	}
	return s.sendPipelinedBundle(ctx, n, enc, what)
}

// sendPlain writes the flow-mods and a barrier and waits for its reply.
func (s *Switch) sendPlain(ctx context.Context, n int, enc oneTripOp, what func(int) string) error {
	last, errs, err := s.conn.Exchange(ctx, n,
		func(b []byte, k int, xid uint32) ([]byte, error) { return enc(b, k, xid, false, 0) },
		func(b []byte, xid uint32, encErr error) []byte {
			if encErr != nil { // send none of the batch that is still unsent
				b = b[:0]
			}
			return ofconn.AppendBarrier(b, xid)
		})
	if err != nil {
		return fmt.Errorf("sending %d flow-mods: %w", n, err)
	}
	if len(errs) == n { // a slave, say: nothing was applied
		return fmt.Errorf("switch rejected all %d flow-mods, nothing was changed: %w", n, joinErrs(errs, what))
	}
	if len(errs) > 0 {
		return partialOf(errs, 0, fmt.Errorf("switch rejected %d of %d flow-mods and applied the others: %w", len(errs), n, joinErrs(errs, what)))
	}
	if last.Type != ofconn.TypeBarrierReply {
		return fmt.Errorf("barrier after %d flow-mods: %w", n, replyErr(last))
	}
	return nil
}

// sendPipelinedBundle writes a bundle's open, its adds and its commit at
// once and waits for the commit's reply. Message 0 is the open, message
// k+1 op k.
func (s *Switch) sendPipelinedBundle(ctx context.Context, n int, enc oneTripOp, what func(int) string) error {
	id := s.bundleID.Add(1)
	last, errs, err := s.conn.Exchange(ctx, n+1,
		func(b []byte, i int, xid uint32) ([]byte, error) {
			if i == 0 {
				return ofcodec.AppendBundleControl(b, xid, id, ofcodec.BundleOpen, ofcodec.BundleAtomic), nil
			}
			return enc(b, i-1, xid, true, id)
		},
		func(b []byte, xid uint32, encErr error) []byte {
			typ := ofcodec.BundleCommit
			if encErr != nil {
				typ = ofcodec.BundleDiscard
			}
			return ofcodec.AppendBundleControl(b, xid, id, typ, ofcodec.BundleAtomic)
		})
	if err != nil {
		return fmt.Errorf("sending bundle %d of %d flow-mods (nothing was changed unless the switch committed it): %w", id, n, err)
	}
	name := func(i int) string {
		if i == 0 {
			return fmt.Sprintf("opening bundle %d", id)
		}
		return what(i - 1)
	}
	committed := isBundleReply(last, ofcodec.BundleCommitReply, id)
	if len(errs) > 0 && errs[0].Index == 0 && !committed { // a slave, say: every message refused
		return fmt.Errorf("opening bundle %d for %d flow-mods (nothing was changed): %w", id, n, errs[0].Err)
	}
	switch {
	case committed && len(errs) == 0:
		return nil
	case committed:
		// Rejected on arrival, the adds were left out of a bundle the
		// switch then committed: it holds part of the change.
		return partialOf(errs, 1, fmt.Errorf("switch rejected %d of %d flow-mods of bundle %d and committed the others: %w", len(errs), n, id, joinErrs(errs, name)))
	case len(errs) > 0:
		return fmt.Errorf("switch rejected %d of %d flow-mods, nothing was changed: %w", len(errs), n, joinErrs(errs, name))
	}
	return fmt.Errorf("committing bundle %d of %d flow-mods (nothing was changed): %w", id, n, replyErr(last))
}

// isBundleReply reports whether m is a bundle control reply of type typ for
// bundle id.
func isBundleReply(m ofconn.Message, typ uint16, id uint32) bool {
	exp, expType, ok := m.Experimenter()
	return ok && exp == ofconn.ExperimenterONF && expType == 2300 && len(m.Raw) >= 24 &&
		binary.BigEndian.Uint32(m.Raw[16:]) == id && binary.BigEndian.Uint16(m.Raw[20:]) == typ
}

// replyErr is the error a reply that is not the one awaited stands for.
func replyErr(m ofconn.Message) error {
	if m.Type == ofconn.TypeError {
		if e, err := ofconn.DecodeError(m.Raw); err == nil {
			return e
		}
	}
	return fmt.Errorf("unexpected reply of type %d", m.Type)
}

// joinErrs names each rejected message by what(its index).
func joinErrs(errs []ofconn.BatchError, what func(int) string) error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s: %w", what(e.Index), e.Err)
	}
	return errors.Join(out...)
}

// partialError is an update the switch applied but for the flow-mods it
// rejected.
type partialError struct {
	rejected map[int]bool // by index into the update
	err      error
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

// partialOf is the partialError of errs, whose indexes are the update's
// plus skip (a bundle's open is message 0).
func partialOf(errs []ofconn.BatchError, skip int, err error) *partialError {
	pe := &partialError{rejected: map[int]bool{}, err: err}
	for _, e := range errs {
		pe.rejected[e.Index-skip] = true
	}
	return pe
}

// undo reverts what a partly applied update changed, as one bundle (with
// Bundle's barrier, so that nothing of it is committed unless all is):
// installed flows it deleted or replaced are added back with their exact
// cookies, flows it added are deleted. replaced maps a modified desired
// flow to the installed one it replaced. The error returned says whether
// the switch is back where it was.
func (s *Switch) undo(ctx context.Context, ops []flowOp, pe *partialError, desired, installed []flows.Flow, replaced map[int]int) error {
	var inv []flows.Flow
	var cmds []uint8
	for k, op := range ops {
		if pe.rejected[k] {
			continue
		}
		m, ok := replaced[op.i]
		switch {
		case op.delete:
			inv, cmds = append(inv, installed[op.i]), append(cmds, ofcodec.CommandAdd)
		case ok:
			inv, cmds = append(inv, installed[m]), append(cmds, ofcodec.CommandAdd)
		default:
			inv, cmds = append(inv, desired[op.i]), append(cmds, ofcodec.CommandDeleteStrict)
		}
	}
	if len(inv) == 0 {
		return fmt.Errorf("%w: nothing was changed", pe)
	}
	err := s.bundleEncoded(ctx, len(inv),
		func(b []byte, k int, xid, id uint32) ([]byte, error) {
			return ofcodec.AppendBundleAdd(b, xid, id, ofcodec.BundleAtomic, inv[k], cmds[k])
		},
		func(k int) string { return "undoing with " + inv[k].String() })
	if err != nil {
		return fmt.Errorf("%w; undoing the %d flow-mods applied failed, the switch holds part of the update: %w", pe, len(inv), err)
	}
	return fmt.Errorf("%w; those %d were undone: nothing was changed", pe, len(inv))
}

package openflow

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// This file is the reconcile's fast path: flows compared in wire form
// (diff.go), the difference encoded straight into bundle-adds and written
// while it is encoded, so the switch starts on the first flow-mods at once.

// reconcileWire is Reconcile. The desired flows are encoded and checked
// while the switch dumps its own, and each part of the dump is paired with
// them as it arrives: little is left to do after the last part.
func (s *Switch) reconcileWire(ctx context.Context, desired []flows.Flow, cookie, mask uint64) (Result, error) {
	start := time.Now()
	lm := newLiveMatch(desired, cookie, mask)
	raw, err := s.dumpRawParts(ctx, cookie, mask, len(desired), lm.add)
	want, have, p, checkErr := lm.finish(raw)
	if checkErr != nil {
		return Result{}, checkErr
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading installed flows: %w", err)
	}
	res, err := s.applyPairing(ctx, start, desired, want, have, p,
		// The raw match deletes exactly the flow the switch holds, also
		// one whose match flows.Match cannot hold.
		func(b []byte, xid, bundle uint32, i int) ([]byte, error) {
			return ofcodec.AppendDeleteStrict(b, xid, bundle, ofcodec.BundleAtomic, raw[i])
		})
	if err == nil && res.FlowMods > 0 {
		s.log.Debug("flows reconciled", zap.Int("added", res.Added), zap.Int("modified", res.Modified),
			zap.Int("deleted", res.Deleted), zap.Int("text_compared", p.rendered), zap.Duration("took", res.Duration))
	}
	return res, err
}

// liveMatch pairs dumped flows with the desired ones while the dump
// arrives: the desired flows are put in wire form and checked on a
// goroutine of their own meanwhile, and each part of the dump is paired as
// soon as they are. Only the dump's goroutine calls add and finish.
type liveMatch struct {
	ready    chan struct{} // closed when want and checkErr are set
	want     flowSide
	checkErr error
	idx      *cookieIndex // built with want
	have     []wireFlow   // the dumped flows so far
	usedI    []bool       // of have[:len(usedI)], which are paired
}

func newLiveMatch(desired []flows.Flow, cookie, mask uint64) *liveMatch {
	n := len(desired) + len(desired)/16 // a switch holds about what is desired
	m := &liveMatch{ready: make(chan struct{}), have: make([]wireFlow, 0, n), usedI: make([]bool, 0, n)}
	go func() {
		defer close(m.ready)
		m.want = encodeSide(desired, true)
		m.checkErr = checkWire(desired, m.want, cookie, mask)
		if m.checkErr == nil {
			// Built here, not at the first reply part: OVS composes the
			// whole dump before it sends any, and from then on the
			// pairing is the critical path.
			m.idx = newCookieIndex(m.want)
		}
	}()
	return m
}

// add takes the flows of one part of the dump.
func (m *liveMatch) add(raw []ofcodec.RawFlow) {
	for _, r := range raw {
		m.have = append(m.have, wireOf(r))
	}
	select {
	case <-m.ready:
		m.catchUp()
	default: // the desired flows are not ready: the next part pairs these
	}
}

// catchUp pairs the dumped flows not yet paired; the desired side is ready.
func (m *liveMatch) catchUp() {
	if m.checkErr != nil || len(m.usedI) == len(m.have) {
		return
	}
	if m.idx == nil {
		m.idx = newCookieIndex(m.want)
	}
	m.usedI = m.idx.matchAll(m.have[len(m.usedI):], m.usedI)
}

// finish waits for the desired side, pairs what is left in wire form and
// the rest by text (pairSides' result), or returns checkWire's error.
func (m *liveMatch) finish(raw []ofcodec.RawFlow) (want, have flowSide, p pairing, err error) {
	<-m.ready
	if m.checkErr != nil {
		return flowSide{}, flowSide{}, pairing{}, m.checkErr
	}
	m.catchUp()
	have = dumpSideOf(raw)
	have.bin = m.have
	restD := allOf(m.want.len())
	if m.idx != nil {
		restD = unused(m.idx.usedD)
	}
	return m.want, have, pairRest(m.want, have, restD, unused(m.usedI)), nil
}

// reconcileKnown is ReconcileKnown: the diff of Reconcile, sent in one
// round trip (sendOneTrip).
func (s *Switch) reconcileKnown(ctx context.Context, desired, installed []flows.Flow) (Result, error) {
	start := time.Now()
	return s.applyKnown(ctx, start, desired, installed, encodeSide(desired, true), encodeSide(installed, true))
}

// applyKnown is reconcileKnown with both sides in wire form (want and
// have); start is when the update began, for Result.Duration.
func (s *Switch) applyKnown(ctx context.Context, start time.Time, desired, installed []flows.Flow, want, have flowSide) (Result, error) {
	p := pairSides(want, have)
	res := Result{Diff: p.diffOf(want, have), Added: len(p.add), Modified: len(p.modify), Deleted: len(p.delete)}
	if res.Diff.Empty() {
		res.Duration = time.Since(start)
		return res, nil
	}
	ops := p.ops(nil) // flow values are never lossy
	if err := encodable(ops, desired, installed, want, have); err != nil {
		return res, err
	}
	enc := knownEncoder(ops, desired, installed, want)
	what := func(k int) string {
		if op := ops[k]; op.delete {
			return "deleting " + installed[op.i].String()
		}
		return ops[k].verb + desired[ops[k].i].String()
	}
	mixed := len(p.delete) > 0 && len(p.add)+len(p.modify) > 0
	if err := s.sendOneTrip(ctx, len(ops), mixed, enc, what); err != nil {
		var pe *partialError
		if errors.As(err, &pe) {
			replaced := make(map[int]int, len(p.modify))
			for _, m := range p.modify {
				replaced[m.desired] = m.installed
			}
			err = s.undo(ctx, ops, pe, desired, installed, replaced)
		}
		return res, err
	}
	res.FlowMods = len(ops)
	res.Duration = time.Since(start)
	return res, nil
}

// deleteEncoder appends the strict delete of installed flow i as a
// bundle-add.
type deleteEncoder func(b []byte, xid, bundle uint32, i int) ([]byte, error)

// applyPairing diffs the sides as ComputeDiff does (p is their pairing)
// and sends the difference in one atomic bundle; start is when the
// reconcile began, for Result.Duration. A desired flow in wire form is sent
// as it was compared.
func (s *Switch) applyPairing(ctx context.Context, start time.Time, desired []flows.Flow, want, have flowSide, p pairing, del deleteEncoder) (Result, error) {
	res := Result{Diff: p.diffOf(want, have), Added: len(p.add), Modified: len(p.modify), Deleted: len(p.delete)}
	if res.Diff.Empty() {
		res.Duration = time.Since(start)
		return res, nil
	}
	ops := p.ops(have.lossy)
	enc := func(b []byte, k int, xid, bundle uint32) ([]byte, error) {
		op := ops[k]
		if op.delete {
			return del(b, xid, bundle, op.i)
		}
		w := &want.bin[op.i]
		if !w.ok { // AppendBundleAdd says why it has no wire form
			return ofcodec.AppendBundleAdd(b, xid, bundle, ofcodec.BundleAtomic, desired[op.i], ofcodec.CommandAdd)
		}
		m := ofcodec.ModOf(desired[op.i], ofcodec.CommandAdd, w.match, w.instr)
		return ofcodec.AppendBundleAddMod(b, xid, bundle, ofcodec.BundleAtomic, m)
	}
	// Texts are rendered only to name a flow-mod the switch rejected.
	what := func(k int) string {
		if op := ops[k]; op.delete {
			return "deleting " + have.flow(op.i).String()
		}
		return ops[k].verb + desired[ops[k].i].String()
	}
	if err := s.bundleEncoded(ctx, len(ops), enc, what); err != nil {
		return res, err
	}
	res.FlowMods = len(ops)
	res.Duration = time.Since(start)
	return res, nil
}

// knownEncoder encodes op k of an update as a plain flow-mod or as a
// bundle-add: a strict delete of an installed flow, or the add of a desired
// one, sent as it was compared in wire form.
func knownEncoder(ops []flowOp, desired, installed []flows.Flow, want flowSide) oneTripOp {
	return func(b []byte, k int, xid uint32, bundle bool, id uint32) ([]byte, error) {
		op := ops[k]
		if op.delete {
			if bundle {
				return ofcodec.AppendBundleAdd(b, xid, id, ofcodec.BundleAtomic, installed[op.i], ofcodec.CommandDeleteStrict)
			}
			return ofcodec.AppendFlowMod(b, xid, installed[op.i], ofcodec.CommandDeleteStrict)
		}
		w := &want.bin[op.i]
		switch {
		case !w.ok && bundle: // the encoder says why it has no wire form
			return ofcodec.AppendBundleAdd(b, xid, id, ofcodec.BundleAtomic, desired[op.i], ofcodec.CommandAdd)
		case !w.ok:
			return ofcodec.AppendFlowMod(b, xid, desired[op.i], ofcodec.CommandAdd)
		case bundle:
			return ofcodec.AppendBundleAddMod(b, xid, id, ofcodec.BundleAtomic, ofcodec.ModOf(desired[op.i], ofcodec.CommandAdd, w.match, w.instr))
		}
		return ofcodec.AppendMod(b, xid, ofcodec.ModOf(desired[op.i], ofcodec.CommandAdd, w.match, w.instr))
	}
}

// encodable checks, before anything is sent, that every flow-mod of ops
// encodes: a flow without a wire form says why (the codec's error).
func encodable(ops []flowOp, desired, installed []flows.Flow, want, have flowSide) error {
	for _, op := range ops {
		side, fl, cmd := want, desired, uint8(ofcodec.CommandAdd)
		if op.delete {
			side, fl, cmd = have, installed, ofcodec.CommandDeleteStrict
		}
		if side.bin[op.i].ok {
			continue
		}
		if _, err := ofcodec.AppendFlowMod(nil, 0, fl[op.i], cmd); err != nil {
			return fmt.Errorf("nothing was sent: %w", err)
		}
	}
	return nil
}

// flowOp is one flow-mod of a reconcile: the strict delete of installed
// flow i, or the add of desired flow i (verb says why, for errors).
type flowOp struct {
	delete bool
	i      int
	verb   string
}

// ops lists p in the order one bundle applies it, as flowMods does: the
// strict deletes, then a re-add per modified flow (after a delete of a lossy
// installed one, which the add would not replace), then the adds.
func (p pairing) ops(lossy func(int) bool) []flowOp {
	ops := make([]flowOp, 0, len(p.delete)+len(p.modify)+len(p.add))
	for _, i := range p.delete {
		ops = append(ops, flowOp{delete: true, i: i})
	}
	for _, m := range p.modify {
		if lossy != nil && lossy(m.installed) {
			ops = append(ops, flowOp{delete: true, i: m.installed})
		}
		ops = append(ops, flowOp{i: m.desired, verb: "modifying "})
	}
	for _, i := range p.add {
		ops = append(ops, flowOp{i: i, verb: "adding "})
	}
	return ops
}

// checkWire is checkDesired on flows in wire form (encodeSide checked each
// with ofcodec.Check): it rejects what a reconcile could never converge on
// (a flow outside the cookie range, two flows of one Key, a flow the codec
// rejects), and renders texts only to name them.
func checkWire(desired []flows.Flow, want flowSide, cookie, mask uint64) error {
	var errs []error
	seed := maphash.MakeSeed()
	keys := newCookieTable(len(desired)) // by a hash of the Key
	for i := range desired {
		f := &desired[i]
		if f.Cookie&mask != cookie&mask {
			errs = append(errs, fmt.Errorf("flow %q: cookie %#x is outside the reconciled range %#x/%#x", f.String(), f.Cookie, cookie&mask, mask))
		}
		w := &want.bin[i]
		if !w.ok { // encodeSide found why: say it
			err := ofcodec.Check(*f)
			if err == nil {
				_, err = ofcodec.AppendFlowMod(nil, 0, *f, ofcodec.CommandAdd)
			}
			if err == nil {
				err = fmt.Errorf("flow %q cannot be encoded", f.String())
			}
			errs = append(errs, err)
			continue
		}
		// The encoder writes a match's fields in one order: the same Key
		// is the same bytes.
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteByte(w.table)
		h.WriteByte(byte(w.priority >> 8))
		h.WriteByte(byte(w.priority))
		h.Write(w.match)
		k := h.Sum64()
		j := keys.get(k)
		switch {
		case j < 0:
			keys.swap(k, int32(i))
		case want.bin[j].table == w.table && want.bin[j].priority == w.priority && sameOXM(want.bin[j].match, w.match):
			errs = append(errs, fmt.Errorf("flows %q and %q have the same table, priority and match", desired[j].String(), f.String()))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("desired flows: %w", errors.Join(errs...))
	}
	return nil
}

// dumpRaw reads the flows whose cookie matches cookie under mask, in all
// tables, each checked but decoded no further than RawFlow.
func (s *Switch) dumpRaw(ctx context.Context, cookie, mask uint64) ([]ofcodec.RawFlow, error) {
	s.dumps.Add(1)
	parts, err := s.conn.RequestMultipart(ctx, flowStatsRequest(cookie, mask))
	if err != nil {
		return nil, fmt.Errorf("flow stats request: %w", err)
	}
	n := 0
	for _, p := range parts {
		if len(p.Raw) > 16 {
			n += ofcodec.CountFlowStats(p.Raw[16:])
		}
	}
	out := make([]ofcodec.RawFlow, 0, n)
	for i, p := range parts {
		if out, _, err = ofcodec.ScanFlowStatsReply(p.Raw, out); err != nil {
			return nil, fmt.Errorf("flow stats reply part %d: %w", i, err)
		}
	}
	return out, nil
}

// dumpRawParts is dumpRaw handing the flows of each part of the reply to
// each as the part arrives; expect is about how many flows there are.
func (s *Switch) dumpRawParts(ctx context.Context, cookie, mask uint64, expect int, each func([]ofcodec.RawFlow)) ([]ofcodec.RawFlow, error) {
	s.dumps.Add(1)
	out := make([]ofcodec.RawFlow, 0, expect+expect/16+16)
	var partErr error
	parts := 0
	err := s.conn.RequestMultipartParts(ctx, flowStatsRequest(cookie, mask), func(m ofconn.Message) error {
		start := len(out)
		if out, _, partErr = ofcodec.ScanFlowStatsReply(m.Raw, out); partErr != nil {
			partErr = fmt.Errorf("flow stats reply part %d: %w", parts, partErr)
			return partErr
		}
		parts++
		each(out[start:])
		return nil
	})
	switch {
	case partErr != nil:
		return nil, partErr
	case err != nil:
		return nil, fmt.Errorf("flow stats request: %w", err)
	}
	return out, nil
}

// flowStatsRequest asks for the flows whose cookie matches cookie under
// mask, in all tables.
func flowStatsRequest(cookie, mask uint64) util.Message {
	req := openflow13.NewFlowStatsRequest()
	req.TableId = openflow13.OFPTT_ALL
	req.Cookie, req.CookieMask = cookie&mask, mask
	mp := &openflow13.MultipartRequest{Header: openflow13.NewOfp13Header(), Type: openflow13.MultipartType_Flow, Body: req}
	mp.Header.Type = openflow13.Type_MultiPartRequest
	return mp
}

// bundleEncoded applies n flow-mods atomically as Bundle does, each encoded
// into its bundle-add by enc as it is sent; what(i) names flow-mod i in
// errors.
func (s *Switch) bundleEncoded(ctx context.Context, n int, enc func(b []byte, i int, xid, bundle uint32) ([]byte, error), what func(int) string) error {
	id := s.bundleID.Add(1)
	if err := s.bundleControl(ctx, id, openflow13.OFPBCT_OPEN_REQUEST, openflow13.OFPBCT_OPEN_REPLY); err != nil {
		return fmt.Errorf("opening bundle %d: %w", id, err)
	}
	failed, err := s.conn.SendEncoded(ctx, n, func(b []byte, i int, xid uint32) ([]byte, error) { return enc(b, i, xid, id) })
	if err == nil && len(failed) == 0 {
		if err := s.bundleControl(ctx, id, openflow13.OFPBCT_COMMIT_REQUEST, openflow13.OFPBCT_COMMIT_REPLY); err != nil {
			return fmt.Errorf("committing bundle %d of %d flow-mods (nothing was changed): %w", id, n, err)
		}
		return nil
	}
	// The bundle stays open after a failed add: discard it.
	if derr := s.bundleControl(ctx, id, openflow13.OFPBCT_DISCARD_REQUEST, openflow13.OFPBCT_DISCARD_REPLY); derr != nil {
		s.log.Warn("discarding a failed bundle", zap.Uint32("bundle", id), zap.Error(derr))
	}
	if err != nil {
		return fmt.Errorf("sending bundle %d: %w", id, err)
	}
	errs := make([]error, len(failed))
	for i, f := range failed {
		errs[i] = fmt.Errorf("%s: %w", what(f.Index), f.Err)
	}
	return fmt.Errorf("switch rejected %d of %d flow-mods, nothing was changed: %w", len(failed), n, errors.Join(errs...))
}

// bundleAddOf marshals msg as a bundle-add of bundle id with xid (the inner
// message gets the same xid).
func bundleAddOf(b []byte, msg util.Message, xid, id uint32) ([]byte, error) {
	m, err := ofconn.Marshal(openflow13.NewBundleAdd(&openflow13.BundleAdd{BundleID: id, Flags: openflow13.OFPBCT_ATOMIC, Message: msg}), xid)
	if err != nil {
		return b, err
	}
	return append(b, m...), nil
}

// Package openflow programs OpenFlow switches: dump the flows a cookie
// range owns, diff them against the desired ones, and apply the difference
// in one atomic bundle.
package openflow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Switch is one OpenFlow 1.3 switch (a bridge) and what can be done to its
// flows.
type Switch struct {
	conn     *ofconn.Conn
	log      *zap.Logger
	bundleID atomic.Uint32
	dumps    atomic.Uint64 // flow stats requests sent by DumpDecoded
}

// Dial connects to a switch ("unix:PATH" for a bridge's management socket,
// "tcp:IP:PORT") and performs the OpenFlow handshake.
func Dial(ctx context.Context, target string, log *zap.Logger) (*Switch, error) {
	if log == nil {
		log = zap.NewNop()
	}
	c, err := ofconn.Dial(ctx, target, log)
	if err != nil {
		return nil, err
	}
	return New(c, log), nil
}

// New wraps a connection that has completed its handshake.
func New(c *ofconn.Conn, log *zap.Logger) *Switch {
	if log == nil {
		log = zap.NewNop()
	}
	return &Switch{conn: c, log: log}
}

// Conn is the switch's OpenFlow connection.
func (s *Switch) Conn() *ofconn.Conn { return s.conn }

// Dumps counts the flow stats requests DumpDecoded has sent (tests check
// that incremental updates send none).
func (s *Switch) Dumps() uint64 { return s.dumps.Load() }

// Close closes the connection.
func (s *Switch) Close() error { return s.conn.Close() }

// DumpDecoded reads the flows whose cookie matches cookie under mask, in all
// tables, with the raw match of each.
func (s *Switch) DumpDecoded(ctx context.Context, cookie, mask uint64) ([]ofcodec.Decoded, error) {
	req := openflow13.NewFlowStatsRequest()
	req.TableId = openflow13.OFPTT_ALL
	req.Cookie, req.CookieMask = cookie&mask, mask
	mp := &openflow13.MultipartRequest{Header: openflow13.NewOfp13Header(), Type: openflow13.MultipartType_Flow, Body: req}
	mp.Header.Type = openflow13.Type_MultiPartRequest
	s.dumps.Add(1)
	parts, err := s.conn.RequestMultipart(ctx, mp)
	if err != nil {
		return nil, fmt.Errorf("flow stats request: %w", err)
	}
	var out []ofcodec.Decoded
	for i, p := range parts {
		fl, _, err := ofcodec.DecodeFlowStatsReply(p.Raw)
		if err != nil {
			return nil, fmt.Errorf("flow stats reply part %d: %w", i, err)
		}
		out = append(out, fl...)
	}
	return out, nil
}

// Dump reads the flows whose cookie matches cookie under mask, in all tables.
func (s *Switch) Dump(ctx context.Context, cookie, mask uint64) ([]flows.Flow, error) {
	d, err := s.DumpDecoded(ctx, cookie, mask)
	if err != nil {
		return nil, err
	}
	out := make([]flows.Flow, len(d))
	for i := range d {
		out[i] = d[i].Flow
	}
	return out, nil
}

// Install adds fl (replacing flows of the same Key), not atomically: the
// flow-mods then a barrier. Every flow the switch rejected is named in the
// error.
func (s *Switch) Install(ctx context.Context, fl []flows.Flow) error {
	mods := make([]util.Message, len(fl))
	for i, f := range fl {
		fm, err := ofcodec.FlowMod(f, ofcodec.CommandAdd)
		if err != nil {
			return err
		}
		mods[i] = fm
	}
	failed, err := s.conn.SendBatch(ctx, mods)
	if err != nil {
		return fmt.Errorf("installing %d flows: %w", len(fl), err)
	}
	if len(failed) > 0 {
		errs := make([]error, len(failed))
		for i, f := range failed {
			errs[i] = fmt.Errorf("flow %q: %w", fl[f.Index].String(), f.Err)
		}
		return fmt.Errorf("installing %d flows, the switch rejected %d: %w", len(fl), len(failed), errors.Join(errs...))
	}
	return nil
}

// Result says what a Reconcile did.
type Result struct {
	Diff     Diff
	FlowMods int // flow-mods sent (in one bundle); 0 when nothing changed
	Added    int
	Modified int
	Deleted  int
	Duration time.Duration
}

// Reconcile makes the flows whose cookie matches cookie under mask equal to
// desired: it dumps them, diffs and applies the difference in one atomic
// bundle (all of it or, on any error, none). Flows outside the cookie range
// (other owners', learned ones) are never touched; deletes are strict and
// carry the installed flow's exact cookie. A modified flow is re-added
// (OpenFlow 1.3's modify keeps the old cookie). Nothing to change sends
// nothing.
func (s *Switch) Reconcile(ctx context.Context, desired []flows.Flow, cookie, mask uint64) (Result, error) {
	start := time.Now()
	want := texts(desired)
	if err := checkDesired(desired, want, cookie, mask); err != nil {
		return Result{}, err
	}
	installed, err := s.DumpDecoded(ctx, cookie, mask)
	if err != nil {
		return Result{}, fmt.Errorf("reading installed flows: %w", err)
	}
	inst := make([]flows.Flow, len(installed))
	for i := range installed {
		inst[i] = installed[i].Flow
	}
	instT := texts(inst)
	p := pair(want, instT)
	res := Result{Diff: p.diff(desired, inst), Added: len(p.add), Modified: len(p.modify), Deleted: len(p.delete)}
	if res.Diff.Empty() {
		res.Duration = time.Since(start)
		return res, nil
	}

	// The texts were rendered once for the diff; the error descriptions
	// reuse them (100,000 flows rendered again cost as much as encoding).
	mods := make([]util.Message, 0, len(p.delete)+2*len(p.modify)+len(p.add))
	what := make([]string, 0, cap(mods)) // the flow each mod is about, for errors
	del := func(i int) error {
		fm, err := ofcodec.DeleteStrict(installed[i])
		if err != nil {
			return err
		}
		mods, what = append(mods, fm), append(what, "deleting "+instT[i].text)
		return nil
	}
	add := func(i int, verb string) error {
		fm, err := ofcodec.FlowMod(desired[i], ofcodec.CommandAdd)
		if err != nil {
			return err
		}
		mods, what = append(mods, fm), append(what, verb+want[i].text)
		return nil
	}
	for _, i := range p.delete {
		if err := del(i); err != nil {
			return res, err
		}
	}
	for _, m := range p.modify {
		// A flow whose real match flows.Match cannot hold only looks like
		// the desired one's Key: delete it, as the add will not replace it.
		if installed[m.installed].MatchLossy {
			if err := del(m.installed); err != nil {
				return res, err
			}
		}
		if err := add(m.desired, "modifying "); err != nil {
			return res, err
		}
	}
	for _, i := range p.add {
		if err := add(i, "adding "); err != nil {
			return res, err
		}
	}
	if err := s.Bundle(ctx, mods, what); err != nil {
		return res, err
	}
	res.FlowMods = len(mods)
	res.Duration = time.Since(start)
	s.log.Debug("flows reconciled", zap.Int("added", res.Added), zap.Int("modified", res.Modified),
		zap.Int("deleted", res.Deleted), zap.Duration("took", res.Duration))
	return res, nil
}

// checkDesired rejects what a reconcile could never converge on: a flow
// outside the cookie range (the next dump would not see it), two flows of
// one Key (the switch holds one), or a flow the codec rejects.
func checkDesired(desired []flows.Flow, t []flowText, cookie, mask uint64) error {
	var errs []error
	keys := make(map[string]int, len(desired))
	for i, f := range desired {
		if f.Cookie&mask != cookie&mask {
			errs = append(errs, fmt.Errorf("flow %q: cookie %#x is outside the reconciled range %#x/%#x", t[i].text, f.Cookie, cookie&mask, mask))
		}
		if j, dup := keys[t[i].key]; dup {
			errs = append(errs, fmt.Errorf("flows %q and %q have the same table, priority and match", t[j].text, t[i].text))
		} else {
			keys[t[i].key] = i
		}
		if err := ofcodec.Check(f); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("desired flows: %w", errors.Join(errs...))
	}
	return nil
}

// Bundle applies mods atomically with the ONF bundle extension: open, add
// each, barrier, then commit — or discard if the switch rejected any add.
// what[i], when given, names mods[i] in errors.
func (s *Switch) Bundle(ctx context.Context, mods []util.Message, what []string) error {
	id := s.bundleID.Add(1)
	if err := s.bundleControl(ctx, id, openflow13.OFPBCT_OPEN_REQUEST, openflow13.OFPBCT_OPEN_REPLY); err != nil {
		return fmt.Errorf("opening bundle %d: %w", id, err)
	}
	adds := make([]util.Message, len(mods))
	for i, m := range mods {
		adds[i] = openflow13.NewBundleAdd(&openflow13.BundleAdd{BundleID: id, Flags: openflow13.OFPBCT_ATOMIC, Message: m})
	}
	failed, err := s.conn.SendBatch(ctx, adds)
	if err == nil && len(failed) == 0 {
		if err := s.bundleControl(ctx, id, openflow13.OFPBCT_COMMIT_REQUEST, openflow13.OFPBCT_COMMIT_REPLY); err != nil {
			return fmt.Errorf("committing bundle %d of %d flow-mods (nothing was changed): %w", id, len(mods), err)
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
		name := fmt.Sprintf("flow-mod %d", f.Index)
		if f.Index < len(what) {
			name = what[f.Index]
		}
		errs[i] = fmt.Errorf("%s: %w", name, f.Err)
	}
	return fmt.Errorf("switch rejected %d of %d flow-mods, nothing was changed: %w", len(failed), len(mods), errors.Join(errs...))
}

// bundleControl sends one bundle control request and checks the reply type.
func (s *Switch) bundleControl(ctx context.Context, id uint32, typ, want uint16) error {
	msg := openflow13.NewBundleControl(&openflow13.BundleControl{BundleID: id, Type: typ, Flags: openflow13.OFPBCT_ATOMIC})
	reply, err := s.conn.Request(ctx, msg)
	if err != nil {
		return err
	}
	exp, expType, ok := reply.Experimenter()
	if !ok || exp != ofconn.ExperimenterONF || expType != 2300 || len(reply.Raw) < 24 {
		return fmt.Errorf("unexpected reply of type %d to a bundle control request", reply.Type)
	}
	if got, gotID := binary.BigEndian.Uint16(reply.Raw[20:]), binary.BigEndian.Uint32(reply.Raw[16:]); got != want || gotID != id {
		return fmt.Errorf("bundle control reply of type %d for bundle %d, want type %d for bundle %d", got, gotID, want, id)
	}
	return nil
}

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

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
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
	raw, err := s.dumpRaw(ctx, cookie, mask)
	if err != nil {
		return nil, err
	}
	out := make([]ofcodec.Decoded, len(raw))
	for i, r := range raw {
		out[i] = r.Decode()
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
	// Checked first, so a flow the codec rejects stops the batch before
	// anything is sent.
	for _, f := range fl {
		if err := ofcodec.Check(f); err != nil {
			return err
		}
	}
	failed, err := s.conn.SendEncoded(ctx, len(fl), func(b []byte, i int, xid uint32) ([]byte, error) {
		return ofcodec.AppendFlowMod(b, xid, fl[i], ofcodec.CommandAdd)
	})
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
	return s.reconcileWire(ctx, desired, cookie, mask)
}

// ReconcileKnown is Reconcile for a caller that knows, without a dump, which
// flows the switch holds of the ones it means to change (what its last
// reconcile left): it makes installed become desired with the same diff as
// Reconcile, and sends no flow stats request. The difference goes in one
// round trip: adds only (a modified flow is re-added, which replaces it in
// one step) or deletes only as plain flow-mods and a barrier; deletes and
// adds together as one atomic bundle whose open, adds and commit are
// written at once. A flow-mod the switch rejects fails the update and is
// named in the error. OVS applies the rest of a plain batch, and commits a
// bundle without an add it rejected on arrival (one it rejects at the
// commit fails the commit): what it applied is then undone with one more
// atomic bundle, and the error says whether that worked, so a failed
// update leaves the switch as it was but for a moment.
// Deletes are strict with each installed flow's exact cookie; flows the
// switch holds outside installed are never touched. Each side is expected
// to have distinct Keys (OpenFlow holds one flow per Key), as for
// ComputeDiff. Nothing to change sends nothing.
func (s *Switch) ReconcileKnown(ctx context.Context, desired, installed []flows.Flow) (Result, error) {
	return s.reconcileKnown(ctx, desired, installed)
}

// Bundle applies mods atomically with the ONF bundle extension: open, add
// each, barrier, then commit — or discard if the switch rejected any add.
// what[i], when given, names mods[i] in errors.
func (s *Switch) Bundle(ctx context.Context, mods []util.Message, what []string) error {
	return s.bundleEncoded(ctx, len(mods),
		func(b []byte, i int, xid, bundle uint32) ([]byte, error) { return bundleAddOf(b, mods[i], xid, bundle) },
		func(i int) string {
			if i < len(what) {
				return what[i]
			}
			return fmt.Sprintf("flow-mod %d", i)
		})
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

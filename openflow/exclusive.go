package openflow

import (
	"context"
	"fmt"

	"github.com/contiv/libOpenflow/util"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// Owned says which flows of a bridge someone owns, by cookie: its owners'
// values under a mask. A flow no owner claims is foreign.
type Owned struct {
	Mask   uint64
	Owners []uint64 // cookie values under Mask
}

// Foreign reports whether a flow with this cookie belongs to no owner.
func (o Owned) Foreign(cookie uint64) bool {
	for _, v := range o.Owners {
		if cookie&o.Mask == v&o.Mask {
			return false
		}
	}
	return true
}

// Split sorts dumped flows into those under cookie/mask (what a Reconcile
// of that range diffs) and the foreign ones; flows of the other owners are
// in neither.
func (o Owned) Split(dumped []ofcodec.Decoded, cookie, mask uint64) (ranged, foreign []ofcodec.Decoded) {
	for _, d := range dumped {
		switch {
		case d.Flow.Cookie&mask == cookie&mask:
			ranged = append(ranged, d)
		case o.Foreign(d.Flow.Cookie):
			foreign = append(foreign, d)
		}
	}
	return ranged, foreign
}

// RemoveForeign deletes, in one atomic bundle, every flow of the switch
// that no owner in o claims, each strictly by its raw match, and returns
// them: on a bridge whose flows all have an owner, a flow added by hand
// (ovs-ofctl add-flow, cookie 0) only breaks the pipeline. OpenFlow cannot
// delete "outside a cookie range", so it dumps the whole switch. Nothing
// foreign sends nothing but the dump.
func (s *Switch) RemoveForeign(ctx context.Context, o Owned) ([]flows.Flow, error) {
	all, err := s.DumpDecoded(ctx, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("reading installed flows: %w", err)
	}
	var foreign []flows.Flow
	var mods []util.Message
	var what []string
	for _, d := range all {
		if !o.Foreign(d.Flow.Cookie) {
			continue
		}
		fm, err := ofcodec.DeleteStrict(d)
		if err != nil {
			return nil, err
		}
		foreign = append(foreign, d.Flow)
		mods, what = append(mods, fm), append(what, "deleting foreign flow "+d.Flow.String())
	}
	if len(mods) == 0 {
		return nil, nil
	}
	if err := s.Bundle(ctx, mods, what); err != nil {
		return nil, err
	}
	s.log.Info("foreign flows removed", zap.Int("flows", len(foreign)))
	return foreign, nil
}

package openflow

import (
	"context"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Encoded is a flow with its wire form (match and instructions), made once
// by Encode: an update that sends one MAC's flows to a thousand switches
// encodes them once, not once per switch. It is read-only once made, and
// safe to share between goroutines.
type Encoded struct {
	Flow flows.Flow
	wire wireFlow
}

// Encode puts fl in wire form, in one buffer. A flow the codec rejects is
// kept without one: sending it fails with the codec's reason, as
// ReconcileKnown does.
func Encode(fl []flows.Flow) []Encoded {
	side := encodeSide(fl, true)
	out := make([]Encoded, len(fl))
	for i := range fl {
		out[i] = Encoded{Flow: fl[i], wire: side.bin[i]}
	}
	return out
}

// ReconcileKnownEncoded is ReconcileKnown for flows already in wire form:
// the same diff, sent the same way, without encoding them again.
func (s *Switch) ReconcileKnownEncoded(ctx context.Context, desired, installed []Encoded) (Result, error) {
	start := time.Now()
	d, dw := sideOfEncoded(desired)
	in, iw := sideOfEncoded(installed)
	return s.applyKnown(ctx, start, d, in, dw, iw)
}

// sideOfEncoded is the flows of enc and their side of a diff.
func sideOfEncoded(enc []Encoded) ([]flows.Flow, flowSide) {
	fl := make([]flows.Flow, len(enc))
	bin := make([]wireFlow, len(enc))
	for i := range enc {
		fl[i], bin[i] = enc[i].Flow, enc[i].wire
	}
	return fl, flowSide{bin: bin, flow: func(i int) flows.Flow { return fl[i] }, values: fl}
}

package openflow

import (
	"context"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
)

// TestDumpMatchesWireForm: every kind of flow and the examples' flows, as
// OVS dumps them back, are the same in wire form as they were sent (match
// fields aside, in OVS's order): a no-op reconcile renders none of them.
func TestDumpMatchesWireForm(t *testing.T) {
	env := ovstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sw, err := Dial(ctx, env.Target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	desired := baseFlows(t)
	if _, err := sw.Reconcile(ctx, desired, flows.CookieOwned, flows.CookieOwnerMask); err != nil {
		t.Fatal(err)
	}
	raw, err := sw.dumpRaw(ctx, flows.CookieOwned, flows.CookieOwnerMask)
	if err != nil {
		t.Fatal(err)
	}
	want, have := encodeSide(desired, true), dumpSide(raw)
	p := pairSides(want, have)
	if d := p.diffOf(want, have); !d.Empty() || p.rendered != 0 || len(raw) != len(desired) {
		t.Errorf("%d flows dumped of %d, %d compared as text; diff:\n%s", len(raw), len(desired), p.rendered, d)
	}
}

package openflow

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
)

// TestNoopReconcileSendsNothing: with nothing to change, no bundle is even
// opened (and no flow-mod sent).
func TestNoopReconcileSendsNothing(t *testing.T) {
	env := ovstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sw, err := Dial(ctx, env.Target, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	desired := ovstest.EveryKind()
	if _, err := sw.Reconcile(ctx, desired, flows.CookieOwned, flows.CookieOwnerMask); err != nil {
		t.Fatal(err)
	}
	bundles := sw.bundleID.Load()
	res, err := sw.Reconcile(ctx, desired, flows.CookieOwned, flows.CookieOwnerMask)
	if err != nil {
		t.Fatal(err)
	}
	if res.FlowMods != 0 || sw.bundleID.Load() != bundles {
		t.Errorf("no-op reconcile sent %d flow-mods in %d bundles", res.FlowMods, sw.bundleID.Load()-bundles)
	}
}

package openflow_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
)

// TestReconcileKnownMatchesReconcile: changing a known subset of the
// installed flows without a dump gives the switch what a full Reconcile
// would, counts the same adds, modifies and deletes, leaves the flows
// outside the subset alone and sends no flow stats request.
func TestReconcileKnownMatchesReconcile(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	for _, f := range foreign {
		env.MustOfctl(t, "add-flow", f)
	}
	foreignDump := env.DumpFlows(t)
	all := owned(ovstest.EveryKind())
	reconcile(t, sw, all)

	// The subset: flows 2..5 are known installed. Flow 2 stays, 3 changes,
	// 4 goes, 5 stays; one new flow comes.
	known := slices.Clone(all[2:6])
	changed := known[1]
	changed.Actions = []flows.Action{flows.GotoTable{Table: 3}}
	changed = flows.WithContentCookie(changed, flows.CookieOwned)
	added := flows.WithContentCookie(flows.Flow{Table: 9, Priority: 3, Actions: []flows.Action{flows.Output{Port: 1}}}, flows.CookieOwned)
	desired := []flows.Flow{added, known[3], changed, known[0]}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dumps := sw.Dumps()
	res, err := sw.ReconcileKnown(ctx, desired, known)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Modified != 1 || res.Deleted != 1 || res.FlowMods != 3 {
		t.Errorf("known reconcile: %+v\n%s", res, res.Diff)
	}
	if n := sw.Dumps() - dumps; n != 0 {
		t.Errorf("known reconcile sent %d flow stats requests", n)
	}
	// What a full reconcile would have made of the whole range.
	whole := append(append(slices.Clone(all[:2]), all[6:]...), desired...)
	checkInstalled(t, env, whole, foreignDump)
	if res := reconcile(t, sw, whole); res.FlowMods != 0 {
		t.Errorf("full reconcile after the known one sent %d flow-mods:\n%s", res.FlowMods, res.Diff)
	}

	// Nothing to change: no bundle, no flow-mod.
	res, err = sw.ReconcileKnown(ctx, desired, desired)
	if err != nil || res.FlowMods != 0 || !res.Diff.Empty() {
		t.Errorf("no-op known reconcile: %+v, %v", res, err)
	}
}

package openflow_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
)

// TestReconcileKnownOneTripOVS: ovs-vswitchd takes each kind of one-trip
// update (plain flow-mods and a barrier; a bundle's open, adds and commit
// written at once) and ends with the flows a full reconcile would leave,
// the foreign ones untouched.
func TestReconcileKnownOneTripOVS(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	for _, f := range foreign {
		env.MustOfctl(t, "add-flow", f)
	}
	foreignDump := env.DumpFlows(t)
	for _, st := range oneTripSteps() {
		runOneTrip(t, sw, st)
		checkInstalled(t, env, st.holds, foreignDump)
		if res := reconcile(t, sw, st.holds); res.FlowMods != 0 {
			t.Errorf("%s: a full reconcile afterwards sent %d flow-mods:\n%s", st.name, res.FlowMods, res.Diff)
		}
	}
}

// TestReconcileKnownRejectedOVS: what ovs-vswitchd does with a flow-mod it
// rejects on arrival (set_field:arp_op without an ARP match) in each
// one-trip form: plain flow-mods around it are applied; a pipelined bundle
// is committed without it (OVS leaves a bundle-add it cannot decode out of
// the bundle). Either way the error names it and what was applied is
// undone: the switch holds what it held.
func TestReconcileKnownRejectedOVS(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	base := owned(ovstest.EveryKind()[:3])
	runOneTrip(t, sw, oneTripStep{name: "base", desired: base, added: 3})
	before := env.DumpFlows(t)
	bad := flows.WithContentCookie(flows.Flow{Table: 6, Priority: 1, Actions: []flows.Action{flows.SetARPOp{Op: 2}}}, flows.CookieOwned)
	good := flows.WithContentCookie(flows.Flow{Table: 9, Priority: 3, Actions: []flows.Action{flows.Output{Port: 1}}}, flows.CookieOwned)
	changed := base[1]
	changed.Actions = []flows.Action{flows.GotoTable{Table: 4}}
	changed = flows.WithContentCookie(changed, flows.CookieOwned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		name               string
		desired, installed []flows.Flow
		says               string
	}{
		{"plain", []flows.Flow{good, changed, bad}, base[1:2], "rejected 1 of 3 flow-mods and applied the others"},
		{"bundle", []flows.Flow{good, changed, bad}, base[1:], "committed the others"},
	} {
		_, err := sw.ReconcileKnown(ctx, c.desired, c.installed)
		if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "arp_op") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("%s: update with a rejected flow-mod: %v", c.name, err)
		}
		t.Logf("%s: %v", c.name, err)
		if after := env.DumpFlows(t); !slices.Equal(after, before) {
			t.Errorf("%s: switch changed by a rejected update:\n%s\nwas:\n%s", c.name, strings.Join(after, "\n"), strings.Join(before, "\n"))
		}
	}
}

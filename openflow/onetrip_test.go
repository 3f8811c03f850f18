package openflow_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
)

// oneTripStep is one incremental update of oneTripSteps: installed becomes
// desired; the switch then holds holds (and the foreign flows).
type oneTripStep struct {
	name                     string
	desired, installed       []flows.Flow
	added, modified, deleted int
	bundle                   bool // deletes and adds together: a bundle
	holds                    []flows.Flow
}

// oneTripSteps are updates of every kind ReconcileKnown sends in one round
// trip: adds only, a modify, deletes only, deletes and adds together.
func oneTripSteps() []oneTripStep {
	base := owned(ovstest.EveryKind()[:4])
	changed := base[1]
	changed.Actions = []flows.Action{flows.GotoTable{Table: 3}}
	changed = flows.WithContentCookie(changed, flows.CookieOwned)
	added := flows.WithContentCookie(flows.Flow{Table: 9, Priority: 3, Actions: []flows.Action{flows.Output{Port: 1}}}, flows.CookieOwned)
	return []oneTripStep{
		{name: "adds", desired: base, added: 4, holds: base},
		{name: "modify", desired: []flows.Flow{changed}, installed: base[1:2], modified: 1,
			holds: []flows.Flow{base[0], changed, base[2], base[3]}},
		{name: "deletes", installed: base[3:], deleted: 1, holds: []flows.Flow{base[0], changed, base[2]}},
		{name: "mixed", desired: []flows.Flow{added}, installed: base[2:3], added: 1, deleted: 1, bundle: true,
			holds: []flows.Flow{base[0], changed, added}},
	}
}

// runOneTrip applies st with ReconcileKnown and checks its Result.
func runOneTrip(t *testing.T, sw *openflow.Switch, st oneTripStep) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := sw.ReconcileKnown(ctx, st.desired, st.installed)
	if err != nil {
		t.Fatalf("%s: %v", st.name, err)
	}
	if res.Added != st.added || res.Modified != st.modified || res.Deleted != st.deleted || res.FlowMods != st.added+st.modified+st.deleted {
		t.Errorf("%s: %+v, want %d added, %d modified, %d deleted", st.name, res, st.added, st.modified, st.deleted)
	}
}

// TestReconcileKnownOneTripEmulated: each kind of update reaches the switch
// as plain flow-mods and one barrier, or (deletes with adds) as one
// committed bundle without a barrier, and leaves what it should.
func TestReconcileKnownOneTripEmulated(t *testing.T) {
	emu, sw := emulated(t)
	for _, st := range oneTripSteps() {
		before := emu.Counters()
		runOneTrip(t, sw, st)
		emuHolds(t, emu, st.holds)
		c := emu.Counters()
		bundles, barriers := c.Bundles-before.Bundles, c.Barriers-before.Barriers
		if st.bundle && (bundles != 1 || barriers != 0) || !st.bundle && (bundles != 0 || barriers != 1) {
			t.Errorf("%s: %d bundles and %d barriers, want a bundle: %v", st.name, bundles, barriers, st.bundle)
		}
	}
}

// TestReconcileKnownRejectedEmulated: a flow-mod the switch refuses is
// named in the error; plain flow-mods around it are applied, while a
// bundle refused at its commit changes nothing.
func TestReconcileKnownRejectedEmulated(t *testing.T) {
	emu, sw := emulated(t)
	base := owned(ovstest.EveryKind()[:3])
	runOneTrip(t, sw, oneTripStep{name: "base", desired: base, added: 3})
	good := flows.WithContentCookie(flows.Flow{Table: 9, Priority: 3, Actions: []flows.Action{flows.Output{Port: 1}}}, flows.CookieOwned)
	bad := flows.WithContentCookie(flows.Flow{Table: 9, Priority: 4, Actions: []flows.Action{flows.Output{Port: 2}}}, flows.CookieOwned)
	emu.RejectFlowMods(func(f flows.Flow) bool { return f.String() == bad.String() })
	defer emu.RejectFlowMods(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Mixed: the commit fails, nothing changes.
	before := mustDump(t, emu)
	_, err := sw.ReconcileKnown(ctx, []flows.Flow{good, bad}, base[2:])
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "priority=4") {
		t.Fatalf("bundle with a refused flow: %v", err)
	}
	if after := mustDump(t, emu); !slices.Equal(after, before) {
		t.Errorf("a refused bundle changed the switch:\n%s", strings.Join(after, "\n"))
	}
	// Adds only: the refused one is named, the other is applied, then
	// undone.
	_, err = sw.ReconcileKnown(ctx, []flows.Flow{good, bad}, nil)
	if err == nil || !strings.Contains(err.Error(), "rejected 1 of 2") || !strings.Contains(err.Error(), "1 were undone: nothing was changed") || !strings.Contains(err.Error(), "priority=4") {
		t.Fatalf("plain flow-mods with a refused one: %v", err)
	}
	emuHolds(t, emu, base)
	// A modify the switch takes is undone too: the replaced flow comes
	// back with its cookie.
	changed := base[1]
	changed.Actions = []flows.Action{flows.GotoTable{Table: 4}}
	changed = flows.WithContentCookie(changed, flows.CookieOwned)
	_, err = sw.ReconcileKnown(ctx, []flows.Flow{changed, bad}, base[1:2])
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("a modify and a refused add: %v", err)
	}
	emuHolds(t, emu, base)
}

// TestEncodedIsReconcileKnown: flows encoded once (Encode) and sent with
// ReconcileKnownEncoded give what ReconcileKnown gives.
func TestEncodedIsReconcileKnown(t *testing.T) {
	emu, sw := emulated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, st := range oneTripSteps() {
		res, err := sw.ReconcileKnownEncoded(ctx, openflow.Encode(st.desired), openflow.Encode(st.installed))
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res.Added != st.added || res.Modified != st.modified || res.Deleted != st.deleted {
			t.Errorf("%s: %+v", st.name, res)
		}
		emuHolds(t, emu, st.holds)
	}
}

// TestReconcileKnownBadInputSendsNothing: a flow the codec rejects fails
// the update before anything reaches the switch.
func TestReconcileKnownBadInputSendsNothing(t *testing.T) {
	emu, sw := emulated(t)
	good := flows.WithContentCookie(flows.Flow{Table: 9, Priority: 3, Actions: []flows.Action{flows.Output{Port: 1}}}, flows.CookieOwned)
	bad := flows.WithContentCookie(flows.Flow{Table: 9, Priority: 4, Match: flows.Match{EthSrc: []byte{1, 2, 3}}}, flows.CookieOwned)
	before := emu.Counters()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, installed := range [][]flows.Flow{nil, emuForeign()[:1]} {
		if _, err := sw.ReconcileKnown(ctx, []flows.Flow{good, bad}, installed); err == nil || !strings.Contains(err.Error(), "nothing was sent") {
			t.Errorf("update with a flow the codec rejects: %v", err)
		}
	}
	if after := emu.Counters(); after != before {
		t.Errorf("the switch was sent something: %+v, was %+v", after, before)
	}
}

package openflow_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/openflowtest"
)

// Reconcile against an emulated switch (openflowtest): what the real-OVS
// tests in reconcile_ovs_test.go check, without root, in milliseconds.

// emuForeign are flows ovs-vxctl's reconcile does not own: cookie 0
// (someone's ovs-ofctl) and the controller's owner prefix.
func emuForeign() []flows.Flow {
	return []flows.Flow{
		{Table: 7, Priority: 5, Match: flows.Match{InPort: 1}, Actions: []flows.Action{flows.Output{Port: 10}}},
		{Table: 20, Priority: 100, Cookie: flows.CookieController | 1, Match: flows.Match{HasVLAN: true, VLAN: 1, EthDst: ovstest.MAC("52:54:00:00:00:77")},
			Actions: []flows.Action{flows.PopVLAN{}, flows.SetTunID{ID: 0x64}, flows.Output{Port: 10}}},
	}
}

// emulated is an emulated switch holding emuForeign, and the project's
// client connected to it.
func emulated(t *testing.T) (*openflowtest.Switch, *openflow.Switch) {
	t.Helper()
	emu, err := openflowtest.New(openflowtest.Config{DatapathID: 0x42, Flows: emuForeign()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := ofconn.NewConn(emu.Pipe(), nil)
	if err := c.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	sw := openflow.New(c, nil)
	t.Cleanup(func() { sw.Close() })
	return emu, sw
}

// emuHolds fails unless the switch holds exactly desired and emuForeign.
func emuHolds(t *testing.T, emu *openflowtest.Switch, desired []flows.Flow) {
	t.Helper()
	want := flowLines(append(slices.Clone(desired), emuForeign()...))
	got, err := emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("installed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReconcileEmulated(t *testing.T) {
	emu, sw := emulated(t)
	desired := owned(ovstest.EveryKind())

	res := reconcile(t, sw, desired)
	c := emu.Counters()
	if res.Added != len(desired) || res.FlowMods != len(desired) || c.FlowMods != uint64(len(desired)) || c.Bundles != 1 {
		t.Errorf("first reconcile: %+v; the switch applied %d flow-mods in %d bundles; want %d adds in 1", res, c.FlowMods, c.Bundles, len(desired))
	}
	emuHolds(t, emu, desired)

	// Nothing to do: nothing reaches the switch.
	if res := reconcile(t, sw, desired); res.FlowMods != 0 || !res.Diff.Empty() {
		t.Errorf("second reconcile sent %d flow-mods: %s", res.FlowMods, res.Diff)
	}
	if after := emu.Counters(); after != c {
		t.Errorf("a no-op reconcile reached the switch: %+v, was %+v", after, c)
	}

	// One flow changes: it alone is re-added, with its new cookie.
	changed := slices.Clone(desired)
	i := slices.IndexFunc(changed, func(f flows.Flow) bool { return f.Table == 21 })
	f := changed[i]
	f.Actions = []flows.Action{flows.PopVLAN{}, flows.SetTunID{ID: 0x64}, flows.Output{Port: ovstest.PortVX2}}
	changed[i] = flows.WithContentCookie(f, flows.CookieOwned)
	if res := reconcile(t, sw, changed); res.Modified != 1 || res.Added != 0 || res.Deleted != 0 || res.FlowMods != 1 {
		t.Errorf("reconcile of one changed flow: %+v\n%s", res, res.Diff)
	}
	emuHolds(t, emu, changed)

	// One flow goes: it alone is deleted.
	removed := slices.Delete(slices.Clone(changed), i, i+1)
	if res := reconcile(t, sw, removed); res.Deleted != 1 || res.Added != 0 || res.Modified != 0 || res.FlowMods != 1 {
		t.Errorf("reconcile of one removed flow: %+v\n%s", res, res.Diff)
	}
	emuHolds(t, emu, removed)

	// Nothing desired: every owned flow goes, the foreign ones stay.
	reconcile(t, sw, nil)
	emuHolds(t, emu, nil)
	if got := emu.Counters(); got.FlowMods != c.FlowMods+2+uint64(len(removed)) || got.Bundles != 4 {
		t.Errorf("switch counters %+v at the end, want %d flow-mods in 4 bundles", got, c.FlowMods+2+uint64(len(removed)))
	}
}

// TestBundleRejectedAsAWholeEmulated: one flow-mod the switch refuses
// among adds, modifies and deletes makes the whole reconcile fail, and the
// switch is left as it was.
func TestBundleRejectedAsAWholeEmulated(t *testing.T) {
	emu, sw := emulated(t)
	base := owned(ovstest.EveryKind()[:5])
	reconcile(t, sw, base)
	before, c := mustDump(t, emu), emu.Counters()

	next := append(owned(ovstest.EveryKind()[6:]), base[1:]...)
	next[len(next)-1].Actions = []flows.Action{flows.GotoTable{Table: 3}}
	next[len(next)-1] = flows.WithContentCookie(next[len(next)-1], flows.CookieOwned)
	bad := next[0]
	emu.RejectFlowMods(func(f flows.Flow) bool { return f.String() == bad.String() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sw.Reconcile(ctx, next, flows.CookieOwned, flows.CookieOwnerMask)
	var ofErr *ofconn.Error
	if err == nil || !errors.As(err, &ofErr) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("reconcile with a refused flow: %v", err)
	}
	if after := mustDump(t, emu); !slices.Equal(after, before) {
		t.Errorf("switch changed by a refused bundle:\n%s\nwas:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	if after := emu.Counters(); after.FlowMods != c.FlowMods || after.Bundles != c.Bundles {
		t.Errorf("a refused bundle was applied: %+v, was %+v", after, c)
	}
	emu.RejectFlowMods(nil)
	reconcile(t, sw, next)
	emuHolds(t, emu, next)
}

func mustDump(t *testing.T, emu *openflowtest.Switch) []string {
	t.Helper()
	d, err := emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

package openflow_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
	"go.uber.org/zap/zaptest"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

func dial(t *testing.T, env *ovstest.Env) *openflow.Switch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sw, err := openflow.Dial(ctx, env.Target, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw
}

// owned gives every flow the compiler's content cookie.
func owned(fl []flows.Flow) []flows.Flow {
	out := make([]flows.Flow, len(fl))
	for i, f := range fl {
		out[i] = flows.WithContentCookie(f, flows.CookieOwned)
	}
	return out
}

func reconcile(t *testing.T, sw *openflow.Switch, desired []flows.Flow) openflow.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := sw.Reconcile(ctx, desired, flows.CookieOwned, flows.CookieOwnerMask)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// foreign are flows ovs-vxctl does not own: cookie 0 (someone's ovs-ofctl)
// and another owner prefix.
var foreign = []string{
	"table=7,priority=5,in_port=1,actions=output:10",
	"cookie=0x767a000000000001,table=20,priority=100,dl_vlan=1,dl_dst=52:54:00:00:00:77,actions=pop_vlan,set_field:0x64->tun_id,output:10",
}

func TestReconcile(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	for _, f := range foreign {
		env.MustOfctl(t, "add-flow", f)
	}
	foreignDump := env.DumpFlows(t)
	if len(foreignDump) != len(foreign) {
		t.Fatalf("foreign flows: %q", foreignDump)
	}
	desired := owned(ovstest.EveryKind())

	// First run adds everything, in one bundle.
	res := reconcile(t, sw, desired)
	if res.Added != len(desired) || res.Modified != 0 || res.Deleted != 0 || res.FlowMods != len(desired) {
		t.Errorf("first reconcile: %+v, want %d adds", res, len(desired))
	}
	checkInstalled(t, env, desired, foreignDump)

	// Second run: nothing to do, no flow-mod sent.
	if res := reconcile(t, sw, desired); res.FlowMods != 0 || !res.Diff.Empty() {
		t.Errorf("second reconcile sent %d flow-mods: %s", res.FlowMods, res.Diff)
	}

	// One flow changes (its content cookie with it): only it is modified,
	// and the new cookie is what is installed.
	changed := slices.Clone(desired)
	i := slices.IndexFunc(changed, func(f flows.Flow) bool { return f.Table == 21 })
	f := changed[i]
	f.Actions = []flows.Action{flows.PopVLAN{}, flows.SetTunID{ID: 0x64}, flows.Output{Port: ovstest.PortVX2}}
	changed[i] = flows.WithContentCookie(f, flows.CookieOwned)
	res = reconcile(t, sw, changed)
	if res.Modified != 1 || res.Added != 0 || res.Deleted != 0 || res.FlowMods != 1 {
		t.Errorf("reconcile of one changed flow: %+v\n%s", res, res.Diff)
	}
	if want := "-" + strings.TrimPrefix(desired[i].String(), " ") + "\n+" + strings.TrimPrefix(changed[i].String(), " ") + "\n"; res.Diff.String() != want {
		t.Errorf("diff text:\n%s\nwant:\n%s", res.Diff, want)
	}
	checkInstalled(t, env, changed, foreignDump)

	// One flow goes: only it is deleted.
	removed := slices.Delete(slices.Clone(changed), i, i+1)
	res = reconcile(t, sw, removed)
	if res.Deleted != 1 || res.Added != 0 || res.Modified != 0 || res.FlowMods != 1 {
		t.Errorf("reconcile of one removed flow: %+v\n%s", res, res.Diff)
	}
	checkInstalled(t, env, removed, foreignDump)

	// Nothing desired: every owned flow goes, foreign ones stay.
	reconcile(t, sw, nil)
	checkInstalled(t, env, nil, foreignDump)
}

// checkInstalled compares the bridge with desired plus the foreign flows.
func checkInstalled(t *testing.T, env *ovstest.Env, desired []flows.Flow, foreignDump []string) {
	t.Helper()
	want := append(flowLines(desired), foreignDump...)
	slices.Sort(want)
	if got := env.DumpFlows(t); !slices.Equal(got, want) {
		t.Errorf("installed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReconcileReplacesLossyFlow: an owned flow whose match flows cannot
// express (a register) shares its decoded Key with a desired flow; the
// reconcile must remove it, not leave it beside the desired one.
func TestReconcileReplacesLossyFlow(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	env.MustOfctl(t, "add-flow", "cookie=0x7678000000000099,table=5,priority=7,reg0=1,actions=drop")
	desired := owned([]flows.Flow{{Table: 5, Priority: 7, Actions: []flows.Action{flows.Output{Port: 1}}}})
	res := reconcile(t, sw, desired)
	if res.Modified != 1 || res.FlowMods != 2 {
		t.Errorf("reconcile: %+v\n%s", res, res.Diff)
	}
	if !strings.Contains(res.Diff.String(), "extra_match(reg0=0x1)") {
		t.Errorf("diff does not show the register match:\n%s", res.Diff)
	}
	checkInstalled(t, env, desired, nil)
	if res := reconcile(t, sw, desired); res.FlowMods != 0 {
		t.Errorf("second reconcile sent %d flow-mods", res.FlowMods)
	}
}

// TestModifyStrictKeepsCookie records why Reconcile modifies with ADD: in
// OpenFlow 1.3 OVS's MODIFY_STRICT uses the cookie as a filter and keeps
// the installed one.
func TestModifyStrictKeepsCookie(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := flows.Flow{Table: 4, Priority: 9, Cookie: flows.CookieOwned | 1, Actions: []flows.Action{flows.Output{Port: 1}}}
	if err := sw.Install(ctx, []flows.Flow{f}); err != nil {
		t.Fatal(err)
	}
	g := f
	g.Cookie, g.Actions = flows.CookieOwned|2, []flows.Action{flows.Output{Port: 10}}
	fm, err := ofcodec.FlowMod(g, ofcodec.CommandModifyStrict)
	if err != nil {
		t.Fatal(err)
	}
	fm.CookieMask = 0 // match whatever cookie is installed
	if failed, err := sw.Conn().SendBatch(ctx, []util.Message{fm}); err != nil || len(failed) > 0 {
		t.Fatal(err, failed)
	}
	got := env.DumpFlows(t)
	want := " cookie=0x7678000000000001, table=4, priority=9 actions=output:10"
	if len(got) != 1 || got[0] != want {
		t.Errorf("after MODIFY_STRICT: %q, want %q", got, want)
	}
}

// TestBundleRejectedAsAWhole: one flow-mod the switch rejects makes the
// whole bundle fail and leaves the switch as it was.
func TestBundleRejectedAsAWhole(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	for _, f := range foreign {
		env.MustOfctl(t, "add-flow", f)
	}
	base := owned(ovstest.EveryKind()[:5])
	reconcile(t, sw, base)
	before := env.DumpFlows(t)

	// set_field:arp_op without an ARP match: OVS rejects it (bad
	// prerequisite), among good adds, a modify and a delete.
	bad := flows.WithContentCookie(flows.Flow{Table: 6, Priority: 1, Actions: []flows.Action{flows.SetARPOp{Op: 2}}}, flows.CookieOwned)
	next := append(owned(ovstest.EveryKind()[6:]), base[1:]...)
	next[len(next)-1].Actions = []flows.Action{flows.GotoTable{Table: 3}}
	next[len(next)-1] = flows.WithContentCookie(next[len(next)-1], flows.CookieOwned)
	next = append(next, bad)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := sw.Reconcile(ctx, next, flows.CookieOwned, flows.CookieOwnerMask)
	var ofErr *ofconn.Error
	if err == nil || !errors.As(err, &ofErr) || !strings.Contains(err.Error(), "arp_op") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("reconcile with a bad flow: %v", err)
	}
	t.Logf("rejected: %v", err)
	if after := env.DumpFlows(t); !slices.Equal(after, before) {
		t.Errorf("switch changed by a rejected bundle:\n%s\nwas:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}

	// goto_table backwards, sent raw (the codec refuses to encode it).
	var mods []util.Message
	for _, f := range owned(ovstest.EveryKind()[6:9]) {
		fm, err := ofcodec.FlowMod(f, ofcodec.CommandAdd)
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, fm)
	}
	back := openflow13.NewFlowMod()
	back.TableId, back.Priority, back.Cookie = 5, 1, flows.CookieOwned|0x42
	back.OutPort, back.OutGroup = openflow13.P_ANY, openflow13.OFPG_ANY
	back.AddInstruction(openflow13.NewInstrGotoTable(2))
	mods = append(mods, back)
	err = sw.Bundle(ctx, mods, nil)
	if err == nil || !errors.As(err, &ofErr) {
		t.Fatalf("bundle with goto_table backwards: %v", err)
	}
	t.Logf("rejected: %v", err)
	if after := env.DumpFlows(t); !slices.Equal(after, before) {
		t.Errorf("switch changed by a rejected bundle:\n%s\nwas:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
}

// TestReconcileRejectsBadInput: flows a reconcile could never converge on
// are refused before anything is sent.
func TestReconcileRejectsBadInput(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := flows.Flow{Table: 1, Priority: 1, Cookie: flows.CookieOwned | 1, Actions: []flows.Action{flows.Output{Port: 1}}}
	b := a
	b.Cookie, b.Actions = flows.CookieOwned|2, nil
	c := a
	c.Cookie, c.Priority = 5, 2
	for name, fl := range map[string][]flows.Flow{"duplicate key": {a, b}, "foreign cookie": {c}} {
		if _, err := sw.Reconcile(ctx, fl, flows.CookieOwned, flows.CookieOwnerMask); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if got := env.DumpFlows(t); len(got) != 0 {
		t.Errorf("flows installed: %q", got)
	}
}

// bigTable is n table-20 entries, as the controller would install for n
// MACs over 100 networks.
func bigTable(n int) []flows.Flow {
	fl := make([]flows.Flow, 0, n)
	for i := range n {
		vlan := uint16(i%100 + 1)
		fl = append(fl, flows.Flow{Table: 20, Priority: 10,
			Match:   flows.Match{HasVLAN: true, VLAN: vlan, EthDst: net.HardwareAddr{0x52, 0x54, 0, byte(i >> 16), byte(i >> 8), byte(i)}},
			Actions: []flows.Action{flows.PopVLAN{}, flows.SetTunID{ID: 1000 + uint64(vlan)}, flows.Output{Port: uint32(10 + i%2)}}})
	}
	return owned(fl)
}

func TestReconcile10000Flows(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	desired := bigTable(10000)

	res := reconcile(t, sw, desired)
	if res.Added != 10000 || res.FlowMods != 10000 {
		t.Errorf("first reconcile: added %d, %d flow-mods", res.Added, res.FlowMods)
	}
	t.Logf("10,000 flows added in one bundle: %v", res.Duration)
	if got := env.DumpFlows(t); len(got) != 10000 {
		t.Errorf("%d flows installed, want 10000", len(got))
	}

	res = reconcile(t, sw, desired)
	if res.FlowMods != 0 {
		t.Errorf("no-op reconcile sent %d flow-mods", res.FlowMods)
	}
	t.Logf("no-op reconcile of 10,000 flows (dump, decode, diff): %v", res.Duration)

	changed := slices.Clone(desired)
	for i := 0; i < len(changed); i += 100 {
		f := changed[i]
		f.Actions = []flows.Action{flows.PopVLAN{}, flows.SetTunID{ID: 7}, flows.Output{Port: 12}}
		changed[i] = flows.WithContentCookie(f, flows.CookieOwned)
	}
	changed = changed[:9900]
	res = reconcile(t, sw, changed)
	if res.Modified != 99 || res.Deleted != 100 || res.Added != 0 {
		t.Errorf("reconcile of 99 changed and 100 removed: %+v", res)
	}
	t.Logf("reconcile of 99 modified and 100 deleted among 10,000: %v", res.Duration)
	got := env.DumpFlows(t)
	if want := flowLines(changed); !slices.Equal(got, want) {
		t.Errorf("installed %d flows differ from the %d desired", len(got), len(want))
	}
}

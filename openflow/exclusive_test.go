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

// vxctlOwned are the cookie owners of ovs-vxctl's flows on its bridges.
func vxctlOwned() openflow.Owned {
	return openflow.Owned{Mask: flows.CookieOwnerMask,
		Owners: []uint64{flows.CookieOwned, flows.CookieLearned, flows.CookieController, flows.CookieAllocation}}
}

func TestOwnedForeign(t *testing.T) {
	o := vxctlOwned()
	for cookie, foreign := range map[uint64]bool{
		0:                             true,
		0x1234:                        true,
		flows.CookieOwned | 0xabc:     false,
		flows.CookieLearned | 100:     false,
		flows.CookieController | 7:    false,
		flows.CookieAllocation:        false,
		0x767c << 48:                  true,
		0xffff_ffff_ffff_ffff:         true,
		flows.CookieOwned ^ (1 << 63): true,
	} {
		if got := o.Foreign(cookie); got != foreign {
			t.Errorf("Foreign(%#x) = %v, want %v", cookie, got, foreign)
		}
	}
}

func removeForeign(t *testing.T, sw *openflow.Switch) []flows.Flow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fl, err := sw.RemoveForeign(ctx, vxctlOwned())
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// TestRemoveForeignEmulated: the cookie-0 flow goes and is reported; the
// controller's flow and the owned ones stay.
func TestRemoveForeignEmulated(t *testing.T) {
	emu, sw := emulated(t)
	desired := owned(ovstest.EveryKind())
	reconcile(t, sw, desired)
	got := flowLines(removeForeign(t, sw))
	if want := flowLines(emuForeign()[:1]); !slices.Equal(got, want) {
		t.Errorf("foreign flows removed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	want := flowLines(append(slices.Clone(desired), emuForeign()[1]))
	if got, err := emu.Dump(); err != nil || !slices.Equal(got, want) {
		t.Errorf("installed:\n%s\nwant:\n%s (%v)", strings.Join(got, "\n"), strings.Join(want, "\n"), err)
	}
	c := emu.Counters()
	if fl := removeForeign(t, sw); len(fl) != 0 || emu.Counters().FlowMods != c.FlowMods {
		t.Errorf("second call removed %v", fl)
	}
}

// TestRemoveForeign on real OVS: hand-added flows (cookie 0) go, even one
// whose match flows cannot hold; learned-cookie and controller-cookie
// flows stay.
func TestRemoveForeign(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	kept := []string{
		"cookie=0x767a000000000001,table=20,priority=100,dl_vlan=1,dl_dst=52:54:00:00:00:77,actions=pop_vlan,set_field:0x64->tun_id,output:10",
		"cookie=0x7679000000000064,table=20,priority=1,dl_vlan=1,dl_dst=52:54:00:00:00:78,actions=pop_vlan,set_field:0x64->tun_id,output:10",
	}
	for _, f := range append(slices.Clone(kept), "table=0,priority=100,in_port=1,actions=drop", "table=5,priority=3,tcp,reg3=7,actions=drop") {
		env.MustOfctl(t, "add-flow", f)
	}
	keptDump := env.DumpFlows(t, "cookie=0x7670000000000000/0xfff0000000000000")
	if len(keptDump) != 2 {
		t.Fatalf("kept flows: %q", keptDump)
	}
	got := strings.Join(flowLines(removeForeign(t, sw)), "\n")
	if !strings.Contains(got, " priority=100,in_port=1 actions=drop") || !strings.Contains(got, "table=5, priority=3") {
		t.Errorf("foreign flows removed: %q", got)
	}
	checkInstalled(t, env, nil, keptDump)
}

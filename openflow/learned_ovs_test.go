package openflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// A frame from 52:54:00:00:00:0N to 0a:00:00:00:00:01, as a VXLAN port
// would hand it to br-tun.
func frameFrom(n string) string {
	return "0a0000000001" + "5254000000" + n + "0800" + "45000014000000004000000000000000000000000000"
}

// TestLearnedFlowsDecode makes OVS's learn() create table 20 entries and
// checks that Dump reads them back as ovs-ofctl prints them.
func TestLearnedFlowsDecode(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The pipeline's learn (NXM_OF_VLAN_TCI[0..12]) for VNI 0x64, installed
	// through our connection...
	learn := []flows.Flow{{Table: 2, Priority: 1, Cookie: flows.CookieOwned | 1,
		Match: flows.Match{HasTunID: true, TunID: 0x64},
		Actions: []flows.Action{flows.PushVLAN{}, flows.SetVLANVID{VID: 1},
			flows.Learn{Table: 20, HardTimeout: 300, Priority: 1, Cookie: flows.CookieLearned | 0x64},
			flows.Output{Port: ovstest.PortLocal}}}}
	if err := sw.Install(ctx, learn); err != nil {
		t.Fatal(err)
	}
	// ...and one that learns only the 12 VID bits (VNI 0x65), by ovs-ofctl.
	env.MustOfctl(t, "add-flow", "cookie=0x7678000000000002,table=2,priority=1,tun_id=0x65,actions=push_vlan:0x8100,set_field:4098->vlan_vid,"+
		"learn(table=20,hard_timeout=300,priority=1,cookie=0x7679000000000065,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"+
		"load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:1")
	env.MustOfctl(t, "packet-out", "in_port=10 packet="+frameFrom("01")+" actions=set_field:0x64->tun_id,resubmit(,2)")
	env.MustOfctl(t, "packet-out", "in_port=11 packet="+frameFrom("02")+" actions=set_field:0x65->tun_id,resubmit(,2)")

	want := env.DumpFlows(t, "table=20")
	if len(want) != 2 {
		t.Fatalf("learn() created %d flows, want 2:\n%s", len(want), strings.Join(want, "\n"))
	}
	dumped, err := sw.DumpDecoded(ctx, flows.CookieLearned, flows.CookieOwnerMask)
	if err != nil {
		t.Fatal(err)
	}
	if len(dumped) != 2 {
		t.Fatalf("Dump of the learned cookies found %d flows, want 2", len(dumped))
	}
	for _, d := range dumped {
		got := d.Flow.String()
		switch d.Flow.Cookie {
		case flows.CookieLearned | 0x64:
			// Fully representable: dl_vlan=1, loads, output.
			if got != want[0] {
				t.Errorf("learned flow decodes as\n%s\novs-ofctl prints\n%s", got, want[0])
			}
			if d.MatchLossy {
				t.Errorf("learned flow %s marked lossy", got)
			}
			if l, ok := d.Flow.Actions[1].(ofcodec.Load); !ok || l.Dst.Field != "NXM_NX_TUN_ID" || l.Value != 0x64 {
				t.Errorf("second action %#v: want the VNI load", d.Flow.Actions[1])
			}
		case flows.CookieLearned | 0x65:
			// Matches vlan_tci=0x0002/0x0fff, which flows.Match cannot hold:
			// it must show, as an extra_match action.
			line := strings.Replace(want[1], "vlan_tci=0x0002/0x0fff,", "", 1)
			line = strings.Replace(line, "actions=", "actions=extra_match(vlan_tci=0x0002/0x0fff),", 1)
			if got != line || !d.MatchLossy {
				t.Errorf("learned flow decodes as\n%s (lossy %v)\nwant\n%s (lossy)\novs-ofctl prints\n%s", got, d.MatchLossy, line, want[1])
			}
		default:
			t.Errorf("unexpected learned flow %s", got)
		}
	}

	// A reconcile of the owned flows leaves learned ones alone.
	if _, err := sw.Reconcile(ctx, learn, flows.CookieOwned, flows.CookieOwnerMask); err != nil {
		t.Fatal(err)
	}
	if got := env.DumpFlows(t, "table=20"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("learned flows after a reconcile:\n%s\nbefore:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

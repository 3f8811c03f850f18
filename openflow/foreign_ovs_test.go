package openflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// TestForeignActionsDecode: actions package flows has no type for (added by
// someone with ovs-ofctl) still decode to ovs-ofctl's text.
func TestForeignActionsDecode(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	for _, f := range []string{
		"table=5,priority=3,in_port=1,actions=load:0x5->NXM_NX_REG1[3..9],move:NXM_NX_REG1[]->NXM_NX_TUN_ID[0..31]," +
			"move:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15],resubmit(,7),resubmit:3,resubmit(4,8),push_vlan:0x88a8," +
			"LOCAL,FLOOD,ALL,TABLE,set_field:00:00:00:00:00:02->eth_dst,set_field:0x5->reg3,set_field:7->vlan_pcp," +
			"controller(reason=no_match,max_len=100,id=3),controller(max_len=200),clear_actions,write_actions(output:1,pop_vlan),write_metadata:0x5/0xff,goto_table:9",
		"table=6,priority=1,actions=learn(table=30,idle_timeout=10,fin_hard_timeout=5,priority=5,send_flow_rem,delete_learned,cookie=0x9," +
			"NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],NXM_OF_VLAN_TCI[0..11],eth_type=0x800,NXM_NX_REG0[0..3]=0x5,load:0x5->NXM_NX_REG0[0..3]," +
			"load:NXM_NX_REG1[]->NXM_NX_REG2[],output:NXM_NX_REG3[0..15])",
		"table=6,priority=2,actions=learn(table=31,NXM_OF_ETH_DST[],dl_dst=01:02:03:04:05:06,load:0x12345678->NXM_NX_TUN_ID[])",
		"table=6,priority=3,actions=write_metadata:0x7,goto_table:7",
	} {
		env.MustOfctl(t, "add-flow", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dumped, err := sw.Dump(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, want := flowLines(dumped), env.DumpFlows(t)
	if len(want) != 4 {
		t.Fatalf("ovs-ofctl dumps %d flows, want 4", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ovs-ofctl dumps:\n%s\nour Dump decodes:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// TestForeignMatchShows: match fields flows.Match cannot hold show up in
// the decoded flow, and mark it lossy.
func TestForeignMatchShows(t *testing.T) {
	env := ovstest.Start(t)
	sw := dial(t, env)
	env.MustOfctl(t, "add-flow", "table=5,priority=3,tcp,reg3=7,tun_id=0x5/0xff,vlan_tci=0,dl_src=00:00:00:00:00:01/ff:ff:ff:ff:ff:00,actions=drop")
	env.MustOfctl(t, "add-flow", "table=5,priority=4,arp,arp_spa=10.0.0.0/8,in_port=LOCAL,dl_vlan=3,dl_vlan_pcp=2,actions=drop")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dumped, err := sw.DumpDecoded(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16][]string{
		// ovs-ofctl prints tcp,reg3=0x7,tun_id=0x5/0xff,vlan_tci=0x0000/0x1fff,dl_src=00:00:00:00:00:00/ff:ff:ff:ff:ff:00
		3: {"nw_proto=6", "reg3=0x7", "tun_id=0x5/0xff", "vlan_tci=0x0000/0x1fff", "dl_src=00:00:00:00:00:00/ff:ff:ff:ff:ff:00"},
		// and arp,in_port=LOCAL,dl_vlan=3,dl_vlan_pcp=2,arp_spa=10.0.0.0/8
		4: {"arp_spa=10.0.0.0/8", "in_port=LOCAL", "dl_vlan_pcp=2"},
	}
	t.Log(env.DumpFlows(t))
	for _, d := range dumped {
		t.Log(d.Flow)
		if !d.MatchLossy {
			t.Errorf("%s: not marked lossy", d.Flow)
		}
		extra, ok := d.Flow.Actions[0].(ofcodec.MatchExtra)
		if !ok {
			t.Errorf("%s: no extra match", d.Flow)
			continue
		}
		for _, w := range want[d.Flow.Priority] {
			if !strings.Contains(strings.Join(extra.Fields, ","), w) {
				t.Errorf("%s: extra match lacks %s", d.Flow, w)
			}
		}
	}
}

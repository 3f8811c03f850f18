package flows

import (
	"net"
	"net/netip"
	"testing"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// The expected lines are what ovs-ofctl -O OpenFlow13 dump-flows --no-stats
// printed on OVS 3.1 for the same flows.
func TestStringMatchesOvsOfctl(t *testing.T) {
	tests := []struct {
		flow Flow
		want string
	}{
		{Flow{Table: 0, Priority: 1, Match: Match{InPort: 1}, Actions: []Action{GotoTable{1}}},
			" priority=1,in_port=1 actions=goto_table:1"},
		{Flow{Priority: 0}, " priority=0 actions=drop"},
		{Flow{Table: 1, Priority: 1, Match: Match{EthDst: Unicast, EthDstMask: GroupBit}, Actions: []Action{GotoTable{20}}},
			" table=1, priority=1,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=goto_table:20"},
		{Flow{Table: 2, Priority: 1, Match: Match{HasTunID: true, TunID: 100}, Actions: []Action{
			PushVLAN{}, SetVLANVID{1}, Learn{Table: 20, HardTimeout: 300, Priority: 1, Cookie: 0x7679000000000000}, Output{1}}},
			" table=2, priority=1,tun_id=0x64 actions=push_vlan:0x8100,set_field:4097->vlan_vid,learn(table=20,hard_timeout=300,priority=1,cookie=0x7679000000000000,NXM_OF_VLAN_TCI[0..12],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:1"},
		{Flow{Table: 21, Priority: 1, Match: Match{HasVLAN: true, VLAN: 1}, Actions: []Action{PopVLAN{}, SetTunID{100}, Output{10}, Output{11}}},
			" table=21, priority=1,dl_vlan=1 actions=pop_vlan,set_field:0x64->tun_id,output:10,output:11"},
		{Flow{Cookie: 1, Table: 3, HardTimeout: 300, Priority: 5, Match: Match{EthType: EthTypeARP, HasTunID: true, TunID: 100, InPort: 10,
			HasVLAN: true, VLAN: 4, EthSrc: mac("52:54:00:00:00:01"), EthDst: mac("52:54:00:00:00:02"),
			ArpSPA: netip.MustParseAddr("10.0.0.1"), ArpTPA: netip.MustParseAddr("10.1.1.2"), ArpOp: 1}, Actions: []Action{Output{1}}},
			" cookie=0x1, table=3, hard_timeout=300, priority=5,arp,tun_id=0x64,in_port=10,dl_vlan=4,dl_src=52:54:00:00:00:01,dl_dst=52:54:00:00:00:02,arp_spa=10.0.0.1,arp_tpa=10.1.1.2,arp_op=1 actions=output:1"},
		{Flow{Table: 3, Priority: 6, Match: Match{EthType: EthTypeIPv6, IPProto: 58, HasTunID: true, TunID: 100, HasICMPType: true, ICMPType: 136}, Actions: []Action{Output{PortNormal}}},
			" table=3, priority=6,icmp6,tun_id=0x64,icmp_type=136 actions=NORMAL"},
		{Flow{Table: 5, Priority: DefaultPriority, IdleTimeout: 10, HardTimeout: 300, Actions: []Action{Output{PortNormal}}},
			" table=5, idle_timeout=10, hard_timeout=300, actions=NORMAL"},
		{Flow{Table: 1, Priority: 3, Match: Match{EthType: EthTypeARP, HasVLAN: true, VLAN: 1, ArpTPA: netip.MustParseAddr("10.1.1.2"), ArpOp: 1},
			Actions: []Action{Move{FieldEthSrc, FieldEthDst}, SetEthSrc{mac("52:54:00:00:01:02")}, Move{FieldARPSHA, FieldARPTHA}, SetARPSHA{mac("52:54:00:00:01:02")}, SetARPSPA{netip.MustParseAddr("10.1.1.2")}, Output{PortInPort}}},
			" table=1, priority=3,arp,dl_vlan=1,arp_tpa=10.1.1.2,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:52:54:00:00:01:02->eth_src,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:52:54:00:00:01:02->arp_sha,set_field:10.1.1.2->arp_spa,IN_PORT"},
	}
	for _, tt := range tests {
		if got := tt.flow.String(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestContentCookieFollowsContent(t *testing.T) {
	a := Flow{Table: 21, Priority: 1, Match: Match{HasVLAN: true, VLAN: 1}, Actions: []Action{Output{10}}}
	b := a
	b.Actions = []Action{Output{11}}
	ca, cb := WithContentCookie(a, CookieOwned), WithContentCookie(b, CookieOwned)
	if ca.Cookie&CookieOwnerMask != CookieOwned {
		t.Fatalf("owner bits lost: %#x", ca.Cookie)
	}
	if ca.Cookie == cb.Cookie {
		t.Fatalf("different flows share cookie %#x", ca.Cookie)
	}
	if again := WithContentCookie(ca, CookieOwned); again.Cookie != ca.Cookie {
		t.Fatalf("cookie depends on the previous cookie: %#x vs %#x", again.Cookie, ca.Cookie)
	}
}

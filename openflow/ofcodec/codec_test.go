package ofcodec_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/contiv/libOpenflow/openflow13"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// statsEntry lays an encoded flow-mod out as the ofp_flow_stats a switch
// would report for it: the same match and instructions after a stats
// header.
func statsEntry(t testing.TB, fm *openflow13.FlowMod, flags uint16) []byte {
	t.Helper()
	b, err := fm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rest := b[48:] // match and instructions
	e := make([]byte, 48, 48+len(rest))
	binary.BigEndian.PutUint16(e[0:], uint16(48+len(rest)))
	e[2] = fm.TableId
	binary.BigEndian.PutUint16(e[12:], fm.Priority)
	binary.BigEndian.PutUint16(e[14:], fm.IdleTimeout)
	binary.BigEndian.PutUint16(e[16:], fm.HardTimeout)
	binary.BigEndian.PutUint16(e[18:], flags)
	binary.BigEndian.PutUint64(e[24:], fm.Cookie)
	binary.BigEndian.PutUint64(e[32:], 12345) // packets: ignored
	return append(e, rest...)
}

func allFlows() []flows.Flow {
	return append(ovstest.EveryKind(), ovstest.PendingFlowsFixes()...)
}

// TestRoundTrip: encode, lay out as flow stats, decode: the same text, and
// the raw match goes back out byte for byte.
func TestRoundTrip(t *testing.T) {
	var body []byte
	fl := allFlows()
	for _, f := range fl {
		fm, err := ofcodec.FlowMod(f, ofcodec.CommandAdd)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		body = append(body, statsEntry(t, fm, 0)...)
	}
	got, err := ofcodec.DecodeFlowStats(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(fl) {
		t.Fatalf("decoded %d flows, want %d", len(got), len(fl))
	}
	for i, d := range got {
		if d.Flow.String() != fl[i].String() || d.MatchLossy {
			t.Errorf("decoded\n%s (lossy %v)\nwant\n%s", d.Flow, d.MatchLossy, fl[i])
		}
		orig, _ := ofcodec.FlowMod(fl[i], ofcodec.CommandDeleteStrict)
		del, err := ofcodec.DeleteStrict(d)
		if err != nil {
			t.Fatal(err)
		}
		ob, _ := orig.MarshalBinary()
		db, _ := del.MarshalBinary()
		copy(ob[4:8], []byte{0, 0, 0, 0}) // libOpenflow's own xid
		copy(db[4:8], []byte{0, 0, 0, 0})
		if !bytes.Equal(ob, db) {
			t.Errorf("strict delete of %s:\nfrom the decoded flow %x\nencoded directly     %x", fl[i], db, ob)
		}
	}
}

func TestFlowModHeader(t *testing.T) {
	f := flows.Flow{Table: 3, Priority: 7, Cookie: 0x99, IdleTimeout: 1, HardTimeout: 2}
	for _, cmd := range []uint8{ofcodec.CommandAdd, ofcodec.CommandModifyStrict, ofcodec.CommandDeleteStrict} {
		fm, err := ofcodec.FlowMod(f, cmd)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := fm.MarshalBinary()
		cookieMask := binary.BigEndian.Uint64(b[16:])
		if cmd == ofcodec.CommandAdd && cookieMask != 0 || cmd != ofcodec.CommandAdd && cookieMask != ^uint64(0) {
			t.Errorf("command %d: cookie mask %#x", cmd, cookieMask)
		}
		if b[24] != 3 || b[25] != cmd || binary.BigEndian.Uint16(b[30:]) != 7 {
			t.Errorf("command %d: table/command/priority %d/%d/%d", cmd, b[24], b[25], binary.BigEndian.Uint16(b[30:]))
		}
		if op, og := binary.BigEndian.Uint32(b[36:]), binary.BigEndian.Uint32(b[40:]); op != 0xffffffff || og != 0xffffffff {
			t.Errorf("command %d: out_port %#x out_group %#x, want ANY", cmd, op, og)
		}
		if cmd == ofcodec.CommandDeleteStrict && len(fm.Instructions) != 0 {
			t.Errorf("delete with instructions")
		}
	}
}

func TestCheckRejects(t *testing.T) {
	mac := ovstest.MAC
	cases := []struct {
		f    flows.Flow
		want string
	}{
		{flows.Flow{Match: flows.Match{EthType: flows.EthTypeIPv4, IPProto: 6}}, "ip_proto 6"},
		{flows.Flow{Match: flows.Match{IPProto: 1}}, "ip_proto 1"},
		{flows.Flow{Match: flows.Match{HasICMPType: true}}, "icmp_type without"},
		{flows.Flow{Match: flows.Match{EthType: 0x8035}}, "dl_type 0x8035"},
		{flows.Flow{Match: flows.Match{ArpOp: 1}}, "need dl_type 0x0806"},
		{flows.Flow{Match: flows.Match{EthType: flows.EthTypeARP, ArpSPA: netip.MustParseAddr("::1")}}, "arp_spa ::1"},
		{flows.Flow{Match: flows.Match{HasVLAN: true, VLAN: 4096}}, "dl_vlan 4096"},
		{flows.Flow{Match: flows.Match{EthDst: net.HardwareAddr{1, 2, 3}}}, "not a 48-bit MAC"},
		{flows.Flow{Match: flows.Match{EthDst: mac("01:00:00:00:00:01"), EthDstMask: flows.GroupBit}}, "outside its mask"},
		{flows.Flow{Match: flows.Match{EthDst: mac("01:00:00:00:00:01"), EthDstMask: mac("ff:ff:ff:ff:ff:ff")}}, "mask ff:ff"},
		{flows.Flow{Match: flows.Match{EthDstMask: flows.GroupBit}}, "mask without dl_dst"},
		{flows.Flow{Match: flows.Match{InPort: 0xfffffffe}}, "reserved ports"},
		{flows.Flow{Table: 2, Actions: []flows.Action{flows.GotoTable{Table: 2}}}, "only goes forward"},
		{flows.Flow{Actions: []flows.Action{flows.GotoTable{Table: 2}, flows.Output{Port: 1}}}, "must be the last"},
		{flows.Flow{Actions: []flows.Action{flows.Output{Port: 0}}}, "output to port 0"},
		{flows.Flow{Actions: []flows.Action{flows.Output{Port: 0xfffffffe}}}, "output to port"},
		{flows.Flow{Actions: []flows.Action{flows.SetVLANVID{VID: 5000}}}, "vlan_vid 5000"},
		{flows.Flow{Actions: []flows.Action{flows.SetARPSPA{IP: netip.MustParseAddr("::1")}}}, "arp_spa ::1"},
		{flows.Flow{Actions: []flows.Action{flows.Move{Src: "NXM_OF_ETH_SRC", Dst: "NXM_OF_ARP_TPA"}}}, "48 bits into 32"},
		{flows.Flow{Actions: []flows.Action{flows.Move{Src: "NOPE", Dst: "NXM_OF_ARP_TPA"}}}, "unknown field"},
	}
	for _, c := range cases {
		_, err := ofcodec.FlowMod(c.f, ofcodec.CommandAdd)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.f, err, c.want)
		}
	}
}

// entry builds a flow stats entry by hand: an OXM match and instructions.
func entry(match, instrs []byte) []byte {
	mlen := 4 + len(match)
	padded := (mlen + 7) / 8 * 8
	e := make([]byte, 48+padded, 48+padded+len(instrs))
	binary.BigEndian.PutUint16(e[48:], 1)
	binary.BigEndian.PutUint16(e[50:], uint16(mlen))
	copy(e[52:], match)
	e = append(e, instrs...)
	binary.BigEndian.PutUint16(e[0:], uint16(len(e)))
	binary.BigEndian.PutUint16(e[12:], flows.DefaultPriority)
	return e
}

func applyActions(actions ...[]byte) []byte {
	var body []byte
	for _, a := range actions {
		body = append(body, a...)
	}
	in := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint16(in, 4)
	binary.BigEndian.PutUint16(in[2:], uint16(8+len(body)))
	return append(in, body...)
}

// TestDecodeShowsWhatItCannotExpress: unknown actions, fields and flags
// render visibly (never dropped), and lengths that do not add up are errors.
func TestDecodeShowsWhatItCannotExpress(t *testing.T) {
	reg0 := []byte{0x00, 0x01, 0x00, 0x04, 0, 0, 0, 5}              // NXM_NX_REG0=5
	vid := []byte{0x80, 0x00, 0x0d, 0x04, 0x00, 0x01, 0x0f, 0xff}   // vlan_vid=1/0xfff
	weird := []byte{0x12, 0x34, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8} // action type 0x1234
	cases := []struct {
		e     []byte
		flags uint16
		want  string
		lossy bool
	}{
		{entry(reg0, applyActions(weird)), 0, " actions=extra_match(reg0=0x5),unknown(action type 4660", true},
		{entry(vid, nil), 0, " actions=extra_match(vlan_tci=0x0001/0x0fff)", true},
		{entry(nil, applyActions(weird)), 0, " actions=unknown(action type 4660 0x12340008", false},
		{entry(nil, nil), 1, " actions=unknown(flags:send_flow_rem)", false},
		{entry(nil, []byte{0, 7, 0, 8, 0, 0, 0, 0}), 0, " actions=unknown(instruction type 7)", false},
		{entry(nil, []byte{0, 4, 0, 4}), 0, " actions=unknown(truncated instruction", false},
		{entry(nil, applyActions([]byte{0, 0, 0, 9, 0, 0, 0, 0})), 0, " actions=unknown(action 0 with length 9", false},
	}
	for _, c := range cases {
		binary.BigEndian.PutUint16(c.e[18:], c.flags)
		got, err := ofcodec.DecodeFlowStats(c.e)
		if err != nil || len(got) != 1 {
			t.Errorf("%x: %v", c.e, err)
			continue
		}
		if s := got[0].Flow.String(); !strings.HasPrefix(s, c.want) || got[0].MatchLossy != c.lossy {
			t.Errorf("decoded %q (lossy %v), want prefix %q (lossy %v)", s, got[0].MatchLossy, c.want, c.lossy)
		}
	}
	for _, bad := range [][]byte{
		{0, 10},                          // shorter than an entry
		append(entry(nil, nil), 0, 0, 0), // trailing bytes
		func() []byte { e := entry(nil, nil); binary.BigEndian.PutUint16(e[50:], 200); return e }(), // match past the end
		func() []byte { e := entry(nil, nil); binary.BigEndian.PutUint16(e[48:], 0); return e }(),   // not OXM
	} {
		if _, err := ofcodec.DecodeFlowStats(bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

func TestSubfields(t *testing.T) {
	for in, want := range map[string]string{
		"NXM_NX_TUN_ID[]": "NXM_NX_TUN_ID[]", "NXM_NX_TUN_ID[0..63]": "NXM_NX_TUN_ID[]",
		"NXM_OF_VLAN_TCI[0..11]": "NXM_OF_VLAN_TCI[0..11]", "NXM_NX_REG1[3]": "NXM_NX_REG1[3]",
		"OXM_OF_IN_PORT[]": "OXM_OF_IN_PORT[]",
	} {
		sf, err := ofcodec.ParseSubfield(in)
		if err != nil || sf.String() != want {
			t.Errorf("%s: %v %v, want %s", in, sf, err, want)
		}
	}
	for _, bad := range []string{"NXM_NX_TUN_ID", "NXM_NX_TUN_ID[0..64]", "NOPE[]", "NXM_NX_REG1[5..2]", "NXM_NX_REG1[x]"} {
		if _, err := ofcodec.ParseSubfield(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

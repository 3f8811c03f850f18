package ofcodec_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/contiv/libOpenflow/openflow13"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// encodedFlows is every kind of match and action, the examples' flows and
// a few more: both outputs to the controller, every command's form.
func encodedFlows(t testing.TB) []flows.Flow {
	fl := append(allFlows(), ovstest.ExampleFlows(t)...)
	return append(fl,
		flows.Flow{Table: 7, Priority: 1, Cookie: 3, Actions: []flows.Action{flows.Controller{MaxLen: 0xffff}, flows.Output{Port: flows.PortController}}},
		flows.Flow{Table: 7, Priority: 2, Match: flows.Match{EthDst: ovstest.MAC("02:00:01:00:00:00"), EthDstMask: ovstest.MAC("ff:ff:ff:00:00:00")},
			Actions: []flows.Action{flows.GotoTable{Table: 9}}},
		flows.Flow{Table: 7, Priority: 3, IdleTimeout: 1, HardTimeout: 2, Match: flows.Match{EthType: flows.EthTypeARP,
			ArpSPA: netip.MustParseAddr("::ffff:10.0.0.1").Unmap(), ArpTPA: netip.MustParseAddr("10.0.0.2")},
			Actions: []flows.Action{flows.SetARPSPA{IP: netip.MustParseAddr("10.0.0.3")}, flows.Output{Port: flows.PortInPort}}},
	)
}

// TestAppendIsLibOpenflow: for every flow and command, the append encoder
// writes exactly what libOpenflow's FlowMod marshalled by ofconn.Marshal
// writes, alone and inside a bundle-add, whose inner xid is its own; and it
// appends without touching what the buffer held.
func TestAppendIsLibOpenflow(t *testing.T) {
	prefix := []byte("held")
	for i, f := range encodedFlows(t) {
		xid := uint32(0x01020304 + i)
		for _, cmd := range []uint8{ofcodec.CommandAdd, ofcodec.CommandModifyStrict, ofcodec.CommandDeleteStrict} {
			fm, err := ofcodec.FlowMod(f, cmd)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			want, err := ofconn.Marshal(fm, xid)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ofcodec.AppendFlowMod(slices.Clone(prefix), xid, f, cmd)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
				t.Errorf("flow-mod (command %d) of %s:\nappend      %x\nlibOpenflow %x", cmd, f, got, want)
			}
			wantB, err := ofconn.Marshal(openflow13.NewBundleAdd(&openflow13.BundleAdd{BundleID: 77, Flags: openflow13.OFPBCT_ATOMIC, Message: fm}), xid)
			if err != nil {
				t.Fatal(err)
			}
			gotB, err := ofcodec.AppendBundleAdd(slices.Clone(prefix), xid, 77, ofcodec.BundleAtomic, f, cmd)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			gotB = gotB[len(prefix):]
			if !bytes.Equal(gotB, wantB) {
				t.Errorf("bundle-add (command %d) of %s:\nappend      %x\nlibOpenflow %x", cmd, f, gotB, wantB)
			}
			if outer, inner := binary.BigEndian.Uint32(gotB[4:]), binary.BigEndian.Uint32(gotB[28:]); outer != xid || inner != xid {
				t.Errorf("bundle-add of %s: xid %#x, inner xid %#x, want both %#x", f, outer, inner, xid)
			}
		}
	}
}

// TestAppendDeleteStrictIsDeleteStrict: the strict delete of a dumped flow,
// by its raw match, is DeleteStrict's inside a bundle-add.
func TestAppendDeleteStrictIsDeleteStrict(t *testing.T) {
	for i, f := range encodedFlows(t) {
		fm, err := ofcodec.FlowMod(f, ofcodec.CommandAdd)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ofcodec.ScanFlowStats(statsEntry(t, fm, 0), nil)
		if err != nil || len(raw) != 1 {
			t.Fatalf("%s: %d entries, %v", f, len(raw), err)
		}
		del, err := ofcodec.DeleteStrict(raw[0].Decode())
		if err != nil {
			t.Fatal(err)
		}
		xid := uint32(i + 1)
		want, err := ofconn.Marshal(openflow13.NewBundleAdd(&openflow13.BundleAdd{BundleID: 5, Flags: openflow13.OFPBCT_ATOMIC, Message: del}), xid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ofcodec.AppendDeleteStrict(nil, xid, 5, ofcodec.BundleAtomic, raw[0])
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("strict delete of %s (%v):\nappend      %x\nlibOpenflow %x", f, err, got, want)
		}
	}
}

// TestAppendRefusesWhatFlowModRefuses: a flow Check rejects, or one the
// encoder would have to cut, is an error and leaves the buffer as it was.
func TestAppendRefusesWhatFlowModRefuses(t *testing.T) {
	for _, f := range []flows.Flow{
		{Table: 255},
		{Match: flows.Match{EthSrc: net.HardwareAddr{1, 2, 3}}},
		{Actions: []flows.Action{flows.GotoTable{Table: 0}}},
		{Actions: []flows.Action{ofcodec.Text{S: "resubmit(,3)"}}},
	} {
		if _, err := ofcodec.FlowMod(f, ofcodec.CommandAdd); err == nil {
			t.Errorf("FlowMod accepts %s", f)
		}
		got, err := ofcodec.AppendFlowMod([]byte("held"), 1, f, ofcodec.CommandAdd)
		if err == nil || string(got) != "held" {
			t.Errorf("AppendFlowMod of %s: %q, %v", f, got, err)
		}
	}
	if _, err := ofcodec.AppendMatch(nil, flows.Match{EthDst: net.HardwareAddr{1}}); err == nil {
		t.Error("AppendMatch accepts a 8-bit MAC")
	}
}

// TestAppendMatchKnowsEveryField: the append encoder writes each field of
// flows.Match itself. A field added to flows.Match fails this test until
// AppendMatch (and encodeMatch) encode it: the encoder would drop it.
func TestAppendMatchKnowsEveryField(t *testing.T) {
	known := []string{"EthType", "IPProto", "HasTunID", "TunID", "InPort", "HasVLAN", "VLAN", "EthSrc", "EthDst",
		"EthDstMask", "ArpSPA", "ArpTPA", "ArpOp", "IPv6Src", "HasICMPType", "ICMPType", "NDTarget"}
	typ := reflect.TypeFor[flows.Match]()
	for i := range typ.NumField() {
		if name := typ.Field(i).Name; !slices.Contains(known, name) {
			t.Errorf("flows.Match.%s: AppendMatch does not encode it", name)
		}
	}
}

package ovsdb

import (
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Which OVSDB changes make the agent re-apply, and which do not.
func TestInterestReasons(t *testing.T) {
	tp := bindTopo("vm-web-01")
	in := InterestOf(tp, tp.Host("host1"))
	ours := marks{owner: tp.Name, host: "host1"}
	intp := func(v int) *int { return &v }
	str := func(s string) *string { return &s }
	iface := func(name, ifaceID string, of int) *vswitch.Interface {
		return &vswitch.Interface{UUID: "u-" + name, Name: name, Ofport: intp(of),
			ExternalIDs: map[string]string{IfaceIDKey: ifaceID}}
	}
	plugged := iface("vnet0", "vm-web-01", 0)
	attached := iface("vnet0", "vm-web-01", 7)
	linkUp := attached.DeepCopy()
	linkUp.LinkState = str("up")
	ourPort := &vswitch.Port{UUID: "p1", Name: "hxvm1", Tag: intp(1), ExternalIDs: ours.ids()}
	retagged := ourPort.DeepCopy()
	retagged.Tag = intp(9)
	ourBridge := &vswitch.Bridge{UUID: "b1", Name: topology.BridgeInt, ExternalIDs: ours.ids()}
	withDPID := ourBridge.DeepCopy()
	withDPID.DatapathID = str("0000000000000001")
	bound := &vswitch.Port{UUID: "p2", Name: "vnet0", Tag: intp(1),
		ExternalIDs: map[string]string{KeyBoundOwner: tp.Name, KeyBoundHost: "host1", KeyBoundPort: "web"}}
	unmarked := bound.DeepCopy()
	unmarked.ExternalIDs = map[string]string{}

	cases := []struct {
		name     string
		table    string
		old, new model.Model
		want     string // substring of the reason; "" for none
	}{
		{"wanted iface-id plugged", vswitch.InterfaceTable, nil, plugged, "interface vnet0 with iface-id vm-web-01 (port web) appeared"},
		{"wanted iface-id attached", vswitch.InterfaceTable, plugged, attached, "ofport 0 -> 7"},
		{"wanted iface-id link up", vswitch.InterfaceTable, attached, linkUp, ""},
		{"wanted iface-id unplugged", vswitch.InterfaceTable, attached, nil, "disappeared"},
		{"iface-id changed away", vswitch.InterfaceTable, attached, iface("vnet0", "other", 7), `iface-id "vm-web-01" -> "other"`},
		{"someone else's interface", vswitch.InterfaceTable, nil, iface("tap9", "other", 3), ""},
		{"our port retagged", vswitch.PortTable, ourPort, retagged, "port hxvm1 of ours was edited"},
		{"our port deleted", vswitch.PortTable, ourPort, nil, "port hxvm1 of ours was deleted"},
		{"our bridge gets its datapath ID", vswitch.BridgeTable, ourBridge, withDPID, ""},
		{"bound port loses our keys", vswitch.PortTable, bound, unmarked, "port vnet0: ovs-vxctl's marks changed"},
		{"foreign port", vswitch.PortTable, nil, unmarked, ""},
	}
	for _, c := range cases {
		got := in.reason(c.table, c.old, c.new)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: reason %q, want %q", c.name, got, c.want)
		}
	}
}

package hwvtep

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

func TestPlanRemote(t *testing.T) {
	top := parse(t, unitTopology)
	want, _ := Desired(top, top.Host("tor1"))
	s := emptySwitch()
	theirs := &hwvtep.LogicalSwitch{UUID: uuid(500), Name: "theirs", OtherConfig: map[string]string{}, TunnelKey: new(int)}
	*theirs.TunnelKey = 999
	s.lswitches = append(s.lswitches, theirs)
	s.ucastRemote = append(s.ucastRemote, &hwvtep.UcastMacsRemote{UUID: uuid(501), MAC: "00:00:00:00:00:01", LogicalSwitch: theirs.UUID})
	plan, _ := planFrom(s, want)
	commit(t, s, plan)
	m := marks{owner: "u", host: "tor1"}

	mac := func(s string) net.HardwareAddr { h, _ := net.ParseMAC(s); return h }
	remote := []RemoteMAC{
		{VNI: 100, MAC: mac("52:54:00:00:00:01"), VTEP: netip.MustParseAddr("10.0.0.10"), IP: netip.MustParseAddr("10.1.1.1")},
		{VNI: 200, MAC: mac("52:54:00:00:00:02"), VTEP: netip.MustParseAddr("10.0.0.2")},
		{VNI: 999, MAC: mac("52:54:00:00:00:03"), VTEP: netip.MustParseAddr("10.0.0.2")}, // not ours: ignored
		{VNI: 300, MAC: mac("52:54:00:00:00:04"), VTEP: netip.MustParseAddr("10.0.0.3")}, // not on the switch
	}
	p := planRemote(s, m, remote)
	if len(p.Changes) != 2 {
		t.Fatalf("changes %q, want two inserts", p.Changes)
	}
	commit(t, s, p)
	if again := planRemote(s, m, remote); !again.Empty() {
		t.Errorf("second plan: %q", again.Changes)
	}
	// vm1 moves to h2, vm2 goes.
	remote = []RemoteMAC{{VNI: 100, MAC: mac("52:54:00:00:00:01"), VTEP: netip.MustParseAddr("10.0.0.2")}}
	p = planRemote(s, m, remote)
	if !slices.ContainsFunc(p.Changes, func(c string) bool { return strings.HasPrefix(c, "~ ucast remote a 52:54:00:00:00:01 -> 10.0.0.2") }) ||
		!slices.ContainsFunc(p.Changes, func(c string) bool { return strings.HasPrefix(c, "- ucast remote b 52:54:00:00:00:02") }) {
		t.Errorf("changes %q, want the move and the removal", p.Changes)
	}
	commit(t, s, p)
	if again := planRemote(s, m, remote); !again.Empty() {
		t.Errorf("after the move: %q", again.Changes)
	}
	if len(s.ucastRemote) != 2 || !slices.ContainsFunc(s.ucastRemote, func(r *hwvtep.UcastMacsRemote) bool { return r.UUID == uuid(501) }) {
		t.Errorf("their remote MAC was touched: %d rows", len(s.ucastRemote))
	}
	s.ucastLocal = append(s.ucastLocal, &hwvtep.UcastMacsLocal{UUID: uuid(600), MAC: "02:00:00:00:00:09", Ipaddr: "10.1.1.9", LogicalSwitch: s.lswitches[1].UUID},
		&hwvtep.UcastMacsLocal{UUID: uuid(601), MAC: "02:00:00:00:00:0a", LogicalSwitch: theirs.UUID})
	local, _ := s.index().localMACs(m, 0)
	if len(local) != 1 || local[0].MAC.String() != "02:00:00:00:00:09" || local[0].IP.String() != "10.1.1.9" || local[0].VNI != uint32(*s.lswitches[1].TunnelKey) {
		t.Errorf("local MACs = %+v, want the one of our logical switch", local)
	}
}

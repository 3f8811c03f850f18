package hwvtep

import (
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

func TestNotDriven(t *testing.T) {
	m := marks{owner: "u", host: "tor1"}
	k100, k200, k300 := 100, 200, 300
	lss := []*hwvtep.LogicalSwitch{
		{UUID: uuid(1), Name: "a", TunnelKey: &k100, OtherConfig: map[string]string{ovsdb.KeyOwner: "u", ovsdb.KeyHost: "tor1"}},
		{UUID: uuid(2), Name: "hand-made", TunnelKey: &k200, OtherConfig: map[string]string{}},
		{UUID: uuid(3), Name: "other", TunnelKey: &k300, OtherConfig: map[string]string{ovsdb.KeyOwner: "u", ovsdb.KeyHost: "tor2"}},
	}
	got := notDriven(lss, m, []uint32{400, 300, 200, 100})
	if len(got) != 3 {
		t.Fatalf("notDriven = %+v, want 3 networks", got)
	}
	want := []struct {
		vni    uint32
		reason string
		detail string
	}{{200, NotDrivenNotOurs, "not created by ovs-vxctl"}, {300, NotDrivenNotOurs, `host "tor2"`}, {400, NotDrivenMissing, "apply --host tor1"}}
	for i, w := range want {
		if got[i].VNI != w.vni || got[i].Reason != w.reason || !strings.Contains(got[i].Detail, w.detail) {
			t.Errorf("notDriven[%d] = %+v, want VNI %d %s mentioning %q", i, got[i], w.vni, w.reason, w.detail)
		}
	}
	if got := notDriven(lss, m, []uint32{100}); len(got) != 0 {
		t.Errorf("our own switch reported not driven: %+v", got)
	}
}

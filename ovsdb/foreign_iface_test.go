package ovsdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// describe renders HostInterfaces one a line, without ofport numbers
// (which OVS chooses) but with their sign.
func describe(ifs []HostInterface) string {
	var lines []string
	for _, i := range ifs {
		of := "none"
		switch {
		case i.OFPort > 0:
			of = "attached"
		case i.OFPort < 0:
			of = "failed"
		}
		lines = append(lines, fmt.Sprintf("%s %s %s owned=%v type=%q ofport=%s error=%q", i.Bridge, i.Name, i.Kind, i.Owned, i.Type, of, i.Error))
	}
	return strings.Join(lines, "\n")
}

func TestHostInterfacesSaysWhatIsOursAndAttached(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.vethPair("hxvm1")

	before, err := l.c.HostInterfaces(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`br-int br-int local owned=false type="" ofport=none error=""`,
		`br-tun br-tun local owned=false type="" ofport=none error=""`,
		`br-int hxvm1 vm owned=false type="" ofport=none error=""`,
		`br-int hxint1 internal owned=false type="" ofport=none error=""`,
	}, "\n")
	if got := describe(before); got != want {
		t.Fatalf("before apply:\n%s\nwant:\n%s", got, want)
	}

	l.reconcile(tp, h)
	// Someone else's port on our bridge is not ours to check.
	l.vsctl("add-port", "br-int", "fp0", "--", "set", "Interface", "fp0", "type=internal")
	after, err := l.c.SettledInterfaces(l.ctx, tp, h, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want = strings.Join([]string{
		`br-int br-int local owned=true type="internal" ofport=attached error=""`,
		`br-tun br-tun local owned=true type="internal" ofport=attached error=""`,
		`br-int hxvm1 vm owned=true type="" ofport=attached error=""`,
		`br-int hxint1 internal owned=true type="internal" ofport=attached error=""`,
		`br-int patch-int other owned=true type="patch" ofport=attached error=""`,
		`br-tun patch-tun other owned=true type="patch" ofport=attached error=""`,
		`br-tun vx-host2 other owned=true type="vxlan" ofport=attached error=""`,
		`br-tun vx-host3 other owned=true type="vxlan" ofport=attached error=""`,
	}, "\n")
	if got := describe(after); got != want {
		t.Fatalf("after apply:\n%s\nwant:\n%s", got, want)
	}
	for _, i := range after {
		if !i.Attached() {
			t.Errorf("%s: not Attached()", i.Name)
		}
	}
}

// A vm port whose interface does not exist is ours, settled, with OVS's
// error; one whose rows are not ours does not count as owned.
func TestHostInterfacesMissingAndForeign(t *testing.T) {
	l := newLab(t)
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	l.reconcile(tp, h) // hxvm1 does not exist

	ifs, err := l.c.SettledInterfaces(l.ctx, tp, h, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	vm := ifs[2]
	if vm.Name != "hxvm1" || !vm.Owned || vm.OFPort != -1 || !strings.Contains(vm.Error, "No such device") || vm.Attached() {
		t.Fatalf("missing hxvm1: %+v, want owned, ofport -1 and OVS's \"No such device\"", vm)
	}

	// The internal port's rows lose our marks: no longer ours.
	l.vsctl("remove", "Interface", "hxint1", "external_ids", KeyOwner)
	ifs, err = l.c.HostInterfaces(l.ctx, tp, h)
	if err != nil {
		t.Fatal(err)
	}
	if in := ifs[3]; in.Name != "hxint1" || in.Owned || in.Attached() {
		t.Fatalf("hxint1 without our marks: %+v, want not owned", in)
	}
}

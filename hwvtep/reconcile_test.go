package hwvtep

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsrun"
	"github.com/ovs-vxctl/ovs-vxctl/ovsrun/ovsruntest"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// vtepDB starts an ovsdb-server serving the hardware_vtep database (and
// ovs-vswitchd, but no emulator) in a namespace of its own, with physical
// switch tor1 (ports p0, p1, p2) and a logical switch "theirs" that is not
// ours: bound to p2 vlan 5, with a local MAC.
func vtepDB(t *testing.T) *ovsrun.Instance {
	t.Helper()
	ovsruntest.Require(t, "vtep-ctl")
	ns := ovsruntest.NetNS(t, "hwv")
	dir, err := os.MkdirTemp("/tmp", ns+"-")
	if err != nil {
		t.Fatal(err)
	}
	inst := &ovsrun.Instance{Dir: dir, NetNS: ns}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := inst.Stop(ctx); err != nil {
			t.Logf("stopping OVS: %v", err)
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := inst.StartVTEP(ctx); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"add-ps", "tor1"}, {"set", "Physical_Switch", "tor1", "tunnel_ips=10.0.0.9"},
		{"add-port", "tor1", "p0"}, {"add-port", "tor1", "p1"}, {"add-port", "tor1", "p2"},
		{"add-ls", "theirs"}, {"set", "Logical_Switch", "theirs", "tunnel_key=999"},
		{"bind-ls", "tor1", "p2", "5", "theirs"},
		{"add-ucast-local", "theirs", "00:00:00:00:99:01", "10.0.0.9"},
		{"add-mcast-remote", "theirs", "unknown-dst", "10.0.0.1"},
	} {
		vtepctl(t, inst, args...)
	}
	return inst
}

func vtepctl(t *testing.T, inst *ovsrun.Instance, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := inst.Vtepctl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// hwTopology: network a (VNI 100) on h1, h2 and tor1 p0 untagged; network b
// (VNI 200) on h1 and tor1 p1 vlan 10.
func hwTopology(t *testing.T, endpoint string, extra string) *topology.Topology {
	t.Helper()
	y := "name: hw\nhosts:\n" +
		"  - {name: h1, vtep: 10.0.0.1}\n  - {name: h2, vtep: 10.0.0.2}\n" +
		"  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: '" + endpoint + "'}}\n" +
		"networks:\n" +
		"  - {name: a, vni: 100, ports: [{host: h1, name: vm1}, {host: h2, name: vm2}, {host: tor1, name: p0, vlan: 0}]}\n" +
		"  - {name: b, vni: 200, ports: [{host: h1, name: vm3}, {host: tor1, name: p1, vlan: 10}]}\n" + extra
	top, err := topology.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func mustApply(t *testing.T, top *topology.Topology, dry bool) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Apply(ctx, Options{Topology: top, Host: top.Host("tor1"), DryRun: dry})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return rep
}

func TestReconcileRealDatabase(t *testing.T) {
	inst := vtepDB(t)
	top := hwTopology(t, inst.VTEPDBEndpoint(), "")

	if rep := mustApply(t, top, true); !rep.Changed() || vtepctl(t, inst, "list-ls") != "theirs" {
		t.Fatalf("dry run: changes %q, logical switches %q; want changes and nothing created", rep.Changes, vtepctl(t, inst, "list-ls"))
	}
	rep := mustApply(t, top, false)
	t.Logf("first apply:\n%s", strings.Join(rep.Changes, "\n"))
	if got := vtepctl(t, inst, "list-ls"); got != "a\nb\ntheirs" {
		t.Errorf("logical switches %q, want a, b, theirs", got)
	}
	checkBindings(t, inst, "p0", "0000 a")
	checkBindings(t, inst, "p1", "0010 b")
	checkBindings(t, inst, "p2", "0005 theirs")
	if got := vtepctl(t, inst, "get", "Logical_Switch", "a", "tunnel_key", "replication_mode"); got != "100\nsource_node" {
		t.Errorf("a: tunnel_key, replication_mode = %q, want 100 and source_node", got)
	}
	checkRemote(t, inst, "a", "unknown-dst -> vxlan_over_ipv4/10.0.0.1", "unknown-dst -> vxlan_over_ipv4/10.0.0.2")
	checkRemote(t, inst, "b", "unknown-dst -> vxlan_over_ipv4/10.0.0.1")

	if rep := mustApply(t, top, false); rep.Changed() {
		t.Errorf("second apply changed %q, want nothing", rep.Changes)
	}

	// The switch learns a MAC in a; h2 leaves network a; network b moves
	// to VLAN 11 of p1.
	vtepctl(t, inst, "add-ucast-local", "a", "52:54:00:00:00:99", "10.0.0.9")
	top2 := hwTopology(t, inst.VTEPDBEndpoint(), "")
	a := top2.Network("a")
	a.Ports = slices.DeleteFunc(a.Ports, func(p *topology.Port) bool { return p.Host.Name == "h2" })
	top2.Network("b").PortsOn(top2.Host("tor1"))[0].VLAN = 11
	rep = mustApply(t, top2, false)
	t.Logf("second topology:\n%s", strings.Join(rep.Changes, "\n"))
	checkRemote(t, inst, "a", "unknown-dst -> vxlan_over_ipv4/10.0.0.1")
	checkBindings(t, inst, "p1", "0011 b")
	if got := vtepctl(t, inst, "list-local-macs", "a"); !strings.Contains(got, "52:54:00:00:00:99") {
		t.Errorf("the switch's local MAC in a went: %q", got)
	}
	if rep := mustApply(t, top2, false); rep.Changed() {
		t.Errorf("re-apply changed %q, want nothing", rep.Changes)
	}

	destroy(t, top2, true)
	if got := vtepctl(t, inst, "list-ls"); got != "theirs" {
		t.Errorf("after destroy: logical switches %q, want theirs only", got)
	}
	checkBindings(t, inst, "p0", "")
	checkBindings(t, inst, "p1", "")
	checkBindings(t, inst, "p2", "0005 theirs")
	if got := vtepctl(t, inst, "list-ports", "tor1"); got != "p0\np1\np2" {
		t.Errorf("after destroy: ports %q, want p0 p1 p2", got)
	}
	if got := vtepctl(t, inst, "list-local-macs", "theirs"); !strings.Contains(got, "00:00:00:00:99:01") {
		t.Errorf("after destroy: the switch's MAC of theirs went: %q", got)
	}
	checkRemote(t, inst, "theirs", "unknown-dst -> vxlan_over_ipv4/10.0.0.1")
	destroy(t, top2, false)
}

func destroy(t *testing.T, top *topology.Topology, wantChanges bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Destroy(ctx, Options{Topology: top, Host: top.Host("tor1")})
	if err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if rep.Changed() != wantChanges {
		t.Errorf("destroy changed %q, want changes: %v", rep.Changes, wantChanges)
	}
	t.Logf("destroy:\n%s", strings.Join(rep.Changes, "\n"))
}

func checkBindings(t *testing.T, inst *ovsrun.Instance, port, want string) {
	t.Helper()
	if got := vtepctl(t, inst, "list-bindings", "tor1", port); got != want {
		t.Errorf("bindings of %s = %q, want %q", port, got, want)
	}
}

// checkRemote checks the mcast-mac-remote lines of logical switch ls.
func checkRemote(t *testing.T, inst *ovsrun.Instance, ls string, want ...string) {
	t.Helper()
	out := vtepctl(t, inst, "list-remote-macs", ls)
	_, mcast, _ := strings.Cut(out, "mcast-mac-remote")
	var got []string
	for _, l := range strings.Split(mcast, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			got = append(got, l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("remote mcast of %s = %q, want %q (list-remote-macs:\n%s)", ls, got, want, out)
	}
}

func TestConflictsChangeNothing(t *testing.T) {
	inst := vtepDB(t)
	for name, extra := range map[string]string{
		"name taken": "  - {name: theirs, vni: 300, ports: [{host: tor1, name: p2, vlan: 7}]}\n",
		"VNI taken":  "  - {name: c, vni: 999, ports: [{host: tor1, name: p2, vlan: 7}]}\n",
		"binding":    "  - {name: c, vni: 300, ports: [{host: tor1, name: p2, vlan: 5}]}\n",
		"no port":    "  - {name: c, vni: 300, ports: [{host: tor1, name: p9, vlan: 5}]}\n",
	} {
		top := hwTopology(t, inst.VTEPDBEndpoint(), extra)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := Apply(ctx, Options{Topology: top, Host: top.Host("tor1")})
		cancel()
		if err == nil {
			t.Errorf("%s: apply succeeded, want a refusal", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if got := vtepctl(t, inst, "list-ls"); got != "theirs" {
			t.Errorf("%s: logical switches %q after a refusal, want theirs only", name, got)
		}
	}
}

package hostnet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// inNamespace re-runs the calling test inside a fresh network namespace, so
// it changes no address or route of the machine. It returns true in the
// child, where the test body runs.
func inNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv("HOSTNET_TEST_NS") != "" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root to create a network namespace")
	}
	ns := fmt.Sprintf("hnt%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "HOSTNET_TEST_NS="+ns)
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("test failed in namespace: %v", err)
	}
	return false
}

func mustIP(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ip(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func texts(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Text)
	}
	return out
}

func TestAddressesAndRoutesAreOwnedAndIdempotent(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ctx := context.Background()
	// int1 stands for an OVS internal port; up0 makes the gateway reachable.
	// (veths: this kernel has no dummy links).
	mustIP(t, "link", "add", "int1", "type", "veth", "peer", "name", "int1p")
	mustIP(t, "link", "set", "int1p", "up")
	mustIP(t, "link", "add", "up0", "type", "veth", "peer", "name", "up0p")
	mustIP(t, "addr", "add", "10.9.0.1/24", "dev", "up0")
	mustIP(t, "link", "set", "up0", "up")
	mustIP(t, "link", "set", "up0p", "up")
	mustIP(t, "route", "add", "10.2.0.0/24", "via", "10.9.0.2") // someone else's route

	h := &topology.Host{Name: "h1", Managed: true, Routes: []topology.Route{
		{To: netip.MustParsePrefix("10.1.8.0/24"), Via: netip.MustParseAddr("10.9.0.2")}}}
	n := &topology.Network{Name: "transit", VNI: 10}
	n.Ports = []*topology.Port{{Network: n, Host: h, Name: "int1", Type: topology.PortInternal, IP: netip.MustParsePrefix("1.1.1.1/24")}}
	topo := &topology.Topology{Name: "t", Hosts: []*topology.Host{h}, Networks: []*topology.Network{n}}

	plan, err := Plan(ctx, topo, h)
	if err != nil {
		t.Fatal(err)
	}
	want := "+ address 1.1.1.1/24 on int1\n~ link int1 up\n+ route 10.1.8.0/24 via 10.9.0.2"
	if got := strings.Join(texts(plan), "\n"); got != want {
		t.Fatalf("first plan:\n%s\nwant:\n%s", got, want)
	}
	if err := Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if out := mustIP(t, "route", "show", "10.1.8.0/24"); !strings.Contains(out, "via 10.9.0.2") || !strings.Contains(out, "proto 118") {
		t.Fatalf("route not installed with our protocol: %q", out)
	}
	if again, err := Plan(ctx, topo, h); err != nil || len(again) != 0 {
		t.Fatalf("second plan not empty: %v %v", texts(again), err)
	}

	// A changed address replaces the old one; a dropped route goes; the
	// foreign route stays.
	n.Ports[0].IP = netip.MustParsePrefix("1.1.1.2/24")
	h.Routes = nil
	plan, err = Plan(ctx, topo, h)
	if err != nil {
		t.Fatal(err)
	}
	want = "- address 1.1.1.1/24 on int1\n+ address 1.1.1.2/24 on int1\n- route 10.1.8.0/24 via 10.9.0.2"
	if got := strings.Join(texts(plan), "\n"); got != want {
		t.Fatalf("change plan:\n%s\nwant:\n%s", got, want)
	}
	if err := Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if out := mustIP(t, "route", "show", "10.2.0.0/24"); !strings.Contains(out, "via 10.9.0.2") {
		t.Fatalf("foreign route lost: %q", out)
	}

	// Destroy removes our routes only.
	h.Routes = []topology.Route{{To: netip.MustParsePrefix("10.1.8.0/24"), Via: netip.MustParseAddr("10.9.0.2")}}
	plan, _ = Plan(ctx, topo, h)
	if err := Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	d, err := PlanDestroy(ctx)
	if err != nil || strings.Join(texts(d), "\n") != "- route 10.1.8.0/24 via 10.9.0.2" {
		t.Fatalf("destroy plan %v %v", texts(d), err)
	}
	if err := Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if out := mustIP(t, "route", "show", "10.2.0.0/24"); !strings.Contains(out, "via 10.9.0.2") {
		t.Fatalf("destroy removed a foreign route: %q", out)
	}
	if out := mustIP(t, "route", "show", "proto", "118"); strings.TrimSpace(out) != "" {
		t.Fatalf("our route survived destroy: %q", out)
	}
}

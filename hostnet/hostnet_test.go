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
	if testing.Short() {
		t.Skip("needs a network namespace: skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
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

	plan, err := Plan(ctx, topo, h, Owned{"int1": true})
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
	if again, err := Plan(ctx, topo, h, Owned{"int1": true}); err != nil || len(again) != 0 {
		t.Fatalf("second plan not empty: %v %v", texts(again), err)
	}

	// A changed address replaces the old one; a dropped route goes; the
	// foreign route stays.
	n.Ports[0].IP = netip.MustParsePrefix("1.1.1.2/24")
	h.Routes = nil
	plan, err = Plan(ctx, topo, h, Owned{"int1": true})
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
	plan, _ = Plan(ctx, topo, h, Owned{"int1": true})
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

// A dry run plans the internal ports apply will create as the real run
// finds them: no addresses, down. Ports neither owned nor pending are still
// refused.
func TestPlanPending(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ctx := context.Background()
	mustIP(t, "link", "add", "up0", "type", "veth", "peer", "name", "up0p")
	mustIP(t, "addr", "add", "10.9.0.1/24", "dev", "up0")
	mustIP(t, "link", "set", "up0", "up")
	h := &topology.Host{Name: "h1", Managed: true, Routes: []topology.Route{
		{To: netip.MustParsePrefix("10.1.8.0/24"), Via: netip.MustParseAddr("10.9.0.2")}}}
	n := &topology.Network{Name: "transit", VNI: 10}
	n.Ports = []*topology.Port{{Network: n, Host: h, Name: "new1", Type: topology.PortInternal, IP: netip.MustParsePrefix("1.1.1.1/24")}}
	topo := &topology.Topology{Name: "t", Hosts: []*topology.Host{h}, Networks: []*topology.Network{n}}
	plan, err := PlanPending(ctx, topo, h, Owned{}, Owned{"new1": true})
	if err != nil {
		t.Fatal(err)
	}
	want := "+ address 1.1.1.1/24 on new1\n~ link new1 up\n+ route 10.1.8.0/24 via 10.9.0.2"
	if got := strings.Join(texts(plan), "\n"); got != want {
		t.Fatalf("dry-run plan:\n%s\nwant:\n%s", got, want)
	}
	if _, err := PlanPending(ctx, topo, h, Owned{}, Owned{"other": true}); err == nil || !strings.Contains(err.Error(), "internal port new1") {
		t.Fatalf("PlanPending of a port neither owned nor pending: %v, want a refusal", err)
	}
}

// A declared route whose prefix already has a route ovs-vxctl did not
// install is refused at plan time (`ip route replace` would overwrite it);
// one of ours to the same prefix through another gateway is changed.
func TestPlanRefusesToReplaceAForeignRoute(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	ctx := context.Background()
	mustIP(t, "link", "add", "up0", "type", "veth", "peer", "name", "up0p")
	mustIP(t, "addr", "add", "10.9.0.1/24", "dev", "up0")
	mustIP(t, "addr", "add", "2001:db8:9::1/64", "dev", "up0", "nodad")
	mustIP(t, "link", "set", "up0", "up")
	mustIP(t, "link", "set", "up0p", "up")
	mustIP(t, "route", "add", "10.1.8.0/24", "via", "10.9.0.3")                // the admin's
	mustIP(t, "-6", "route", "add", "2001:db8:8::/64", "via", "2001:db8:9::3") // the admin's
	for _, r := range []topology.Route{
		{To: netip.MustParsePrefix("10.1.8.0/24"), Via: netip.MustParseAddr("10.9.0.2")},
		{To: netip.MustParsePrefix("2001:db8:8::/64"), Via: netip.MustParseAddr("2001:db8:9::2")},
	} {
		h := &topology.Host{Name: "h1", Managed: true, Routes: []topology.Route{r}}
		topo := &topology.Topology{Name: "t", Hosts: []*topology.Host{h}}
		if plan, err := Plan(ctx, topo, h, Owned{}); err == nil || !strings.Contains(err.Error(), "ovs-vxctl did not install") {
			t.Errorf("route %s over a foreign one: plan %v, error %v; want a refusal", r.To, texts(plan), err)
		}
	}
	if out := mustIP(t, "route", "show", "10.1.8.0/24"); !strings.Contains(out, "via 10.9.0.3") {
		t.Fatalf("foreign route changed: %q", out)
	}

	mustIP(t, "route", "del", "10.1.8.0/24")
	h := &topology.Host{Name: "h1", Managed: true, Routes: []topology.Route{
		{To: netip.MustParsePrefix("10.1.8.0/24"), Via: netip.MustParseAddr("10.9.0.2")}}}
	topo := &topology.Topology{Name: "t", Hosts: []*topology.Host{h}}
	for _, via := range []string{"10.9.0.2", "10.9.0.4"} {
		h.Routes[0].Via = netip.MustParseAddr(via)
		plan, err := Plan(ctx, topo, h, Owned{})
		if err != nil {
			t.Fatalf("route via %s, over our own: %v", via, err)
		}
		if err := Apply(ctx, plan); err != nil {
			t.Fatal(err)
		}
	}
	if out := mustIP(t, "route", "show", "10.1.8.0/24"); !strings.Contains(out, "via 10.9.0.4") {
		t.Fatalf("our route not changed: %q", out)
	}
}

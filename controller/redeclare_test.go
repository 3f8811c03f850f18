package controller

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

func TestRedeclare(t *testing.T) {
	ip := netip.MustParseAddr
	decl := func(vni uint32, m, host string, ips ...string) flows.Endpoint {
		e := flows.Endpoint{VNI: vni, MAC: mac(m), Host: host}
		for _, s := range ips {
			e.IPs = append(e.IPs, ip(s))
		}
		return e
	}
	now := time.Now()
	k := NewKnowledge([]flows.Endpoint{
		decl(100, "52:54:00:00:00:01", "h1", "10.0.0.1"), // stays
		decl(100, "52:54:00:00:00:02", "h2", "10.0.0.2"), // removed from the file
		decl(100, "52:54:00:00:00:03", "h1"),             // moves to h3, gets an IP
	}, Limits{})
	learn := func(m, host, addr string) {
		t.Helper()
		if _, err := k.Observe(key(100, m), host, ip(addr), now); err != nil {
			t.Fatal(err)
		}
	}
	learn("52:54:00:00:00:04", "h2", "10.0.0.4")  // declared from now on
	learn("52:54:00:00:00:05", "h2", "10.0.0.33") // loses 10.0.0.33, declared for :03
	learn("52:54:00:00:00:06", "h9", "10.0.0.6")  // h9 leaves the network
	v := k.Version()

	keep := func(host string, vni uint32) bool { return host != "h9" }
	ev := k.Redeclare([]flows.Endpoint{
		decl(100, "52:54:00:00:00:01", "h1", "10.0.0.1"),
		decl(100, "52:54:00:00:00:03", "h3", "10.0.0.33"),
		decl(100, "52:54:00:00:00:04", "h2", "10.0.0.4"),
		decl(200, "52:54:00:00:00:07", "h1", "10.2.0.7"), // new
	}, keep)

	got := map[string]EventKind{}
	for _, e := range ev {
		got[e.Key.HardwareAddr().String()] = e.Kind
	}
	want := map[string]EventKind{
		"52:54:00:00:00:02": EventUndeclared,
		"52:54:00:00:00:03": EventDeclared,
		"52:54:00:00:00:04": EventDeclared,
		"52:54:00:00:00:06": EventForgotten,
		"52:54:00:00:00:07": EventDeclared,
	}
	if len(got) != len(want) || len(ev) != len(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	for m, kind := range want {
		if got[m] != kind {
			t.Errorf("%s: event %v, want %v", m, got[m], kind)
		}
	}

	check := func(vni uint32, m, host string, learned bool, ips ...string) {
		t.Helper()
		e, ok := k.Lookup(key(vni, m))
		if !ok {
			t.Errorf("%s unknown", m)
			return
		}
		var gotIPs []string
		for _, a := range e.IPs {
			gotIPs = append(gotIPs, a.String())
		}
		if e.Host != host || e.Learned != learned || !slices.Equal(gotIPs, ips) {
			t.Errorf("%s: %s learned=%v %v, want %s learned=%v %v", m, e.Host, e.Learned, gotIPs, host, learned, ips)
		}
	}
	check(100, "52:54:00:00:00:01", "h1", false, "10.0.0.1")
	check(100, "52:54:00:00:00:03", "h3", false, "10.0.0.33")
	check(100, "52:54:00:00:00:04", "h2", false, "10.0.0.4")
	check(100, "52:54:00:00:00:05", "h2", true)
	check(200, "52:54:00:00:00:07", "h1", false, "10.2.0.7")
	for _, m := range []string{"52:54:00:00:00:02", "52:54:00:00:00:06"} {
		if _, ok := k.Lookup(key(100, m)); ok {
			t.Errorf("%s still known", m)
		}
	}
	if d, l := k.Counts(); d != 4 || l != 1 {
		t.Errorf("counts: %d declared, %d learned; want 4 and 1", d, l)
	}
	// The address taken from :05 is in the change log too, so that an
	// incremental update removes its ARP responder.
	changed, _, _, complete := k.ChangesSince(v)
	if !complete {
		t.Fatal("change log incomplete")
	}
	if _, ok := changed[key(100, "52:54:00:00:00:05")]; !ok {
		t.Error("the MAC that lost a declared IP is not among the changes")
	}
	// The declared address is no longer up for learning by another MAC.
	if _, err := k.Observe(key(100, "52:54:00:00:00:05"), "h2", ip("10.0.0.33"), now); err != nil {
		t.Fatal(err)
	}
	check(100, "52:54:00:00:00:05", "h2", true)

	// The same declarations again change nothing.
	v = k.Version()
	if ev := k.Redeclare([]flows.Endpoint{
		decl(100, "52:54:00:00:00:01", "h1", "10.0.0.1"),
		decl(100, "52:54:00:00:00:03", "h3", "10.0.0.33"),
		decl(100, "52:54:00:00:00:04", "h2", "10.0.0.4"),
		decl(200, "52:54:00:00:00:07", "h1", "10.2.0.7"),
	}, keep); len(ev) != 0 || k.Version() != v {
		t.Errorf("a second identical Redeclare gave %d events, version %d -> %d", len(ev), v, k.Version())
	}
}

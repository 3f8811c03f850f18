package lab

import (
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func hwTopo(t *testing.T, ovsdb, ps string, ports string) *topology.Topology {
	t.Helper()
	top, err := topology.Parse([]byte("name: hw\nhosts:\n  - {name: h1, vtep: 10.0.0.1}\n" +
		"  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: '" + ovsdb + "', physical_switch: " + ps + "}}\n" +
		"networks:\n  - {name: a, vni: 100, ports: [{host: h1, name: vm1}, " + ports + "]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestPlanHardwareVTEP(t *testing.T) {
	top := hwTopo(t, "tcp:10.0.0.9:6640", "tor1", "{host: tor1, name: p0, vlan: 0}, {host: tor1, name: p1, vlan: 10}")
	p, err := newPlan(Options{Topology: top, SkipApply: true})
	if err != nil {
		t.Fatal(err)
	}
	hp := p.hosts[1]
	if len(hp.vms) != 2 || len(hp.nets) != 0 {
		t.Errorf("tor1: %d servers, %d kernel networks; want 2 servers and no kernel VTEP", len(hp.vms), len(hp.nets))
	}
	for _, c := range []struct{ target, remote, extra string }{
		{"tcp:10.0.0.9:6640", "ptcp:6640:10.0.0.9", ""},
		{"tcp:10.0.0.99:6641", "ptcp:6641:10.0.0.99", "10.0.0.99"},
		{"unix:/run/tor1/db.sock", "punix:/run/tor1/db.sock", ""},
	} {
		remote, extra, err := ovsdbRemote(hwTopo(t, c.target, "tor1", "{host: tor1, name: p0, vlan: 0}").Host("tor1"))
		if err != nil || remote != c.remote || (extra.IsValid() && extra.String() != c.extra) || (!extra.IsValid() && c.extra != "") {
			t.Errorf("%s: remote %q, extra address %v, error %v; want %q, %q", c.target, remote, extra, err, c.remote, c.extra)
		}
	}
	for _, c := range []struct{ name, target, ps, ports, want string }{
		{"ssl", "ssl:10.0.0.9:6640", "tor1", "{host: tor1, name: p0, vlan: 0}", "tcp: or unix: only"},
		{"long switch name", "tcp:10.0.0.9:6640", "leaf101", "{host: tor1, name: p0, vlan: 0}", "fit 15 characters"},
		{"switch named like a port", "tcp:10.0.0.9:6640", "p0", "{host: tor1, name: p0, vlan: 0}", "physical switch p0 would be a bridge"},
		{"long tagged port", "tcp:10.0.0.9:6640", "tor1", "{host: tor1, name: abcdefghijklm, vlan: 5}", "sw-abcdefghijklm, longer than 15"},
		{"access switch clash", "tcp:10.0.0.9:6640", "tor1", "{host: tor1, name: p0, vlan: 5}, {host: tor1, name: s-p0, vlan: 0}", "s-p0, already used"},
	} {
		_, err := newPlan(Options{Topology: hwTopo(t, c.target, c.ps, c.ports), SkipApply: true})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

package flows

import (
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// An OVS host treats a hardware VTEP like any unmanaged peer: a tunnel port
// classified in table 0, accepted in table 2 for the networks they share,
// and in the flood list (table 21) of exactly those networks.
func TestHardwareVTEPIsAPeer(t *testing.T) {
	topo, err := topology.Parse([]byte("name: hw\nhosts:\n" +
		"  - {name: host1, vtep: 10.0.0.1}\n  - {name: host2, vtep: 10.0.0.2}\n" +
		"  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640'}}\n" +
		"networks:\n" +
		"  - {name: a, vni: 100, ports: [{host: host1, name: vm1}, {host: host2, name: vm2}, {host: tor1, name: p0, vlan: 0}]}\n" +
		"  - {name: b, vni: 200, ports: [{host: host1, name: vm3}, {host: host2, name: vm4}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	alloc := mustAlloc(t, topo, "host1")
	tor, ok := alloc.TunnelOFPort["tor1"]
	if !ok {
		t.Fatalf("host1 has no tunnel port to tor1: %v", alloc.TunnelOFPort)
	}
	prog := compileHost(t, topo, "host1")
	classified := false
	var accepted []uint64
	for _, f := range prog.Tun {
		switch {
		case f.Table == TableClassify && f.Match.InPort == tor:
			classified = slices.Contains(f.Actions, Action(GotoTable{TableFromTun}))
		case f.Table == TableFromTun && f.Match.InPort == tor && f.Match.HasTunID:
			accepted = append(accepted, f.Match.TunID)
		}
	}
	if !classified || !slices.Equal(accepted, []uint64{100}) {
		t.Errorf("host1: tor1's tunnel port %d classified to table 2: %v, VNIs accepted from it %v (want [100]):\n%s",
			tor, classified, accepted, strings.Join(lines(prog.Tun), "\n"))
	}
	vlanA, vlanB := alloc.LocalVLAN[100], alloc.LocalVLAN[200]
	for _, f := range prog.Tun {
		if f.Table != TableFlood || !f.Match.HasVLAN {
			continue
		}
		outs := outputs(f)
		switch f.Match.VLAN {
		case vlanA:
			if !slices.Contains(outs, tor) || !slices.Contains(outs, alloc.TunnelOFPort["host2"]) {
				t.Errorf("flood of network a = %s, want host2 and tor1", f)
			}
		case vlanB:
			if slices.Contains(outs, tor) {
				t.Errorf("flood of network b = %s reaches tor1", f)
			}
		}
	}
}

func outputs(f Flow) []uint32 {
	var out []uint32
	for _, a := range f.Actions {
		if o, ok := a.(Output); ok {
			out = append(out, o.Port)
		}
	}
	return out
}

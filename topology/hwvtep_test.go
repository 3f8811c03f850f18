package topology

import (
	"fmt"
	"strings"
	"testing"
)

// hwHosts are two managed hosts and a hardware VTEP (line 5).
const hwHosts = "hosts:\n" +
	"  - {name: h1, vtep: 10.0.0.1}\n" +
	"  - {name: h2, vtep: 10.0.0.2}\n" +
	"  - {name: tor1, vtep: 10.0.0.9, managed: false, hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640'}}\n"

// hwWith is hdr and hwHosts with tor1's hardware_vtep mapping replaced by hw
// (and extra host fields appended).
func hwWith(hw, extra string) string {
	h := strings.Replace(hwHosts, "hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640'}", hw, 1)
	if extra != "" {
		h = strings.Replace(h, "managed: false, ", "managed: false, "+extra+", ", 1)
	}
	return hdr + h
}

func TestParseHardwareVTEP(t *testing.T) {
	y := hdr + hwHosts + networks(
		network("a", "100", "host: h1, name: vm1", "host: tor1, name: p0, vlan: 0", "host: tor1, name: p1, vlan: 10, mac: '52:54:00:00:00:09'"),
		network("b", "200", "host: h2, name: vm2", "host: tor1, name: p0, vlan: 20"),
	)
	top, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	tor := top.Host("tor1")
	if !tor.IsHardwareVTEP() || tor.Managed {
		t.Fatalf("tor1: hardware VTEP %v, managed %v; want a hardware VTEP, unmanaged", tor.IsHardwareVTEP(), tor.Managed)
	}
	if got := *tor.HardwareVTEP; got != (HardwareVTEP{OVSDB: "tcp:10.0.0.9:6640", PhysicalSwitch: "tor1"}) {
		t.Errorf("tor1 hardware_vtep = %+v, want tcp:10.0.0.9:6640 and physical switch defaulting to the host name", got)
	}
	if top.Host("h1").IsHardwareVTEP() {
		t.Errorf("h1 is a hardware VTEP, want a managed host")
	}
	var got []string
	for _, p := range top.PortsOn(tor) {
		got = append(got, fmt.Sprintf("%s:%s.%d", p.Network.Name, p.Name, p.VLAN))
	}
	if want := "a:p0.0 a:p1.10 b:p0.20"; strings.Join(got, " ") != want {
		t.Errorf("tor1 ports = %v, want %s", got, want)
	}
	if hw := top.HardwareVTEPs(); len(hw) != 1 || hw[0] != tor {
		t.Errorf("HardwareVTEPs() = %v, want [tor1]", hw)
	}
	// The OVS hosts tunnel to the hardware VTEP like to any unmanaged peer.
	if peers := top.Peers(top.Host("h1")); len(peers) != 1 || peers[0] != tor {
		t.Errorf("h1's peers = %v, want [tor1]", peers)
	}
	if fp := top.FloodPeers(top.Host("h2"), top.Network("b")); len(fp) != 1 || fp[0] != tor {
		t.Errorf("h2's flood list for b = %v, want [tor1]", fp)
	}
}

func TestParseHardwareVTEPExplicitSwitchAndTargets(t *testing.T) {
	for _, target := range []string{"tcp:10.0.0.9:6640", "ssl:10.0.0.9:6640", "unix:/run/vtep/db.sock", "'tcp:[2001:db8::9]:6640'"} {
		y := hwWith("hardware_vtep: {ovsdb: "+target+", physical_switch: 'Leaf-1'}", "") + networks(network("a", "1", "host: tor1, name: 'Ethernet1/1', vlan: 4094"))
		top, err := Parse([]byte(y))
		if err != nil {
			t.Errorf("%s: %v", target, err)
			continue
		}
		hw := top.Host("tor1").HardwareVTEP
		if hw.PhysicalSwitch != "Leaf-1" || hw.OVSDB != strings.Trim(target, "'") {
			t.Errorf("%s: got %+v", target, hw)
		}
	}
}

func TestParseHardwareVTEPRules(t *testing.T) {
	hw := func(ports ...string) string { return hdr + hwHosts + networks(network("a", "1", ports...)) }
	cases := []struct {
		name string
		yaml string
		want []want
	}{
		{"managed absent", hdr + "hosts:\n  - {name: tor1, vtep: 10.0.0.9, hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640'}}\n",
			[]want{{"hosts[0].managed", "set managed: false", 3}}},
		{"managed true", hdr + strings.Replace(hwHosts, "managed: false", "managed: true", 1),
			[]want{{"hosts[2].managed", "set managed: false", 5}}},
		{"not a mapping", hwWith("hardware_vtep: 'tcp:10.0.0.9:6640'", ""),
			[]want{{"hosts[2].hardware_vtep", "want a mapping", 5}}},
		{"ovsdb missing", hwWith("hardware_vtep: {physical_switch: tor1}", ""),
			[]want{{"hosts[2].hardware_vtep.ovsdb", "required", 5}}},
		{"ovsdb scheme", hwWith("hardware_vtep: {ovsdb: 'http://10.0.0.9'}", ""),
			[]want{{"hosts[2].hardware_vtep.ovsdb", "want tcp:IP:PORT, ssl:IP:PORT or unix:PATH", 5}}},
		{"ovsdb no port", hwWith("hardware_vtep: {ovsdb: 'tcp:10.0.0.9'}", ""),
			[]want{{"hosts[2].hardware_vtep.ovsdb", "want tcp:IP:PORT", 5}}},
		{"ovsdb empty unix", hwWith("hardware_vtep: {ovsdb: 'unix:'}", ""),
			[]want{{"hosts[2].hardware_vtep.ovsdb", "want unix:PATH", 5}}},
		{"unknown field", hwWith("hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640', vni: 3}", ""),
			[]want{{"hosts[2].hardware_vtep.vni", "unknown field", 5}}},
		{"physical switch space", hwWith("hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640', physical_switch: 'a b'}", ""),
			[]want{{"hosts[2].hardware_vtep.physical_switch", "may not contain spaces", 5}}},
		{"physical switch empty", hwWith("hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640', physical_switch: ''}", ""),
			[]want{{"hosts[2].hardware_vtep.physical_switch", "must not be empty", 5}}},
		{"ipv6 vtep", hdr + "hosts:\n  - {name: tor1, vtep: '2001:db8::9', managed: false, hardware_vtep: {ovsdb: 'unix:/x'}}\n",
			[]want{{"hosts[0].vtep", "only knows vxlan_over_ipv4", 3}}},
		{"dst_port", hwWith("hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640'}", "dst_port: 8472"),
			[]want{{"hosts[2].dst_port", "uses UDP port 4789", 5}}},
		{"dst_port from defaults", "name: t\ndefaults: {dst_port: 8472}\n" + hwHosts,
			[]want{{"hosts[2].dst_port", "8472: a hardware VTEP uses UDP port 4789", 6}}},
		{"same switch twice", hdr + hwHosts + "  - {name: tor2, vtep: 10.0.0.8, managed: false, hardware_vtep: {ovsdb: 'tcp:10.0.0.9:6640', physical_switch: tor1}}\n",
			[]want{{"hosts[3].hardware_vtep", "physical switch tor1 at tcp:10.0.0.9:6640 is already configured by hosts[2]", 6}}},
		{"kernel peer on 8472 shares a network", hdr + hwHosts + "  - {name: k1, vtep: 10.0.0.7, managed: false, dst_port: 8472}\n" +
			networks(network("a", "1", "host: tor1, name: p0, vlan: 0", "host: k1, name: vm9, mac: '52:54:00:00:00:07'")),
			[]want{{"hosts[3].dst_port", "8472: host k1 shares network a with hardware VTEP tor1", 6}}},

		{"vlan missing", hw("host: tor1, name: p0"), []want{{"networks[0].ports[0].vlan", "required", 10}}},
		{"vlan too big", hw("host: tor1, name: p0, vlan: 4095"), []want{{"networks[0].ports[0].vlan", "4095 is out of range 0..4094", 10}}},
		{"vlan negative", hw("host: tor1, name: p0, vlan: -1"), []want{{"networks[0].ports[0].vlan", "out of range", 10}}},
		{"vlan string", hw("host: tor1, name: p0, vlan: ten"), []want{{"networks[0].ports[0].vlan", "want an integer in 0..4094", 10}}},
		{"vlan on an OVS host", hw("host: h1, name: vm1, vlan: 3"), []want{{"networks[0].ports[0].vlan", "only ports of a hardware VTEP", 10}}},
		{"vlan on a kernel peer", hdr + hosts3 + networks(network("a", "1", "host: h3, name: vm3, mac: '52:54:00:00:00:03', vlan: 0")),
			[]want{{"networks[0].ports[0].vlan", "host h3 has none", 10}}},
		{"port twice in a network", hw("host: tor1, name: p0, vlan: 1", "host: tor1, name: p0, vlan: 2"),
			[]want{{"networks[0].ports[1].name", "p0 is already in this network on host tor1 (networks[0].ports[0]): one VLAN per port per network", 11}}},
		{"port and vlan in two networks", hdr + hwHosts + networks(network("a", "1", "host: tor1, name: p0, vlan: 5"), network("b", "2", "host: tor1, name: p0, vlan: 5")),
			[]want{{"networks[1].ports[0].vlan", "p0 vlan 5 on host tor1 is already bound by networks[0].ports[0]", 14}}},
		{"physical port name with space", hw("host: tor1, name: 'p 0', vlan: 0"), []want{{"networks[0].ports[0].name", "may not contain spaces", 10}}},
		{"internal port", hw("host: tor1, name: p0, vlan: 0, type: internal"), []want{{"networks[0].ports[0].type", "unmanaged", 10}}},
		{"mac still checked", hw("host: tor1, name: p0, vlan: 0, mac: '01:00:5e:00:00:01'"), []want{{"networks[0].ports[0].mac", "multicast", 10}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkProblems(t, c.yaml, c.want) })
	}
}

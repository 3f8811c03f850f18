package hostnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// ipOutput is `ip -d -j addr show` (trimmed) of a namespace with lo holding
// a VTEP address, a Linux bridge with an enslaved veth, an addressed veth and
// an OVS userspace internal port (a tap).
const ipOutput = `[
{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"link_type":"loopback","addr_info":[
 {"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"},
 {"family":"inet","local":"192.168.50.1","prefixlen":32,"scope":"global"},
 {"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},
{"ifindex":2,"ifname":"br0","link_type":"ether","linkinfo":{"info_kind":"bridge","info_data":{}},"addr_info":[]},
{"ifindex":3,"ifname":"v0","master":"br0","link_type":"ether","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"},"addr_info":[
 {"family":"inet6","local":"fe80::c0bd:cbff:fea7:683e","prefixlen":64,"scope":"link"}]},
{"ifindex":4,"ifname":"eth0","mtu":1500,"link_type":"ether","linkinfo":{"info_kind":"veth"},"addr_info":[
 {"family":"inet","local":"203.0.113.5","prefixlen":24,"scope":"global"},
 {"family":"inet6","local":"2001:db8::5","prefixlen":64,"scope":"global"}]},
{"ifindex":5,"ifname":"int0","link_type":"ether","linkinfo":{"info_kind":"tun","info_data":{"type":"tap","persist":true}}}
]`

func TestParseLinks(t *testing.T) {
	links, err := parseLinks([]byte(ipOutput))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"lo":   "lo (loopback, with 127.0.0.1/8, 192.168.50.1/32, ::1/128)",
		"br0":  "br0 (bridge)",
		"v0":   "v0 (veth, enslaved to br0)", // no link-local address
		"eth0": "eth0 (veth, with 203.0.113.5/24, 2001:db8::5/64)",
		"int0": "int0 (tun)",
	} {
		if got := links[name].Describe(); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if links["eth0"].MTU != 1500 || links["int0"].MTU != 0 {
		t.Errorf("MTUs: eth0 %d, int0 %d; want 1500 and 0 (not reported)", links["eth0"].MTU, links["int0"].MTU)
	}
	if len(links) != 5 {
		t.Errorf("%d links, want 5", len(links))
	}
	if l, ok := HoldsAddr(links, netip.MustParseAddr("192.168.50.1")); !ok || l.Name != "lo" {
		t.Errorf("192.168.50.1 is on %q (%v), want lo", l.Name, ok)
	}
	if l, ok := HoldsAddr(links, netip.MustParseAddr("192.168.50.2")); ok {
		t.Errorf("192.168.50.2 is on nothing, found on %s", l.Name)
	}
	if _, err := parseLinks([]byte("not json")); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestPlanRefusesInterfacesNotOwned(t *testing.T) {
	h := &topology.Host{Name: "h1", Managed: true}
	n := &topology.Network{Name: "transit", VNI: 10}
	n.Ports = []*topology.Port{{Network: n, Host: h, Name: "lo", Type: topology.PortInternal, IP: netip.MustParsePrefix("1.1.1.1/24")}}
	topo := &topology.Topology{Name: "t", Hosts: []*topology.Host{h}, Networks: []*topology.Network{n}}
	// Refused before any ip command runs: this needs neither root nor a namespace.
	_, err := Plan(context.Background(), topo, h, Owned{"int1": true})
	if err == nil || !strings.Contains(err.Error(), "internal port lo") || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Plan with lo as an internal port not owned: %v, want a refusal naming lo", err)
	}
}

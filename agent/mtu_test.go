package agent

import (
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/hostnet"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

func TestNetworkMTUs(t *testing.T) {
	top := twoHosts(vmPort("vnet1"), vmPort("vnet2"), internalPort("gw1", "10.1.1.1/24"))
	h1 := top.Host("host1")
	ul := hostnet.Link{Name: "ul0", Kind: "veth", MTU: 1500, Addrs: addrs("192.168.50.1/24")}

	// The default: the VTEP's link less 50 bytes; vnet1 at 1500 is too
	// big, vnet2 fits, gw1 (internal) is apply's to size.
	mp := networkMTUs(top, h1, links(ul, hostnet.Link{Name: "vnet1", MTU: 1500}, hostnet.Link{Name: "vnet2", MTU: 1450}))
	if mp.byVNI[100] != 1450 || mp.unknown != "" {
		t.Errorf("MTUs %v (unknown %q), want VNI 100 at 1450", mp.byVNI, mp.unknown)
	}
	if len(mp.warnings) != 1 || !strings.Contains(mp.warnings[0], "vm port vnet1: interface vnet1 has MTU 1500, larger than the MTU 1450 of network tenant-a") {
		t.Errorf("warnings %q, want one naming vnet1", mp.warnings)
	}

	// An IPv6 underlay costs 70 bytes.
	h1.VTEP = netip.MustParseAddr("fd00::1")
	ul6 := hostnet.Link{Name: "ul0", MTU: 9000, Addrs: addrs("fd00::1/64")}
	if mp := networkMTUs(top, h1, links(ul6)); mp.byVNI[100] != 8930 || len(mp.warnings) != 0 {
		t.Errorf("IPv6 underlay at 9000: %v %q, want 8930 and no warning", mp.byVNI, mp.warnings)
	}
	h1.VTEP = netip.MustParseAddr("192.168.50.1")

	// Nobody holds the VTEP address: unknown, said once, no warnings.
	mp = networkMTUs(top, h1, links(hostnet.Link{Name: "vnet1", MTU: 9000}))
	if mp.byVNI[100] != 0 || !strings.Contains(mp.unknown, "no interface holds the VTEP address 192.168.50.1") ||
		!strings.Contains(mp.unknown, "tenant-a") || len(mp.warnings) != 0 {
		t.Errorf("unknown underlay: %v %q %q", mp.byVNI, mp.unknown, mp.warnings)
	}

	// A declared mtu wins, and one the underlay cannot carry is a warning.
	top.Networks[0].MTU = 1480
	mp = networkMTUs(top, h1, links(ul, hostnet.Link{Name: "vnet1", MTU: 1480}))
	if mp.byVNI[100] != 1480 || len(mp.warnings) != 1 ||
		!strings.Contains(mp.warnings[0], "network tenant-a: mtu 1480 and VXLAN's 50 bytes exceed the MTU 1500 of ul0") {
		t.Errorf("declared 1480 over a 1500 underlay: %v %q", mp.byVNI, mp.warnings)
	}
	if mp := networkMTUs(top, h1, links(hostnet.Link{Name: "vnet1", MTU: 1500})); mp.byVNI[100] != 1480 || mp.unknown != "" {
		t.Errorf("declared mtu, underlay unknown: %v %q, want 1480 and nothing unknown", mp.byVNI, mp.unknown)
	}
}

func TestWithOFPorts(t *testing.T) {
	alloc := topology.Allocation{LocalVLAN: map[uint32]uint16{100: 1}, TunnelOFPort: map[string]uint32{"a": 10, "b": 11, "c": 12}}
	real := map[string]uint32{"a": 10, "b": 2, "gone": 13} // c not attached yet
	got := withOFPorts(alloc, real)
	if want := map[string]uint32{"a": 10, "b": 2, "c": 12}; !maps.Equal(got.TunnelOFPort, want) {
		t.Errorf("withOFPorts: %v, want %v", got.TunnelOFPort, want)
	}
	if alloc.TunnelOFPort["b"] != 11 {
		t.Error("withOFPorts changed its argument")
	}
	if m := mismatched(alloc, real); len(m) != 1 || m[0] != "b" {
		t.Errorf("mismatched: %v, want [b]", m)
	}
}

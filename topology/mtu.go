package topology

import "net/netip"

// Bounds of a network's declared mtu: IPv4's minimum datagram size every
// host must accept, and the common jumbo frame size.
const (
	MinMTU = 576
	MaxMTU = 9000
)

// VXLAN's encapsulation overhead on the underlay: outer Ethernet (14), IP
// (20 or 40), UDP (8) and VXLAN (8) headers. A VM frame of the network's
// MTU plus this must fit the underlay's MTU, or the underlay drops it.
const (
	VXLANOverheadIPv4 = 50
	VXLANOverheadIPv6 = 70
)

// EffectiveMTU is the MTU of network n on a host whose VTEP is vtep on a
// device of MTU underlay: the declared mtu, or else the underlay's minus
// VXLAN's overhead for the VTEP's family. It is 0 when n declares none and
// the underlay's MTU is unknown (underlay <= 0).
func EffectiveMTU(n *Network, vtep netip.Addr, underlay int) int {
	if n.MTU > 0 {
		return n.MTU
	}
	if underlay <= 0 {
		return 0
	}
	if vtep.Is6() && !vtep.Is4In6() {
		return underlay - VXLANOverheadIPv6
	}
	return underlay - VXLANOverheadIPv4
}

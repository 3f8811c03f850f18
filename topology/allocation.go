package topology

import "maps"

// Numbering limits of an Allocation.
const (
	// FirstLocalVLAN and LastLocalVLAN bound the 802.1Q VIDs handed to networks.
	FirstLocalVLAN = 1
	LastLocalVLAN  = 4094
	// FirstTunnelOFPort is the lowest OpenFlow port number given to a tunnel port.
	FirstTunnelOFPort = 10
	// LastTunnelOFPort is the highest port number OVS accepts in ofport_request.
	LastTunnelOFPort = 65279
)

// UsableTunnelOFPort says whether a tunnel port may carry port number no:
// apply asks for FirstTunnelOFPort and up, but OVS may assign another
// number (one a port deleted in the same transaction held), and apply then
// compiles the flows with the real one. Any number but the patch port's, up
// to LastTunnelOFPort, is usable.
func UsableTunnelOFPort(no uint32) bool {
	return no >= 1 && no <= LastTunnelOFPort && no != PatchOFPort
}

// Allocation holds the per-host numbers that must stay stable across applies
// even when networks or peers are added or removed: the local VLAN of each
// network (by VNI) and the OpenFlow port of each tunnel (by peer host name).
// It is read back from OVSDB before every apply and passed to the compiler, so
// the compiler stays a pure function of (topology, host, allocation).
type Allocation struct {
	LocalVLAN    map[uint32]uint16 // VNI -> local VLAN on br-int
	TunnelOFPort map[string]uint32 // peer host name -> ofport on br-tun
}

// Allocate returns h's allocation: every entry of prev that is still needed is
// kept as it is; networks and peers without one get the lowest free number, in
// VNI order and file order respectively. It never renumbers a kept entry. The
// error is non-nil only when the number space is exhausted.
func (t *Topology) Allocate(h *Host, prev Allocation) (Allocation, error) {
	return t.AllocateAvoiding(h, prev, nil)
}

// AllocateAvoiding is Allocate that never gives a peer without a number one
// in held (kept entries stay as they are): the ofports br-tun's ports hold
// or request now. OVS refuses an ofport_request that a port removed in the
// same transaction still holds and assigns another number instead.
func (t *Topology) AllocateAvoiding(h *Host, prev Allocation, held map[uint32]bool) (Allocation, error) {
	out := Allocation{LocalVLAN: map[uint32]uint16{}, TunnelOFPort: map[string]uint32{}}
	usedVLAN := map[uint16]bool{}
	nets := t.NetworksOn(h)
	for _, n := range nets {
		if v, ok := prev.LocalVLAN[n.VNI]; ok && v >= FirstLocalVLAN && v <= LastLocalVLAN && !usedVLAN[v] {
			out.LocalVLAN[n.VNI] = v
			usedVLAN[v] = true
		}
	}
	next := uint16(FirstLocalVLAN)
	for _, n := range nets {
		if _, ok := out.LocalVLAN[n.VNI]; ok {
			continue
		}
		for usedVLAN[next] {
			next++
		}
		if next > LastLocalVLAN {
			return Allocation{}, &Errors{List: []*Error{{Path: "networks", Msg: "more networks on host " + h.Name + " than local VLANs (4094)"}}}
		}
		out.LocalVLAN[n.VNI] = next
		usedVLAN[next] = true
	}

	usedPort := map[uint32]bool{}
	peers := t.Peers(h)
	for _, p := range peers {
		if v, ok := prev.TunnelOFPort[p.Name]; ok && v >= FirstTunnelOFPort && v <= LastTunnelOFPort && !usedPort[v] {
			out.TunnelOFPort[p.Name] = v
			usedPort[v] = true
		}
	}
	nextPort := uint32(FirstTunnelOFPort)
	for _, p := range peers {
		if _, ok := out.TunnelOFPort[p.Name]; ok {
			continue
		}
		for usedPort[nextPort] || held[nextPort] {
			nextPort++
		}
		if nextPort > LastTunnelOFPort {
			return Allocation{}, &Errors{List: []*Error{{Path: "hosts", Msg: "more peers of host " + h.Name + " than tunnel port numbers"}}}
		}
		out.TunnelOFPort[p.Name] = nextPort
		usedPort[nextPort] = true
	}
	return out, nil
}

// Equal reports whether a and b hold the same numbers.
func (a Allocation) Equal(b Allocation) bool {
	return maps.Equal(a.LocalVLAN, b.LocalVLAN) && maps.Equal(a.TunnelOFPort, b.TunnelOFPort)
}

package flows

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Reading compiled flows back: a restarted controller learns from a switch's
// flows what it had told it, and `fdb` what br-tun's unicast table holds.
// Each function here inverts one compiler function of this package, next to
// which it lives so the two change together.

// AllocationLacks lists what the topology needs on host h that alloc lacks
// (empty when Compile can use alloc): a local VLAN per network of h, a
// tunnel port per peer.
func AllocationLacks(t *topology.Topology, h *topology.Host, alloc topology.Allocation) []string {
	var missing []string
	for _, n := range t.NetworksOn(h) {
		if _, ok := alloc.LocalVLAN[n.VNI]; !ok {
			missing = append(missing, fmt.Sprintf("local VLAN of VNI %d", n.VNI))
		}
	}
	for _, p := range t.Peers(h) {
		if _, ok := alloc.TunnelOFPort[p.Name]; !ok {
			missing = append(missing, fmt.Sprintf("tunnel port %s of peer %s", topology.TunnelPortName(p.Name), p.Name))
		}
	}
	return missing
}

// AllocationFromFlows reads a host's allocation back from its br-tun, the
// inverse of CompileAllocation and the ofport requests of apply: local VLANs
// from the advertisement flows among adv, tunnel ports from ports (br-tun's
// port names and numbers: topology.TunnelPortName(peer) with a usable
// number, topology.UsableTunnelOFPort). Other flows and ports are ignored.
func AllocationFromFlows(adv []Flow, ports map[string]uint32) topology.Allocation {
	alloc := topology.Allocation{LocalVLAN: LocalVLANsFromFlows(adv), TunnelOFPort: map[string]uint32{}}
	for name, no := range ports {
		if peer, ok := strings.CutPrefix(name, topology.TunnelPortPrefix); ok && peer != "" &&
			topology.UsableTunnelOFPort(no) {
			alloc.TunnelOFPort[peer] = no
		}
	}
	return alloc
}

// EndpointsFromFlows reads endpoints back from the controller flows of
// host's br-tun, the inverse of CompileEndpoints(t, h, alloc, eps) for the
// endpoints that gave flows (Learned is not in the flows and stays false):
//   - on host: the MAC of each known-source flow, with the IPs of its
//     known-ARP flows, IPv4 and IPv6 (known-ARP flows without a
//     known-source flow are ignored: CompileEndpoints never writes one
//     alone);
//   - on a peer: the MAC of each unicast entry, the peer its tunnel port
//     leads to, and the IPs of its ARP and ND responders.
//
// Flows of VLANs or ports alloc does not know are ignored. The result is
// sorted as SortEndpoints does, each endpoint's IPs in ascending order.
func EndpointsFromFlows(fl []Flow, host string, alloc topology.Allocation) []Endpoint {
	vlanVNI := make(map[uint16]uint32, len(alloc.LocalVLAN))
	for vni, vlan := range alloc.LocalVLAN {
		vlanVNI[vlan] = vni
	}
	portPeer := make(map[uint32]string, len(alloc.TunnelOFPort))
	for peer, p := range alloc.TunnelOFPort {
		portPeer[p] = peer
	}
	// A MAC may be both on host and, stale, on a peer (a move under way):
	// the two are different endpoints.
	type key struct {
		vni   uint32
		mac   string
		local bool
	}
	eps := map[key]*Endpoint{}
	ips := map[key][]netip.Addr{} // local: known-ARP flows; remote: ARP responders
	for _, f := range fl {
		vni, ok := vlanVNI[f.Match.VLAN]
		if !f.Match.HasVLAN || !ok {
			continue
		}
		switch {
		case f.Table == TableFromPort && f.Priority == PriorityKnownSource && len(f.Match.EthSrc) == 6:
			k := key{vni, f.Match.EthSrc.String(), true}
			if eps[k] == nil {
				eps[k] = &Endpoint{VNI: vni, MAC: f.Match.EthSrc, Host: host}
			}
		case f.Table == TableFromPort && f.Priority == PriorityKnownARP && len(f.Match.EthSrc) == 6 && (f.Match.ArpSPA.IsValid() || f.Match.IPv6Src.IsValid()):
			k := key{vni, f.Match.EthSrc.String(), true}
			ips[k] = append(ips[k], cmp.Or(f.Match.ArpSPA, f.Match.IPv6Src))
		case f.Table == TableUnicast && f.Priority == PriorityInstalled && len(f.Match.EthDst) == 6 && f.Match.EthDstMask == nil:
			if peer, ok := outputPeer(f.Actions, portPeer); ok {
				if k := (key{vni, f.Match.EthDst.String(), false}); eps[k] == nil {
					eps[k] = &Endpoint{VNI: vni, MAC: f.Match.EthDst, Host: peer}
				}
			}
		case f.Table == TableARP && f.Priority == PriorityARP:
			if mac, ip, ok := answerOf(f); ok {
				k := key{vni, mac.String(), false}
				ips[k] = append(ips[k], ip)
			}
		}
	}
	out := make([]Endpoint, 0, len(eps))
	for k, e := range eps {
		for _, ip := range ips[k] {
			if !slices.Contains(e.IPs, ip) {
				e.IPs = append(e.IPs, ip)
			}
		}
		slices.SortFunc(e.IPs, netip.Addr.Compare)
		out = append(out, *e)
	}
	SortEndpoints(out)
	return out
}

// outputPeer is the peer whose tunnel port actions output to.
func outputPeer(actions []Action, portPeer map[uint32]string) (string, bool) {
	for _, a := range actions {
		if o, ok := a.(Output); ok {
			if peer, ok := portPeer[o.Port]; ok {
				return peer, true
			}
		}
	}
	return "", false
}

// answerOf reads an ARP or ND responder (arpResponder's or ndResponder's
// flow): the MAC and IP it answers with, when the IP is the one it answers
// for.
func answerOf(f Flow) (net.HardwareAddr, netip.Addr, bool) {
	var mac net.HardwareAddr
	var ip netip.Addr
	for _, a := range f.Actions {
		switch a := a.(type) {
		case SetEthSrc:
			mac = a.MAC
		case SetARPSPA:
			ip = a.IP
		case SetIPv6Src:
			ip = a.IP
		}
	}
	ok := len(mac) == 6 && ip.IsValid() && (ip == f.Match.ArpTPA || ip == f.Match.NDTarget)
	return mac, ip, ok
}

// UnicastEntry is one entry of br-tun's unicast table (table 20) read back:
// learned by learn() (learn mode) or installed from CompileEndpoints
// (controller mode).
type UnicastEntry struct {
	VNI     uint32
	MAC     net.HardwareAddr
	OFPort  uint32 // the tunnel port it outputs to
	Learned bool
}

// UnicastEntryOf reads f as an entry of table 20; ok is false for any other
// flow (another table, the miss flow, a flow of another owner). Learned
// entries carry their VNI in the cookie (learn() cannot hash its own
// output); installed ones set it in an action.
func UnicastEntryOf(f Flow) (e UnicastEntry, ok bool) {
	owner := f.Cookie & CookieOwnerMask
	if f.Table != TableUnicast || len(f.Match.EthDst) != 6 || f.Match.EthDstMask != nil ||
		owner != CookieLearned && owner != CookieController {
		return UnicastEntry{}, false
	}
	e = UnicastEntry{MAC: f.Match.EthDst, Learned: owner == CookieLearned}
	if e.Learned {
		e.VNI = uint32(f.Cookie &^ CookieOwnerMask)
	}
	for _, a := range f.Actions {
		switch a := a.(type) {
		case Output:
			e.OFPort = a.Port
		case SetTunID:
			e.VNI = uint32(a.ID)
		}
	}
	return e, true
}

package flows

import (
	"cmp"
	"net"
	"net/netip"
	"slices"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// PacketInBytes is how much of a frame from an unknown source the switch
// sends the controller: enough for Ethernet, 802.1Q and ARP or IP headers.
const PacketInBytes = 128

// Priorities of the controller-mode flows of tables 1, 2 and 3.
const (
	PriorityKnownSource uint16 = 2 // tables 1 and 2: a source the controller knows: no report
	PriorityARPReport   uint16 = 3 // tables 1 and 2: ARP and ND of an unknown (MAC, IP) pair: reported
	PriorityKnownARP    uint16 = 4 // tables 1 and 2: ARP and ND of a known (MAC, IP) pair: no report
	PriorityARP         uint16 = 2 // table 3: a request for a known IP answered (remote) or kept on the host (local)
	// PriorityGARP (table 3): what must never be answered goes to every
	// peer of the network: gratuitous ARP (so that their caches follow a
	// moved VM or IP), a request from an IP's owner for its own IP (the
	// answer would carry its own MAC back into br-int), DAD.
	PriorityGARP uint16 = 3
)

// Endpoint is a MAC the controller knows: declared in the topology or
// learned from packet-ins, on one host, with the IPs it answers for.
type Endpoint struct {
	VNI  uint32
	MAC  net.HardwareAddr
	Host string
	// IPs are answered for on the other hosts: IPv4 by the ARP responder,
	// IPv6 by the neighbour discovery responder.
	IPs     []netip.Addr
	Learned bool
}

// DeclaredEndpoints lists the ports of t that declare a MAC, as endpoints.
func DeclaredEndpoints(t *topology.Topology) []Endpoint {
	var out []Endpoint
	for _, n := range t.Networks {
		for _, p := range n.Ports {
			if p.MAC == nil {
				continue
			}
			e := Endpoint{VNI: n.VNI, MAC: p.MAC, Host: p.Host.Name}
			if ip := p.IP.Addr(); p.IP.IsValid() && (ip.Is4() || ip.Is6() && !ip.Is4In6()) {
				e.IPs = []netip.Addr{ip}
			}
			out = append(out, e)
		}
	}
	return out
}

// CompileEndpoints turns what the controller knows into host h's flows, with
// cookie CookieController | hash. Pure and deterministic, like Compile:
//   - an endpoint on h: known-source flows in table 1 (no more reports), its
//     ARP and ND with a known sender IP is not reported either, and requests
//     for its IPs are kept on the host (br-int delivered them; table 3);
//   - an endpoint on a peer: a unicast entry in table 20 to that peer's
//     tunnel, and an ARP or ND responder in table 3 for each of its IPs, so
//     ARP and ND for a known IP never cross the underlay; an endpoint on an
//     unmanaged peer also gets known-source flows in table 2;
//   - for every IPv4 address, gratuitous ARP is flooded to the network's
//     peers (table 3), and for a remote one its owner's own requests too:
//     neither is ever answered.
//
// Endpoints of networks h has no port in, or on hosts h has no tunnel to,
// give nothing.
func CompileEndpoints(t *topology.Topology, h *topology.Host, alloc topology.Allocation, eps []Endpoint) []Flow {
	var out []Flow
	for _, e := range eps {
		vlan, ok := alloc.LocalVLAN[e.VNI]
		if !ok || len(e.MAC) != 6 {
			continue
		}
		if e.Host == h.Name {
			out = append(out, localEndpoint(vlan, e)...)
			continue
		}
		port, ok := alloc.TunnelOFPort[e.Host]
		if !ok {
			continue
		}
		out = append(out, remoteEndpoint(vlan, port, e)...)
		if p := t.Host(e.Host); p != nil && !p.Managed {
			out = append(out, tunnelSource(vlan, port, e)...)
		}
	}
	// Two endpoints may claim one IP or MAC (a move in progress): keep the
	// first flow of each key so the result never holds two flows OpenFlow
	// would treat as one.
	seen := map[string]bool{}
	kept := out[:0]
	for _, f := range out {
		if k := f.Key(); !seen[k] {
			seen[k] = true
			kept = append(kept, f)
		}
	}
	for i := range kept {
		kept[i] = WithContentCookie(kept[i], CookieController)
	}
	Sort(kept)
	return kept
}

// localEndpoint is the flows of an endpoint on the host itself.
func localEndpoint(vlan uint16, e Endpoint) []Flow {
	src := Match{HasVLAN: true, VLAN: vlan, EthSrc: e.MAC}
	out := byDestination(TableFromPort, PriorityKnownSource, src)
	for _, ip := range e.IPs {
		out = append(out,
			Flow{Table: TableFromPort, Priority: PriorityKnownARP, Match: announces(src, ip), Actions: []Action{GotoTable{TableARP}}},
			// br-int already delivered the request to the owner.
			Flow{Table: TableARP, Priority: PriorityARP, Match: solicits(vlan, ip)})
		if ip.Is4() {
			out = append(out, gratuitousARP(vlan, ip))
		}
	}
	return out
}

// remoteEndpoint is the flows of an endpoint on the peer behind tunnel port.
func remoteEndpoint(vlan uint16, port uint32, e Endpoint) []Flow {
	out := []Flow{{Table: TableUnicast, Priority: PriorityInstalled,
		Match:   Match{HasVLAN: true, VLAN: vlan, EthDst: e.MAC},
		Actions: []Action{PopVLAN{}, SetTunID{ID: uint64(e.VNI)}, Output{Port: port}}}}
	for _, ip := range e.IPs {
		own := solicits(vlan, ip)
		own.EthSrc = e.MAC
		out = append(out, responder(vlan, e.MAC, ip),
			// The owner itself asking (a VM that moved here, probing
			// its address): the answer would carry its own MAC back.
			Flow{Table: TableARP, Priority: PriorityGARP, Match: own, Actions: []Action{GotoTable{TableFlood}}})
		if ip.Is4() {
			out = append(out, gratuitousARP(vlan, ip))
		}
	}
	return out
}

// tunnelSource is the table-2 flows of an endpoint on an unmanaged peer: its
// frames, and its ARP and ND announcing its known IPs, are no longer
// reported (fromTunnel reports the rest).
func tunnelSource(vlan uint16, port uint32, e Endpoint) []Flow {
	src := Match{HasTunID: true, TunID: uint64(e.VNI), InPort: port, EthSrc: e.MAC}
	in := fromTunnelActions(vlan)
	out := []Flow{{Table: TableFromTun, Priority: PriorityKnownSource, Match: src, Actions: in}}
	for _, ip := range e.IPs {
		out = append(out, Flow{Table: TableFromTun, Priority: PriorityKnownARP, Match: announces(src, ip), Actions: in})
	}
	return out
}

// fromTunnelActions tag a frame from a tunnel with its network's local VLAN
// and send it to br-int.
func fromTunnelActions(vlan uint16, then ...Action) []Action {
	return append(append([]Action{PushVLAN{}, SetVLANVID{VID: vlan}}, then...), Output{Port: topology.PatchOFPort})
}

// announces narrows m to the frames in which its source announces ip: ARP
// with sender ip, or ICMPv6 from ip (neighbour discovery).
func announces(m Match, ip netip.Addr) Match {
	if ip.Is4() {
		m.EthType, m.ArpSPA = EthTypeARP, ip
	} else {
		m.EthType, m.IPProto, m.IPv6Src = EthTypeIPv6, IPProtoICMPv6, ip
	}
	return m
}

// announcements are the frames of base that may announce an address: ARP,
// neighbour solicitations and advertisements.
func announcements(base Match) []Match {
	arp, ns, na := base, base, base
	arp.EthType = EthTypeARP
	for _, m := range []*Match{&ns, &na} {
		m.EthType, m.IPProto, m.HasICMPType = EthTypeIPv6, IPProtoICMPv6, true
	}
	ns.ICMPType, na.ICMPType = ICMPv6NS, ICMPv6NA
	return []Match{arp, ns, na}
}

// solicits matches the requests for ip in VLAN vlan: ARP requests, or
// neighbour solicitations.
func solicits(vlan uint16, ip netip.Addr) Match {
	if ip.Is4() {
		return Match{EthType: EthTypeARP, HasVLAN: true, VLAN: vlan, ArpTPA: ip, ArpOp: 1}
	}
	return Match{EthType: EthTypeIPv6, IPProto: IPProtoICMPv6, HasVLAN: true, VLAN: vlan, HasICMPType: true, ICMPType: ICMPv6NS, NDTarget: ip}
}

// gratuitousARP floods an announcement of ip (sender and target ip, request
// or reply) to the network's peers, unanswered, so that their caches follow
// ip to its new MAC (a migrated VM, a failed-over VIP).
func gratuitousARP(vlan uint16, ip netip.Addr) Flow {
	return Flow{Table: TableARP, Priority: PriorityGARP,
		Match:   Match{EthType: EthTypeARP, HasVLAN: true, VLAN: vlan, ArpSPA: ip, ArpTPA: ip},
		Actions: []Action{GotoTable{TableFlood}}}
}

// responder answers a request for ip with mac: ARP or neighbour discovery.
func responder(vlan uint16, mac net.HardwareAddr, ip netip.Addr) Flow {
	if ip.Is4() {
		return arpResponder(vlan, mac, ip)
	}
	return ndResponder(vlan, mac, ip)
}

// arpResponder turns an ARP request for ip into the reply mac would send and
// sends it back where it came from.
func arpResponder(vlan uint16, mac net.HardwareAddr, ip netip.Addr) Flow {
	return Flow{Table: TableARP, Priority: PriorityARP,
		Match: solicits(vlan, ip),
		Actions: []Action{
			Move{Src: FieldEthSrc, Dst: FieldEthDst},
			SetEthSrc{MAC: mac},
			SetARPOp{Op: 2},
			Move{Src: FieldARPSHA, Dst: FieldARPTHA},
			Move{Src: FieldARPSPA, Dst: FieldARPTPA},
			SetARPSHA{MAC: mac},
			SetARPSPA{IP: ip},
			Output{Port: PortInPort},
		}}
}

// ndResponder turns a neighbour solicitation for ip into the advertisement
// mac would send (solicited, override): addresses swapped, type 136, the
// source link-layer option retyped as target link-layer option. OVS only
// lets a flow set nd_tll on a packet that already is an advertisement, so
// table 4 (ndAnswer) fills it in and sends the packet back.
func ndResponder(vlan uint16, mac net.HardwareAddr, ip netip.Addr) Flow {
	return Flow{Table: TableARP, Priority: PriorityARP,
		Match: solicits(vlan, ip),
		Actions: []Action{
			Move{Src: FieldEthSrc, Dst: FieldEthDst},
			SetEthSrc{MAC: mac},
			Move{Src: FieldIPv6Src, Dst: FieldIPv6Dst},
			SetIPv6Src{IP: ip},
			SetICMPv6Type{Type: ICMPv6NA},
			SetNDReserved{Value: NDFlagSolicited | NDFlagOverride},
			SetNDOptionsType{Type: NDOptionTLL},
			GotoTable{TableNDAnswer},
		}}
}

// SortEndpoints orders endpoints by VNI, then MAC, then host: callers that
// build them from maps use it to keep CompileEndpoints deterministic.
func SortEndpoints(eps []Endpoint) {
	slices.SortFunc(eps, func(a, b Endpoint) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.MAC.String(), b.MAC.String()), cmp.Compare(a.Host, b.Host))
	})
}

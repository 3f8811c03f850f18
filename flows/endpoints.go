package flows

import (
	"cmp"
	"math/bits"
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
	n := 0
	for _, nw := range t.Networks {
		n += len(nw.Ports)
	}
	// One array for all, and one for their IPs, each capped to its own.
	out := make([]Endpoint, 0, n)
	ips := make([]netip.Addr, 0, n)
	for _, nw := range t.Networks {
		for _, p := range nw.Ports {
			if p.MAC == nil {
				continue
			}
			e := Endpoint{VNI: nw.VNI, MAC: p.MAC, Host: p.Host.Name}
			if ip := p.IP.Addr(); p.IP.IsValid() && (ip.Is4() || ip.Is6() && !ip.Is4In6()) {
				ips = append(ips, ip)
				e.IPs = ips[len(ips)-1 : len(ips) : len(ips)]
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
	return AppendEndpoints(nil, t, h, alloc, eps)
}

// AppendEndpoints appends CompileEndpoints(t, h, alloc, eps) to dst,
// growing it once: a controller's br-tun flows are Compile's followed by
// these, and 100,000 endpoint flows appended after the fact were a third of
// the compile (copied with write barriers). dst's own flows are neither
// sorted nor compared with the new ones.
func AppendEndpoints(dst []Flow, t *topology.Topology, h *topology.Host, alloc topology.Allocation, eps []Endpoint) []Flow {
	unmanaged := unmanagedHosts(t, len(eps))
	// Which flows each endpoint gets, first, so the list is sized once
	// (100,000 flows of 256 bytes regrown took a fifth of a compile).
	kinds := make([]endpointKind, len(eps))
	n := 0
	for i, e := range eps {
		kinds[i] = kindOf(h, alloc, unmanaged, e)
		n += kinds[i].flows(e)
	}
	base := len(dst)
	out := slices.Grow(dst, n)
	for i, e := range eps {
		vlan, port := alloc.LocalVLAN[e.VNI], alloc.TunnelOFPort[e.Host]
		switch kinds[i] {
		case endpointLocal:
			out = appendLocalEndpoint(out, vlan, e)
		case endpointRemote, endpointUnmanaged:
			out = appendRemoteEndpoint(out, vlan, port, e)
		}
		if kinds[i] == endpointUnmanaged {
			out = append(out, tunnelSource(vlan, port, e)...)
		}
	}
	// Two endpoints may claim one IP or MAC (a move in progress): keep the
	// first flow of each key so the result never holds two flows OpenFlow
	// would treat as one.
	kept := firstOfEachKey(out[base:], CookieController)
	Sort(kept)
	return out[:base+len(kept)]
}

// endpointKind is which flows an endpoint gives host h.
type endpointKind uint8

const (
	endpointNone      endpointKind = iota // another network, no tunnel or no MAC
	endpointLocal                         // on h
	endpointRemote                        // on a managed peer
	endpointUnmanaged                     // on an unmanaged peer
)

func kindOf(h *topology.Host, alloc topology.Allocation, unmanaged func(string) bool, e Endpoint) endpointKind {
	if _, ok := alloc.LocalVLAN[e.VNI]; !ok || len(e.MAC) != 6 {
		return endpointNone
	}
	if e.Host == h.Name {
		return endpointLocal
	}
	if _, ok := alloc.TunnelOFPort[e.Host]; !ok {
		return endpointNone
	}
	if unmanaged(e.Host) {
		return endpointUnmanaged
	}
	return endpointRemote
}

// unmanagedHosts reports whether a host of t is unmanaged, for n
// endpoints: t.Host is a linear search, so for many endpoints the answer
// comes from a set built once (the controller also calls CompileEndpoints
// with one endpoint at a time, which a set would slow down).
func unmanagedHosts(t *topology.Topology, n int) func(string) bool {
	if n < 16 {
		return func(name string) bool { p := t.Host(name); return p != nil && !p.Managed }
	}
	set := map[string]bool{}
	for _, p := range t.Hosts {
		if !p.Managed {
			set[p.Name] = true
		}
	}
	return func(name string) bool { return set[name] }
}

// flows is how many flows e gives, as the append functions below make them.
func (k endpointKind) flows(e Endpoint) int {
	perIP := 0
	for _, ip := range e.IPs {
		perIP += 2
		if ip.Is4() {
			perIP++ // gratuitous ARP
		}
	}
	switch k {
	case endpointLocal:
		return 2 + perIP
	case endpointRemote:
		return 1 + perIP
	case endpointUnmanaged:
		return 1 + perIP + 1 + len(e.IPs)
	}
	return 0
}

// firstOfEachKey keeps the first flow of each Key, in place, and gives
// each kept flow its content cookie of owner. Keys are told apart by their
// binary form (a hash, then the bytes), not their text; the Key's bytes
// begin the flow's, so each flow is encoded once for both.
func firstOfEachKey(fl []Flow, owner uint64) []Flow {
	seen := newKeyTable(len(fl))
	var collided map[string]bool  // Keys whose hash another Key has
	var kbBuf, otherBuf [320]byte // on the stack: the controller calls this per endpoint
	kb, other := kbBuf[:0], otherBuf[:0]
	kept := fl[:0]
	for i := range fl {
		kb = appendKeyBinary(kb[:0], &fl[i])
		h := contentHash(kb)
		if sl := seen.find(h); sl.i == 0 {
			sl.h, sl.i = h, int32(len(kept))+1
		} else {
			other = appendKeyBinary(other[:0], &kept[sl.i-1])
			if string(other) == string(kb) {
				continue
			}
			if collided == nil {
				collided = map[string]bool{}
			}
			if collided[string(kb)] {
				continue
			}
			collided[string(kb)] = true
		}
		if len(kept) == i {
			kept = kept[:i+1] // already in place: a copy of 256 bytes saved
		} else {
			kept = append(kept, fl[i])
		}
		kb = appendRestBinary(kb, &fl[i])
		kept[len(kept)-1].Cookie = contentCookie(kb, owner)
	}
	return kept
}

// keyTable maps hashes to flow indexes by open addressing: one cache line a
// lookup, where a map of 100,000 entries took three.
type keyTable struct {
	shift uint
	slots []keySlot
}

type keySlot struct {
	h uint64
	i int32 // index + 1; 0: empty
}

func newKeyTable(n int) keyTable {
	b := uint(bits.Len(uint(2*n + 1)))
	return keyTable{shift: 64 - b, slots: make([]keySlot, 1<<b)}
}

// find is the slot of h, or the empty one where it goes.
func (t keyTable) find(h uint64) *keySlot {
	mask := uint64(len(t.slots) - 1)
	for j := (h * 0x9e3779b97f4a7c15) >> t.shift; ; j = (j + 1) & mask {
		if sl := &t.slots[j]; sl.i == 0 || sl.h == h {
			return sl
		}
	}
}

// appendLocalEndpoint appends the flows of an endpoint on the host itself.
func appendLocalEndpoint(out []Flow, vlan uint16, e Endpoint) []Flow {
	src := Match{HasVLAN: true, VLAN: vlan, EthSrc: e.MAC}
	out = append(out, byDestination(TableFromPort, PriorityKnownSource, src)...)
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

// appendRemoteEndpoint appends the flows of an endpoint on the peer behind
// tunnel port.
func appendRemoteEndpoint(out []Flow, vlan uint16, port uint32, e Endpoint) []Flow {
	out = append(out, Flow{Table: TableUnicast, Priority: PriorityInstalled,
		Match:   Match{HasVLAN: true, VLAN: vlan, EthDst: e.MAC},
		Actions: []Action{PopVLAN{}, SetTunID{ID: uint64(e.VNI)}, Output{Port: port}}})
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

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

// Priorities of the controller-mode flows of tables 1 and 3.
const (
	PriorityKnownSource uint16 = 2 // table 1: a source the controller knows: no report
	PriorityARPReport   uint16 = 3 // table 1: ARP of an unknown (MAC, IP) pair: reported
	PriorityKnownARP    uint16 = 4 // table 1: ARP of a known (MAC, IP) pair: no report
	PriorityARP         uint16 = 2 // table 3: ARP answered or kept local
)

// Endpoint is a MAC the controller knows: declared in the topology or
// learned from packet-ins, on one host, with the IPs it answers for.
type Endpoint struct {
	VNI     uint32
	MAC     net.HardwareAddr
	Host    string
	IPs     []netip.Addr // IPv4 addresses answered by the ARP responder
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
			if p.IP.IsValid() && p.IP.Addr().Is4() {
				e.IPs = []netip.Addr{p.IP.Addr()}
			}
			out = append(out, e)
		}
	}
	return out
}

// CompileEndpoints turns what the controller knows into host h's flows, with
// cookie CookieController | hash. Pure and deterministic, like Compile:
//   - an endpoint on h: known-source flows in table 1 (no more reports), its
//     ARP with a known sender IP is not reported either, and ARP requests for
//     its IPs are kept on the host (br-int delivered them; table 3);
//   - an endpoint on a peer: a unicast entry in table 20 to that peer's
//     tunnel, and an ARP responder in table 3 for each of its IPs, so ARP for
//     a known IP never crosses the underlay.
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
			out = append(out, byDestination(TableFromPort, PriorityKnownSource, Match{HasVLAN: true, VLAN: vlan, EthSrc: e.MAC})...)
			for _, ip := range e.IPs {
				out = append(out,
					Flow{Table: TableFromPort, Priority: PriorityKnownARP,
						Match:   Match{EthType: EthTypeARP, HasVLAN: true, VLAN: vlan, EthSrc: e.MAC, ArpSPA: ip},
						Actions: []Action{GotoTable{TableARP}}},
					Flow{Table: TableARP, Priority: PriorityARP,
						Match: Match{EthType: EthTypeARP, HasVLAN: true, VLAN: vlan, ArpTPA: ip, ArpOp: 1}})
			}
			continue
		}
		port, ok := alloc.TunnelOFPort[e.Host]
		if !ok {
			continue
		}
		out = append(out, Flow{Table: TableUnicast, Priority: PriorityInstalled,
			Match:   Match{HasVLAN: true, VLAN: vlan, EthDst: e.MAC},
			Actions: []Action{PopVLAN{}, SetTunID{ID: uint64(e.VNI)}, Output{Port: port}}})
		for _, ip := range e.IPs {
			out = append(out, arpResponder(vlan, e.MAC, ip))
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

// arpResponder turns an ARP request for ip into the reply mac would send and
// sends it back where it came from.
func arpResponder(vlan uint16, mac net.HardwareAddr, ip netip.Addr) Flow {
	return Flow{Table: TableARP, Priority: PriorityARP,
		Match: Match{EthType: EthTypeARP, HasVLAN: true, VLAN: vlan, ArpTPA: ip, ArpOp: 1},
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

// SortEndpoints orders endpoints by VNI, then MAC, then host: callers that
// build them from maps use it to keep CompileEndpoints deterministic.
func SortEndpoints(eps []Endpoint) {
	slices.SortFunc(eps, func(a, b Endpoint) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.MAC.String(), b.MAC.String()), cmp.Compare(a.Host, b.Host))
	})
}

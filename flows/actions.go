package flows

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Action is one OpenFlow action (or the goto_table instruction, which must
// come last). String renders it as ovs-ofctl prints it.
type Action interface {
	fmt.Stringer
	isAction()
}

// FormatActions renders an action list as ovs-ofctl prints it ("drop" when empty).
func FormatActions(actions []Action) string {
	if len(actions) == 0 {
		return "drop"
	}
	var b strings.Builder
	for i, a := range actions {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// Output sends the packet to a port (PortInPort, PortNormal or a port number).
type Output struct{ Port uint32 }

// Controller sends the packet to the controllers, at most MaxLen bytes of it.
type Controller struct{ MaxLen uint16 }

// GotoTable continues in a later table (the OpenFlow 1.3 instruction).
type GotoTable struct{ Table uint8 }

// PushVLAN pushes an 802.1Q header (TPID 0x8100).
type PushVLAN struct{}

// PopVLAN removes the outer 802.1Q header.
type PopVLAN struct{}

// SetVLANVID sets the VID of the outer 802.1Q header.
type SetVLANVID struct{ VID uint16 }

// SetTunID sets the tunnel key (the VNI for VXLAN).
type SetTunID struct{ ID uint64 }

// SetEthSrc rewrites the Ethernet source address.
type SetEthSrc struct{ MAC net.HardwareAddr }

// SetARPOp rewrites the ARP opcode.
type SetARPOp struct{ Op uint16 }

// SetARPSHA rewrites the ARP sender hardware address.
type SetARPSHA struct{ MAC net.HardwareAddr }

// SetARPSPA rewrites the ARP sender protocol address.
type SetARPSPA struct{ IP netip.Addr }

// SetIPv6Src rewrites the IPv6 source address.
type SetIPv6Src struct{ IP netip.Addr }

// SetICMPv6Type rewrites the ICMPv6 type (135 -> 136 turns a neighbour
// solicitation into an advertisement).
type SetICMPv6Type struct{ Type uint8 }

// SetNDReserved rewrites the 32 bits after an ND message's checksum: an
// advertisement's R, S and O flags (NDFlagSolicited|NDFlagOverride).
type SetNDReserved struct{ Value uint32 }

// SetNDOptionsType rewrites the type of an ND message's first option:
// NDOptionTLL makes a solicitation's source link-layer address option a
// target link-layer address option.
type SetNDOptionsType struct{ Type uint8 }

// Values of SetNDReserved and SetNDOptionsType.
const (
	NDFlagRouter    uint32 = 1 << 31
	NDFlagSolicited uint32 = 1 << 30
	NDFlagOverride  uint32 = 1 << 29
	NDOptionTLL     uint8  = 2
)

// Field is a whole packet field that Move copies, named as ovs-ofctl names it.
type Field string

// Fields Move can copy.
const (
	FieldEthSrc  Field = "NXM_OF_ETH_SRC"
	FieldEthDst  Field = "NXM_OF_ETH_DST"
	FieldARPSHA  Field = "NXM_NX_ARP_SHA"
	FieldARPTHA  Field = "NXM_NX_ARP_THA"
	FieldARPSPA  Field = "NXM_OF_ARP_SPA"
	FieldARPTPA  Field = "NXM_OF_ARP_TPA"
	FieldIPv6Src Field = "NXM_NX_IPV6_SRC"
	FieldIPv6Dst Field = "NXM_NX_IPV6_DST"
	FieldNDTLL   Field = "NXM_NX_ND_TLL"
)

// Move copies one whole field into another of the same width.
type Move struct{ Src, Dst Field }

// Learn is the flood-and-learn action of br-tun's table 2: for a frame that
// arrived from a tunnel (and was already tagged with its local VLAN), it adds
// or refreshes in Table an entry matching (local VLAN, dl_dst = this frame's
// dl_src) that strips the VLAN, sets the frame's tunnel key and outputs to the
// tunnel port the frame arrived on.
type Learn struct {
	Table       uint8
	HardTimeout uint16
	Priority    uint16
	Cookie      uint64
}

func (Output) isAction()           {}
func (Controller) isAction()       {}
func (GotoTable) isAction()        {}
func (PushVLAN) isAction()         {}
func (PopVLAN) isAction()          {}
func (SetVLANVID) isAction()       {}
func (SetTunID) isAction()         {}
func (SetEthSrc) isAction()        {}
func (SetARPOp) isAction()         {}
func (SetARPSHA) isAction()        {}
func (SetARPSPA) isAction()        {}
func (Move) isAction()             {}
func (SetIPv6Src) isAction()       {}
func (SetICMPv6Type) isAction()    {}
func (SetNDReserved) isAction()    {}
func (SetNDOptionsType) isAction() {}
func (Learn) isAction()            {}

func (a Output) String() string {
	switch a.Port {
	case PortInPort:
		return "IN_PORT"
	case PortNormal:
		return "NORMAL"
	case PortController:
		return "CONTROLLER:65535"
	}
	return "output:" + strconv.FormatUint(uint64(a.Port), 10)
}

func (a Controller) String() string { return fmt.Sprintf("CONTROLLER:%d", a.MaxLen) }
func (a GotoTable) String() string  { return "goto_table:" + strconv.Itoa(int(a.Table)) }
func (PushVLAN) String() string     { return "push_vlan:0x8100" }
func (PopVLAN) String() string      { return "pop_vlan" }
func (a SetVLANVID) String() string {
	return "set_field:" + strconv.Itoa(int(0x1000|a.VID)) + "->vlan_vid"
}
func (a SetTunID) String() string   { return "set_field:" + hex(a.ID) + "->tun_id" }
func (a SetEthSrc) String() string  { return fmt.Sprintf("set_field:%s->eth_src", a.MAC) }
func (a SetARPOp) String() string   { return fmt.Sprintf("set_field:%d->arp_op", a.Op) }
func (a SetARPSHA) String() string  { return fmt.Sprintf("set_field:%s->arp_sha", a.MAC) }
func (a SetARPSPA) String() string  { return fmt.Sprintf("set_field:%s->arp_spa", a.IP) }
func (a Move) String() string       { return fmt.Sprintf("move:%s[]->%s[]", a.Src, a.Dst) }
func (a SetIPv6Src) String() string { return fmt.Sprintf("set_field:%s->ipv6_src", a.IP) }
func (a SetICMPv6Type) String() string {
	return "set_field:" + strconv.Itoa(int(a.Type)) + "->icmpv6_type"
}
func (a SetNDReserved) String() string {
	return "set_field:" + strconv.FormatUint(uint64(a.Value), 10) + "->nd_reserved"
}
func (a SetNDOptionsType) String() string {
	return "set_field:" + strconv.Itoa(int(a.Type)) + "->nd_options_type"
}

func (a Learn) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "learn(table=%d", a.Table)
	if a.HardTimeout != 0 {
		fmt.Fprintf(&b, ",hard_timeout=%d", a.HardTimeout)
	}
	if a.Priority != DefaultPriority {
		fmt.Fprintf(&b, ",priority=%d", a.Priority)
	}
	if a.Cookie != 0 {
		fmt.Fprintf(&b, ",cookie=%#x", a.Cookie)
	}
	// VLAN_TCI[0..12] (VID and the CFI/present bit) makes learned entries
	// match dl_vlan=N: tagged frames of that VLAN only.
	b.WriteString(",NXM_OF_VLAN_TCI[0..12],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[])")
	return b.String()
}

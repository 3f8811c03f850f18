// Package flows holds OpenFlow flows as values and the compiler that turns a
// topology into the br-tun pipeline of one host.
//
// A Flow renders to exactly the line `ovs-ofctl -O OpenFlow13 dump-flows
// --no-stats` prints for it (leading space included), so compiled flows,
// golden files and dumps of a real switch compare as plain text.
package flows

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// DefaultPriority is OpenFlow's default priority, which OVS leaves out of dumps.
const DefaultPriority = 32768

// Special OpenFlow 1.3 port numbers used in actions.
const (
	PortInPort     uint32 = 0xfffffff8
	PortNormal     uint32 = 0xfffffffa
	PortController uint32 = 0xfffffffd
)

// EtherTypes with an ovs-ofctl shorthand.
const (
	EthTypeIPv4 uint16 = 0x0800
	EthTypeARP  uint16 = 0x0806
	EthTypeIPv6 uint16 = 0x86dd
)

// IP protocol and ICMPv6 types of IPv6 neighbour discovery.
const (
	IPProtoICMPv6 uint8 = 58
	ICMPv6NS      uint8 = 135 // neighbour solicitation
	ICMPv6NA      uint8 = 136 // neighbour advertisement
)

// Flow is one OpenFlow flow: where it lives, what it matches, what it does.
type Flow struct {
	Table       uint8
	Priority    uint16
	Cookie      uint64
	IdleTimeout uint16
	HardTimeout uint16
	Match       Match
	Actions     []Action // applied in order; an empty list drops
}

// Match is the subset of OpenFlow 1.3 match fields the pipeline uses. A zero
// field (or a false Has* flag) is a wildcard.
type Match struct {
	EthType     uint16
	IPProto     uint8 // with EthType IPv4/IPv6
	HasTunID    bool
	TunID       uint64
	InPort      uint32
	HasVLAN     bool
	VLAN        uint16 // VID of a tagged frame (dl_vlan)
	EthSrc      net.HardwareAddr
	EthDst      net.HardwareAddr
	EthDstMask  net.HardwareAddr // nil: exact
	ArpSPA      netip.Addr
	ArpTPA      netip.Addr
	ArpOp       uint16
	IPv6Src     netip.Addr // ipv6_src, with EthType IPv6 (:: is a value: the unspecified source)
	HasICMPType bool
	ICMPType    uint8
	NDTarget    netip.Addr // nd_target, with icmp6 and ICMPType 135 or 136
}

// Multicast is the dl_dst mask/value that selects group (multicast and
// broadcast) addresses; Unicast selects individual ones.
var (
	GroupBit = net.HardwareAddr{0x01, 0, 0, 0, 0, 0}
	Unicast  = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// String renders the flow exactly as `ovs-ofctl -O OpenFlow13 dump-flows
// --no-stats` prints it, leading space included: for people, golden files
// and the flows a diff changes. Cookies, sorting and diffs use the binary
// form instead (binary.go); the appends rather than fmt are for dumps.
func (f Flow) String() string {
	b := make([]byte, 0, 160)
	b = append(b, ' ')
	if f.Cookie != 0 {
		b = append(b, "cookie=0x"...)
		b = strconv.AppendUint(b, f.Cookie, 16)
		b = append(b, ", "...)
	}
	if f.Table != 0 {
		b = append(b, "table="...)
		b = strconv.AppendUint(b, uint64(f.Table), 10)
		b = append(b, ", "...)
	}
	if f.IdleTimeout != 0 {
		b = append(b, "idle_timeout="...)
		b = strconv.AppendUint(b, uint64(f.IdleTimeout), 10)
		b = append(b, ", "...)
	}
	if f.HardTimeout != 0 {
		b = append(b, "hard_timeout="...)
		b = strconv.AppendUint(b, uint64(f.HardTimeout), 10)
		b = append(b, ", "...)
	}
	n := len(b)
	if f.Priority != DefaultPriority {
		b = append(b, "priority="...)
		b = strconv.AppendUint(b, uint64(f.Priority), 10)
	}
	b = f.Match.appendFields(b, len(b) > n)
	if b[len(b)-1] != ' ' {
		b = append(b, ' ')
	}
	b = append(b, "actions="...)
	b = append(b, FormatActions(f.Actions)...)
	return string(b)
}

// Key identifies a flow within a switch: OpenFlow replaces a flow added with
// the same table, priority and match.
func (f Flow) Key() string {
	b := strconv.AppendUint(nil, uint64(f.Table), 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(f.Priority), 10)
	b = append(b, '/')
	return string(f.Match.appendFields(b, false))
}

// String renders the match alone, in ovs-ofctl's order.
func (m Match) String() string { return string(m.appendFields(nil, false)) }

// appendFields appends the match in the order OVS's match_format prints it,
// comma-separated, with a leading comma when sep is set.
func (m Match) appendFields(b []byte, sep bool) []byte {
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, name...)
	}
	shorthand := m.shorthand()
	if shorthand != "" {
		field(shorthand)
	}
	if m.HasTunID {
		field("tun_id=")
		b = append(b, hex(m.TunID)...)
	}
	if m.InPort != 0 {
		field("in_port=")
		b = strconv.AppendUint(b, uint64(m.InPort), 10)
	}
	if m.HasVLAN {
		field("dl_vlan=")
		b = strconv.AppendUint(b, uint64(m.VLAN), 10)
	}
	if m.EthSrc != nil {
		field("dl_src=")
		b = append(b, m.EthSrc.String()...)
	}
	if m.EthDst != nil {
		field("dl_dst=")
		b = append(b, m.EthDst.String()...)
		if m.EthDstMask != nil {
			b = append(b, '/')
			b = append(b, m.EthDstMask.String()...)
		}
	}
	if shorthand == "" && m.EthType != 0 {
		field(fmt.Sprintf("dl_type=0x%04x", m.EthType))
	}
	if m.ArpSPA.IsValid() {
		field("arp_spa=")
		b = m.ArpSPA.AppendTo(b)
	}
	if m.ArpTPA.IsValid() {
		field("arp_tpa=")
		b = m.ArpTPA.AppendTo(b)
	}
	if m.IPv6Src.IsValid() {
		field("ipv6_src=")
		b = m.IPv6Src.AppendTo(b)
	}
	if m.ArpOp != 0 {
		field("arp_op=")
		b = strconv.AppendUint(b, uint64(m.ArpOp), 10)
	}
	if m.HasICMPType {
		field("icmp_type=")
		b = strconv.AppendUint(b, uint64(m.ICMPType), 10)
	}
	if m.NDTarget.IsValid() {
		field("nd_target=")
		b = m.NDTarget.AppendTo(b)
	}
	return b
}

func (m Match) shorthand() string {
	switch {
	case m.EthType == EthTypeARP:
		return "arp"
	case m.EthType == EthTypeIPv4 && m.IPProto == 1:
		return "icmp"
	case m.EthType == EthTypeIPv4 && m.IPProto == 0:
		return "ip"
	case m.EthType == EthTypeIPv6 && m.IPProto == 58:
		return "icmp6"
	case m.EthType == EthTypeIPv6 && m.IPProto == 0:
		return "ipv6"
	}
	return ""
}

// hex renders a number as OVS does: 0x-prefixed hexadecimal, but plain "0"
// for zero.
func hex(v uint64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}

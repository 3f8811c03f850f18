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
	"strings"
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
	HasICMPType bool
	ICMPType    uint8
}

// Multicast is the dl_dst mask/value that selects group (multicast and
// broadcast) addresses; Unicast selects individual ones.
var (
	GroupBit = net.HardwareAddr{0x01, 0, 0, 0, 0, 0}
	Unicast  = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// String renders the flow exactly as `ovs-ofctl -O OpenFlow13 dump-flows
// --no-stats` prints it, leading space included.
func (f Flow) String() string {
	var b strings.Builder
	b.WriteByte(' ')
	if f.Cookie != 0 {
		fmt.Fprintf(&b, "cookie=%#x, ", f.Cookie)
	}
	if f.Table != 0 {
		fmt.Fprintf(&b, "table=%d, ", f.Table)
	}
	if f.IdleTimeout != 0 {
		fmt.Fprintf(&b, "idle_timeout=%d, ", f.IdleTimeout)
	}
	if f.HardTimeout != 0 {
		fmt.Fprintf(&b, "hard_timeout=%d, ", f.HardTimeout)
	}
	var m []string
	if f.Priority != DefaultPriority {
		m = append(m, "priority="+strconv.Itoa(int(f.Priority)))
	}
	m = append(m, f.Match.fields()...)
	b.WriteString(strings.Join(m, ","))
	if s := b.String(); s[len(s)-1] != ' ' {
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	b.WriteString(FormatActions(f.Actions))
	return b.String()
}

// Key identifies a flow within a switch: OpenFlow replaces a flow added with
// the same table, priority and match.
func (f Flow) Key() string {
	return fmt.Sprintf("%d/%d/%s", f.Table, f.Priority, strings.Join(f.Match.fields(), ","))
}

// String renders the match alone, in ovs-ofctl's order.
func (m Match) String() string { return strings.Join(m.fields(), ",") }

// fields lists the match in the order OVS's match_format prints it.
func (m Match) fields() []string {
	var out []string
	shorthand := m.shorthand()
	if shorthand != "" {
		out = append(out, shorthand)
	}
	if m.HasTunID {
		out = append(out, "tun_id="+hex(m.TunID))
	}
	if m.InPort != 0 {
		out = append(out, "in_port="+strconv.FormatUint(uint64(m.InPort), 10))
	}
	if m.HasVLAN {
		out = append(out, "dl_vlan="+strconv.Itoa(int(m.VLAN)))
	}
	if m.EthSrc != nil {
		out = append(out, "dl_src="+m.EthSrc.String())
	}
	if m.EthDst != nil {
		s := "dl_dst=" + m.EthDst.String()
		if m.EthDstMask != nil {
			s += "/" + m.EthDstMask.String()
		}
		out = append(out, s)
	}
	if shorthand == "" && m.EthType != 0 {
		out = append(out, fmt.Sprintf("dl_type=0x%04x", m.EthType))
	}
	if m.ArpSPA.IsValid() {
		out = append(out, "arp_spa="+m.ArpSPA.String())
	}
	if m.ArpTPA.IsValid() {
		out = append(out, "arp_tpa="+m.ArpTPA.String())
	}
	if m.ArpOp != 0 {
		out = append(out, "arp_op="+strconv.Itoa(int(m.ArpOp)))
	}
	if m.HasICMPType {
		out = append(out, "icmp_type="+strconv.Itoa(int(m.ICMPType)))
	}
	return out
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

package ofcodec

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Decoded is one flow read back from a switch.
type Decoded struct {
	// Flow renders (String) exactly as `ovs-ofctl -O OpenFlow13 dump-flows
	// --no-stats` prints the flow, for everything package flows can express;
	// anything else shows up as MatchExtra, Text or Unknown actions.
	Flow flows.Flow
	// Match is the flow's OXM fields exactly as the switch sent them: a
	// strict delete with them removes exactly this flow.
	Match []byte
	// MatchLossy says Flow.Match lacks part of the real match (it is in a
	// MatchExtra action): Flow.Key() does not identify the flow.
	MatchLossy bool
	// Flags are the flow's OFPFF_* flags (rendered as an Unknown action when
	// set: flows have none).
	Flags uint16
	// DurationSec is how long the flow has been installed (for a learned
	// entry: since it was last learned); PacketCount how many packets hit it.
	DurationSec uint32
	PacketCount uint64
}

const (
	multipartFlow    = 1  // OFPMP_FLOW
	flowStatsFixed   = 48 // ofp_flow_stats up to its match
	matchTypeOXM     = 1
	typeMultipartRep = 19
)

// DecodeFlowStatsReply decodes one OFPT_MULTIPART_REPLY of type OFPMP_FLOW;
// more is its MORE flag (further parts follow).
func DecodeFlowStatsReply(frame []byte) (fl []Decoded, more bool, err error) {
	if len(frame) < 16 || frame[1] != typeMultipartRep {
		return nil, false, fmt.Errorf("not a multipart reply (%d bytes)", len(frame))
	}
	if n := int(u16(frame[2:])); n != len(frame) {
		return nil, false, fmt.Errorf("multipart reply says %d bytes but has %d", n, len(frame))
	}
	if t := u16(frame[8:]); t != multipartFlow {
		return nil, false, fmt.Errorf("multipart reply of type %d, not flow stats", t)
	}
	fl, err = DecodeFlowStats(frame[16:])
	return fl, u16(frame[10:])&1 != 0, err
}

// DecodeFlowStats decodes the body of a flow stats reply: a sequence of
// ofp_flow_stats. An entry whose lengths do not add up is an error (the
// entries after it cannot be found); anything inside a well-formed entry
// that this package does not understand decodes to a visible Unknown.
func DecodeFlowStats(body []byte) ([]Decoded, error) {
	raw, err := ScanFlowStats(body, make([]RawFlow, 0, CountFlowStats(body)))
	out := make([]Decoded, len(raw))
	for i, r := range raw {
		out[i] = r.Decode()
	}
	return out, err
}

func decodeEntry(e []byte) (Decoded, error) {
	f := flows.Flow{
		Table:       e[2],
		Priority:    u16(e[12:]),
		IdleTimeout: u16(e[14:]),
		HardTimeout: u16(e[16:]),
		Cookie:      u64(e[24:]),
	}
	d := Decoded{Flags: u16(e[18:]), DurationSec: u32(e[4:]), PacketCount: u64(e[32:])}
	if err := checkEntry(e); err != nil {
		return d, err
	}
	mlen := int(u16(e[50:]))
	padded := (mlen + 7) / 8 * 8
	d.Match = append([]byte(nil), e[flowStatsFixed+4:flowStatsFixed+mlen]...)
	var extra []string
	f.Match, extra = decodeMatch(d.Match)
	if len(extra) > 0 {
		d.MatchLossy = true
		f.Actions = append(f.Actions, MatchExtra{Fields: extra})
	}
	if d.Flags != 0 {
		f.Actions = append(f.Actions, Unknown{What: "flags:" + flagNames(d.Flags)})
	}
	f.Actions = append(f.Actions, decodeInstructions(e[flowStatsFixed+padded:])...)
	d.Flow = f
	return d, nil
}

func flagNames(fl uint16) string {
	names := []string{"send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts", "no_byte_counts"}
	var out []string
	for i, n := range names {
		if fl&(1<<i) != 0 {
			out = append(out, n)
			fl &^= 1 << i
		}
	}
	if fl != 0 {
		out = append(out, fmt.Sprintf("0x%x", fl))
	}
	return strings.Join(out, ",")
}

// oxm is one match TLV.
type oxm struct {
	header      uint32
	value, mask []byte // mask nil when absent
}

func (o oxm) class() uint16 { return uint16(o.header >> 16) }
func (o oxm) field() uint8  { return uint8(o.header>>9) & 0x7f }

// splitOXM cuts OXM TLVs apart; rest is what could not be parsed.
func splitOXM(b []byte) (fields []oxm, rest []byte) {
	for len(b) >= 4 {
		h := u32(b)
		n := int(h & 0xff)
		if 4+n > len(b) {
			break
		}
		payload := b[4 : 4+n]
		o := oxm{header: h}
		if h&0x100 != 0 {
			if n%2 != 0 {
				break
			}
			o.value, o.mask = payload[:n/2], payload[n/2:]
		} else {
			o.value = payload
		}
		fields = append(fields, o)
		b = b[4+n:]
	}
	return fields, b
}

// decodeMatch fills what flows.Match can hold; everything else comes back as
// extra match text.
func decodeMatch(tlvs []byte) (flows.Match, []string) {
	var m flows.Match
	var extra []string
	fields, rest := splitOXM(tlvs)
	if len(rest) > 0 {
		extra = append(extra, fmt.Sprintf("malformed_match=0x%x", rest))
	}
	seen := map[uint32]bool{}
	icmpField := uint8(0)
	for _, o := range fields {
		key := o.header >> 9
		if seen[key] {
			extra = append(extra, "duplicate "+genericMatch(o))
			continue
		}
		seen[key] = true
		if !decodeMatchField(&m, o, &icmpField) {
			extra = append(extra, genericMatch(o))
		}
	}
	// Combinations flows.Match would render differently from OVS.
	if m.IPProto != 0 && !(m.EthType == flows.EthTypeIPv4 && m.IPProto == 1) && !(m.EthType == flows.EthTypeIPv6 && m.IPProto == 58) {
		extra = append(extra, fmt.Sprintf("nw_proto=%d", m.IPProto))
		m.IPProto = 0
	}
	if m.HasICMPType {
		v4 := m.EthType == flows.EthTypeIPv4 && m.IPProto == 1 && icmpField == 19
		v6 := m.EthType == flows.EthTypeIPv6 && m.IPProto == 58 && icmpField == 29
		if !v4 && !v6 {
			extra = append(extra, fmt.Sprintf("icmp_type=%d", m.ICMPType))
			m.HasICMPType, m.ICMPType = false, 0
		}
	}
	switch m.EthType {
	case 0x8035, 0x8847, 0x8848: // ovs-ofctl prints rarp, mpls, mplsm
		extra = append(extra, fmt.Sprintf("dl_type=0x%04x", m.EthType))
		m.EthType = 0
	}
	if m.EthType != flows.EthTypeARP && (m.ArpOp != 0 || m.ArpSPA.IsValid() || m.ArpTPA.IsValid()) {
		extra = append(extra, "arp fields without dl_type=0x0806")
		m.ArpOp, m.ArpSPA, m.ArpTPA = 0, netip.Addr{}, netip.Addr{}
	}
	if m.IPv6Src.IsValid() && m.EthType != flows.EthTypeIPv6 {
		extra = append(extra, "ipv6_src="+m.IPv6Src.String())
		m.IPv6Src = netip.Addr{}
	}
	if m.NDTarget.IsValid() && !(m.HasICMPType && m.EthType == flows.EthTypeIPv6 && (m.ICMPType == flows.ICMPv6NS || m.ICMPType == flows.ICMPv6NA)) {
		extra = append(extra, "nd_target="+m.NDTarget.String())
		m.NDTarget = netip.Addr{}
	}
	return m, extra
}

// decodeMatchField stores o in m if flows.Match can hold it exactly.
func decodeMatchField(m *flows.Match, o oxm, icmpField *uint8) bool {
	masked := o.mask != nil
	if o.class() == classNXM1 && o.field() == 16 && !masked && len(o.value) == 8 { // NXM_NX_TUN_ID
		m.HasTunID, m.TunID = true, u64(o.value)
		return true
	}
	if o.class() != classOpenFlow {
		return false
	}
	v := o.value
	switch f := o.field(); {
	case f == 0 && !masked && len(v) == 4: // in_port
		p := u32(v)
		if p == 0 || p >= 0xffffff00 {
			return false
		}
		m.InPort = p
	case f == 3 && len(v) == 6: // eth_dst
		m.EthDst = net.HardwareAddr(bytes.Clone(v))
		if masked {
			m.EthDstMask = net.HardwareAddr(bytes.Clone(o.mask))
		}
	case f == 4 && !masked && len(v) == 6: // eth_src
		m.EthSrc = net.HardwareAddr(bytes.Clone(v))
	case f == 5 && !masked && len(v) == 2 && u16(v) != 0: // eth_type
		m.EthType = u16(v)
	case f == 6 && !masked && len(v) == 2 && u16(v)&0x1000 != 0 && u16(v)&0xe000 == 0: // vlan_vid, tagged
		m.HasVLAN, m.VLAN = true, u16(v)&0xfff
	case f == 10 && !masked && len(v) == 1 && v[0] != 0: // ip_proto
		m.IPProto = v[0]
	case (f == 19 || f == 29) && !masked && len(v) == 1: // icmp_type, icmpv6_type
		m.HasICMPType, m.ICMPType = true, v[0]
		*icmpField = f
	case f == 21 && !masked && len(v) == 2 && u16(v) != 0: // arp_op
		m.ArpOp = u16(v)
	case f == 22 && !masked && len(v) == 4: // arp_spa
		m.ArpSPA = netip.AddrFrom4([4]byte(v))
	case f == 23 && !masked && len(v) == 4: // arp_tpa
		m.ArpTPA = netip.AddrFrom4([4]byte(v))
	case f == 26 && !masked && len(v) == 16: // ipv6_src
		m.IPv6Src = netip.AddrFrom16([16]byte(v))
	case f == 31 && !masked && len(v) == 16: // nd_target
		m.NDTarget = netip.AddrFrom16([16]byte(v))
	case f == 38 && !masked && len(v) == 8: // tunnel_id
		m.HasTunID, m.TunID = true, u64(v)
	default:
		return false
	}
	return true
}

// genericMatch renders a match field flows.Match cannot hold, in
// ovs-ofctl's words where this package knows them.
func genericMatch(o oxm) string {
	if o.class() == classOpenFlow {
		switch o.field() {
		case 6: // vlan_vid: OVS prints the 802.1Q TCI (present bit = CFI)
			if len(o.value) == 2 {
				mask := uint16(0x1fff)
				if len(o.mask) == 2 {
					mask = u16(o.mask)
				}
				return fmt.Sprintf("vlan_tci=0x%04x/0x%04x", u16(o.value), mask)
			}
		case 0: // in_port: reserved ports by name
			if len(o.value) == 4 && o.mask == nil {
				return "in_port=" + portName(u32(o.value))
			}
		}
	}
	f := lookupHeader(o.header)
	name := fmt.Sprintf("field_0x%08x", o.header)
	if f != nil {
		name = f.mf
		if n, ok := matchNames[f.mf]; ok {
			name = n
		}
	}
	s := name + "=" + formatValue(f, o.value)
	if o.mask != nil {
		if f != nil && f.format == fmtIPv4 && len(o.mask) == 4 {
			if ones, bits := net.IPMask(o.mask).Size(); bits == 32 {
				return fmt.Sprintf("%s/%d", s, ones) // a CIDR mask, as ovs-ofctl prints it
			}
		}
		s += "/" + formatValue(f, o.mask)
	}
	return s
}

// matchNames are the names ovs-ofctl prints in a match where they differ
// from the field's meta-flow name.
var matchNames = map[string]string{
	"eth_src": "dl_src", "eth_dst": "dl_dst", "eth_type": "dl_type", "vlan_pcp": "dl_vlan_pcp",
	"ip_src": "nw_src", "ip_dst": "nw_dst",
}

// Reserved OpenFlow 1.3 ports, as ovs-ofctl names them.
var reservedPorts = map[uint32]string{
	0xfffffff8: "IN_PORT", 0xfffffff9: "TABLE", 0xfffffffa: "NORMAL", 0xfffffffb: "FLOOD",
	0xfffffffc: "ALL", 0xfffffffd: "CONTROLLER", 0xfffffffe: "LOCAL", 0xffffffff: "ANY",
}

func portName(p uint32) string {
	if n, ok := reservedPorts[p]; ok {
		return n
	}
	return fmt.Sprint(p)
}

// Instruction types.
const (
	instrGotoTable     = 1
	instrWriteMetadata = 2
	instrWriteActions  = 3
	instrApplyActions  = 4
	instrClearActions  = 5
	instrMeter         = 6
)

// decodeInstructions renders the instruction list as ovs-ofctl does:
// apply-actions' actions inline, goto_table last.
func decodeInstructions(b []byte) []flows.Action {
	var out []flows.Action
	var gotoTable []flows.Action
	for len(b) > 0 {
		if len(b) < 8 {
			out = append(out, Unknown{What: fmt.Sprintf("truncated instruction 0x%x", b)})
			break
		}
		t, n := u16(b), int(u16(b[2:]))
		if n < 8 || n > len(b) {
			out = append(out, Unknown{What: fmt.Sprintf("instruction %d with length %d of %d bytes", t, n, len(b))})
			break
		}
		in := b[:n]
		b = b[n:]
		switch t {
		case instrApplyActions:
			out = append(out, decodeActions(in[8:])...)
		case instrGotoTable:
			gotoTable = append(gotoTable, flows.GotoTable{Table: in[4]})
		case instrWriteActions:
			out = append(out, Text{S: "write_actions(" + flows.FormatActions(decodeActions(in[8:])) + ")"})
		case instrClearActions:
			out = append(out, Text{S: "clear_actions"})
		case instrWriteMetadata:
			if n < 24 {
				out = append(out, Unknown{What: "short write_metadata"})
				continue
			}
			s := "write_metadata:" + cHex(u64(in[8:]))
			if mask := u64(in[16:]); mask != ^uint64(0) {
				s += "/" + cHex(mask)
			}
			out = append(out, Text{S: s})
		case instrMeter:
			out = append(out, Text{S: fmt.Sprintf("meter:%d", u32(in[4:]))})
		default:
			out = append(out, Unknown{What: fmt.Sprintf("instruction type %d", t)})
		}
	}
	return append(out, gotoTable...)
}

// OpenFlow 1.3 action types.
const (
	actOutput       = 0
	actPushVLAN     = 17
	actPopVLAN      = 18
	actSetField     = 25
	actExperimenter = 0xffff
)

// Nicira action subtypes.
const (
	nxResubmit      = 1
	nxRegMove       = 6
	nxRegLoad       = 7
	nxResubmitTable = 14
	nxLearn         = 16
	nxController    = 20
)

const nxVendor = 0x00002320

func decodeActions(b []byte) []flows.Action {
	var out []flows.Action
	for len(b) > 0 {
		if len(b) < 8 {
			out = append(out, Unknown{What: fmt.Sprintf("truncated action 0x%x", b)})
			break
		}
		t, n := u16(b), int(u16(b[2:]))
		if n < 8 || n%8 != 0 || n > len(b) {
			out = append(out, Unknown{What: fmt.Sprintf("action %d with length %d of %d bytes", t, n, len(b))})
			break
		}
		out = append(out, decodeAction(b[:n]))
		b = b[n:]
	}
	return out
}

func decodeAction(a []byte) flows.Action {
	t, n := u16(a), len(a)
	switch t {
	case actOutput:
		if n != 16 {
			break
		}
		port, maxLen := u32(a[4:]), u16(a[8:])
		switch {
		case port == flows.PortController:
			return flows.Controller{MaxLen: maxLen}
		case port == flows.PortInPort || port == flows.PortNormal:
			return flows.Output{Port: port}
		case port >= 0xffffff00:
			return Text{S: portName(port)}
		case port == 0:
			return Unknown{What: "output:0"}
		}
		return flows.Output{Port: port}
	case actPushVLAN:
		if et := u16(a[4:]); et != 0x8100 {
			return Text{S: fmt.Sprintf("push_vlan:0x%x", et)}
		}
		return flows.PushVLAN{}
	case actPopVLAN:
		return flows.PopVLAN{}
	case actSetField:
		return decodeSetField(a)
	case actExperimenter:
		if n >= 16 && u32(a[4:]) == nxVendor {
			return decodeNX(a)
		}
	}
	return Unknown{What: fmt.Sprintf("action type %d 0x%x", t, a)}
}

func decodeSetField(a []byte) flows.Action {
	fields, _ := splitOXM(a[4:])
	if len(fields) == 0 || fields[0].mask != nil {
		return Unknown{What: fmt.Sprintf("set_field 0x%x", a[4:])}
	}
	o := fields[0]
	v := o.value
	if o.class() == classOpenFlow {
		switch f := o.field(); {
		case f == 6 && len(v) == 2 && u16(v)&0x1000 != 0 && u16(v)&0xe000 == 0:
			return flows.SetVLANVID{VID: u16(v) & 0xfff}
		case f == 38 && len(v) == 8:
			return flows.SetTunID{ID: u64(v)}
		case f == 4 && len(v) == 6:
			return flows.SetEthSrc{MAC: net.HardwareAddr(bytes.Clone(v))}
		case f == 21 && len(v) == 2:
			return flows.SetARPOp{Op: u16(v)}
		case f == 24 && len(v) == 6:
			return flows.SetARPSHA{MAC: net.HardwareAddr(bytes.Clone(v))}
		case f == 22 && len(v) == 4:
			return flows.SetARPSPA{IP: netip.AddrFrom4([4]byte(v))}
		case f == 26 && len(v) == 16:
			return flows.SetIPv6Src{IP: netip.AddrFrom16([16]byte(v))}
		case f == 29 && len(v) == 1:
			return flows.SetICMPv6Type{Type: v[0]}
		}
	}
	if o.class() == classEricOXM {
		switch f := o.field(); {
		case f == ericNDReserved && len(v) == 4:
			return flows.SetNDReserved{Value: u32(v)}
		case f == ericNDOptionsType && len(v) == 1:
			return flows.SetNDOptionsType{Type: v[0]}
		}
	}
	f := lookupHeader(o.header)
	if f == nil || len(v) != f.bytes() {
		return Unknown{What: fmt.Sprintf("set_field 0x%x", a[4:])}
	}
	return Text{S: "set_field:" + formatValue(f, v) + "->" + f.mf}
}

func decodeNX(a []byte) flows.Action {
	sub := u16(a[8:])
	switch sub {
	case nxRegMove:
		if len(a) < 24 {
			break
		}
		bits, srcOfs, dstOfs := int(u16(a[10:])), int(u16(a[12:])), int(u16(a[14:]))
		src, dst := subfieldOf(u32(a[16:]), srcOfs, bits), subfieldOf(u32(a[20:]), dstOfs, bits)
		if src.Whole() && dst.Whole() && moveField(src.Field) && moveField(dst.Field) {
			return flows.Move{Src: flows.Field(src.Field), Dst: flows.Field(dst.Field)}
		}
		return MoveBits{Src: src, Dst: dst}
	case nxRegLoad:
		if len(a) < 24 {
			break
		}
		ofsBits := u16(a[10:])
		return Load{Dst: subfieldOf(u32(a[12:]), int(ofsBits>>6), int(ofsBits&0x3f)+1), Value: u64(a[16:])}
	case nxResubmit, nxResubmitTable:
		port, table := u16(a[10:]), a[12]
		if sub == nxResubmit {
			table = 0xff
		}
		p := ""
		if port != 0xfff8 { // OFPP_IN_PORT in OpenFlow 1.0 numbering
			p = fmt.Sprint(port)
		}
		if port != 0xfff8 && table == 0xff {
			return Text{S: "resubmit:" + p}
		}
		t := ""
		if table != 0xff {
			t = fmt.Sprint(table)
		}
		return Text{S: "resubmit(" + p + "," + t + ")"}
	case nxController:
		maxLen, id, reason := u16(a[10:]), u16(a[12:]), a[14]
		if reason == 1 && id == 0 { // OFPR_ACTION, default controller
			return flows.Controller{MaxLen: maxLen}
		}
		var opts []string
		if reason != 1 {
			opts = append(opts, "reason="+packetInReason(reason))
		}
		if maxLen != 0xffff {
			opts = append(opts, fmt.Sprintf("max_len=%d", maxLen))
		}
		if id != 0 {
			opts = append(opts, fmt.Sprintf("id=%d", id))
		}
		return Text{S: "controller(" + strings.Join(opts, ",") + ")"}
	case nxLearn:
		return decodeLearn(a)
	}
	return Unknown{What: fmt.Sprintf("nicira action subtype %d 0x%x", sub, a[10:])}
}

func moveField(name string) bool {
	switch flows.Field(name) {
	case flows.FieldEthSrc, flows.FieldEthDst, flows.FieldARPSHA, flows.FieldARPTHA, flows.FieldARPSPA, flows.FieldARPTPA,
		flows.FieldIPv6Src, flows.FieldIPv6Dst, flows.FieldNDTLL:
		return true
	}
	return false
}

func packetInReason(r uint8) string {
	names := []string{"no_match", "action", "invalid_ttl", "action_set", "group", "packet_out"}
	if int(r) < len(names) {
		return names[r]
	}
	return fmt.Sprint(r)
}

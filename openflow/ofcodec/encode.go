// Package ofcodec turns flows.Flow values into OpenFlow 1.3 flow-mods
// (libOpenflow message types) and flow stats replies back into flows.Flow
// values, so that a decoded flow's String() is what `ovs-ofctl -O OpenFlow13
// dump-flows --no-stats` prints for it.
//
// Encodings, each chosen so that OVS dumps the flow back as flows renders it
// (checked against OVS 3.1 by this package's tests):
//   - match: OpenFlow 1.3 OXM fields (dl_vlan as vlan_vid with the present
//     bit, tun_id as tunnel_id);
//   - output, CONTROLLER:N, IN_PORT, NORMAL: OFPAT_OUTPUT;
//   - push_vlan, pop_vlan: OFPAT_PUSH_VLAN / OFPAT_POP_VLAN;
//   - set_field:...: OFPAT_SET_FIELD (an NXAST_REG_LOAD would dump as load:);
//   - move: NXAST_REG_MOVE with NXM headers;
//   - learn: NXAST_LEARN, its specs parsed from the action's own text;
//   - goto_table: the OFPIT_GOTO_TABLE instruction after OFPIT_APPLY_ACTIONS.
package ofcodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Flow-mod commands.
const (
	CommandAdd          = openflow13.FC_ADD
	CommandModifyStrict = openflow13.FC_MODIFY_STRICT
	CommandDeleteStrict = openflow13.FC_DELETE_STRICT
)

const (
	portAny  = 0xffffffff // OFPP_ANY
	noBuffer = 0xffffffff // OFP_NO_BUFFER
)

// FlowMod encodes f as a flow-mod with command (CommandAdd,
// CommandModifyStrict or CommandDeleteStrict). A strict delete matches f's
// exact cookie. f is checked first: a flow OVS would reject, or would dump
// differently from f.String(), is an error naming the problem.
func FlowMod(f flows.Flow, command uint8) (*openflow13.FlowMod, error) {
	if err := Check(f); err != nil {
		return nil, err
	}
	fm := newFlowMod(f, command)
	match, err := encodeMatch(f.Match)
	if err != nil {
		return nil, fmt.Errorf("flow %q: %w", f.String(), err)
	}
	fm.Match = match
	if command == CommandDeleteStrict {
		return fm, nil
	}
	instrs, err := encodeInstructions(f.Actions)
	if err != nil {
		return nil, fmt.Errorf("flow %q: %w", f.String(), err)
	}
	fm.Instructions = instrs
	return fm, nil
}

// DeleteStrict encodes a strict delete of a flow read from the switch, with
// the match exactly as the switch sent it and the flow's exact cookie, so
// that it removes that flow and nothing else.
func DeleteStrict(d Decoded) (*openflow13.FlowMod, error) {
	match, err := RawMatch(d.Match)
	if err != nil {
		return nil, fmt.Errorf("deleting flow %q: %w", d.Flow.String(), err)
	}
	fm := newFlowMod(d.Flow, CommandDeleteStrict)
	fm.Match = match
	return fm, nil
}

// newFlowMod fills the flow-mod header fields. libOpenflow's NewFlowMod
// defaults priority to 1000 and writes OutPort into out_group as well, so
// both are set explicitly here (out_port = OFPP_ANY is also OFPG_ANY).
func newFlowMod(f flows.Flow, command uint8) *openflow13.FlowMod {
	fm := openflow13.NewFlowMod()
	fm.Command = command
	fm.TableId = f.Table
	fm.Priority = f.Priority
	fm.Cookie = f.Cookie
	if command == CommandDeleteStrict || command == CommandModifyStrict {
		fm.CookieMask = ^uint64(0)
	}
	fm.IdleTimeout = f.IdleTimeout
	fm.HardTimeout = f.HardTimeout
	fm.BufferId = noBuffer
	fm.OutPort = portAny
	fm.OutGroup = portAny
	fm.Flags = 0
	return fm
}

// Check reports why OVS would reject f or dump it differently from
// f.String(); nil if neither.
func Check(f flows.Flow) error {
	var c checker
	if f.Table > 254 {
		c.bad("table %d: OpenFlow tables are 0..254", f.Table)
	}
	c.match(f.Match)
	c.ethDstMask(f.Match)
	c.actions(f)
	if len(c.errs) > 0 {
		return fmt.Errorf("flow %q: %w", f.String(), errors.Join(c.errs...))
	}
	return nil
}

// checker collects a flow's problems, so that Check names all of them.
type checker struct{ errs []error }

func (c *checker) bad(format string, a ...any) { c.errs = append(c.errs, fmt.Errorf(format, a...)) }

func (c *checker) mac(name string, mac net.HardwareAddr) {
	if mac != nil && len(mac) != 6 {
		c.bad("%s %s: not a 48-bit MAC address", name, mac)
	}
}

// match checks the fields OVS rejects out of range or without their
// prerequisites, and those ovs-ofctl prints in a way flows does not render.
func (c *checker) match(m flows.Match) {
	switch {
	case m.IPProto == 0:
	case m.EthType == flows.EthTypeIPv4 && m.IPProto == 1, m.EthType == flows.EthTypeIPv6 && m.IPProto == 58:
	default:
		c.bad("ip_proto %d with dl_type 0x%04x: only icmp and icmp6 render as ovs-ofctl prints them", m.IPProto, m.EthType)
	}
	if m.HasICMPType && m.IPProto == 0 {
		c.bad("icmp_type without icmp or icmp6")
	}
	switch m.EthType {
	case 0x8035, 0x8847, 0x8848:
		c.bad("dl_type 0x%04x: ovs-ofctl prints it by a name flows does not render", m.EthType)
	}
	if (m.ArpOp != 0 || m.ArpSPA.IsValid() || m.ArpTPA.IsValid()) && m.EthType != flows.EthTypeARP {
		c.bad("arp_op, arp_spa and arp_tpa need dl_type 0x0806 (arp)")
	}
	if m.ArpOp > 255 {
		c.bad("arp_op %d: OVS matches 8 bits", m.ArpOp)
	}
	if m.ArpSPA.IsValid() && !m.ArpSPA.Is4() {
		c.bad("arp_spa %s: not an IPv4 address", m.ArpSPA)
	}
	if m.ArpTPA.IsValid() && !m.ArpTPA.Is4() {
		c.bad("arp_tpa %s: not an IPv4 address", m.ArpTPA)
	}
	if m.HasVLAN && m.VLAN > 0xfff {
		c.bad("dl_vlan %d: VLAN IDs are 12 bits", m.VLAN)
	}
	c.ipv6(m)
	if m.InPort >= 0xffffff00 {
		c.bad("in_port %d: reserved ports render by name", m.InPort)
	}
	c.mac("dl_src", m.EthSrc)
	c.mac("dl_dst", m.EthDst)
	c.mac("dl_dst mask", m.EthDstMask)
}

// ipv6 checks the IPv6 fields: OVS needs dl_type ipv6 for ipv6_src, and
// icmp6 with a neighbour discovery type for nd_target.
func (c *checker) ipv6(m flows.Match) {
	if m.IPv6Src.IsValid() && (m.EthType != flows.EthTypeIPv6 || !m.IPv6Src.Is6()) {
		c.bad("ipv6_src %s needs an IPv6 address and dl_type 0x86dd (ipv6)", m.IPv6Src)
	}
	nd := m.EthType == flows.EthTypeIPv6 && m.IPProto == flows.IPProtoICMPv6 && m.HasICMPType &&
		(m.ICMPType == flows.ICMPv6NS || m.ICMPType == flows.ICMPv6NA)
	if m.NDTarget.IsValid() && (!nd || !m.NDTarget.Is6()) {
		c.bad("nd_target %s needs an IPv6 address and icmp6 with icmp_type 135 or 136", m.NDTarget)
	}
}

// ethDstMask checks that a dl_dst mask prints as given: OVS drops an
// all-ones mask and clears the address bits outside the mask.
func (c *checker) ethDstMask(m flows.Match) {
	if m.EthDstMask == nil {
		return
	}
	switch {
	case m.EthDst == nil:
		c.bad("dl_dst mask without dl_dst")
	case bytes.Equal(m.EthDstMask, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}):
		c.bad("dl_dst mask ff:ff:ff:ff:ff:ff: OVS prints an exact match without it")
	case len(m.EthDst) == 6 && len(m.EthDstMask) == 6:
		for i := range m.EthDst {
			if m.EthDst[i]&^m.EthDstMask[i] != 0 {
				c.bad("dl_dst %s has bits outside its mask %s: OVS clears them", m.EthDst, m.EthDstMask)
				break
			}
		}
	}
}

// actions checks what OVS rejects (goto_table not last or backwards, values
// out of range) and outputs flows cannot render.
func (c *checker) actions(f flows.Flow) {
	for i, a := range f.Actions {
		if _, ok := a.(flows.GotoTable); ok && i != len(f.Actions)-1 {
			c.bad("goto_table must be the last action")
		}
		switch a := a.(type) {
		case flows.GotoTable:
			if a.Table <= f.Table {
				c.bad("goto_table:%d from table %d: OpenFlow only goes forward", a.Table, f.Table)
			}
		case flows.SetVLANVID:
			if a.VID > 0xfff {
				c.bad("set_field vlan_vid %d: VLAN IDs are 12 bits", a.VID)
			}
		case flows.SetEthSrc:
			c.mac("set_field eth_src", a.MAC)
		case flows.SetARPSHA:
			c.mac("set_field arp_sha", a.MAC)
		case flows.SetARPSPA:
			if !a.IP.Is4() {
				c.bad("set_field arp_spa %s: not an IPv4 address", a.IP)
			}
		case flows.SetIPv6Src:
			if !a.IP.Is6() {
				c.bad("set_field ipv6_src %s: not an IPv6 address", a.IP)
			}
		case flows.Output:
			if a.Port == 0 || (a.Port >= 0xffffff00 && a.Port != flows.PortInPort && a.Port != flows.PortNormal && a.Port != flows.PortController) {
				c.bad("output to port %d: flows renders only port numbers, IN_PORT, NORMAL and CONTROLLER", a.Port)
			}
		}
	}
}

// encodeMatch builds the OXM match.
func encodeMatch(m flows.Match) (openflow13.Match, error) {
	match := *openflow13.NewMatch()
	if m.InPort != 0 {
		match.AddField(*openflow13.NewInPortField(m.InPort))
	}
	if m.EthType != 0 {
		match.AddField(*openflow13.NewEthTypeField(m.EthType))
	}
	if m.IPProto != 0 {
		match.AddField(*openflow13.NewIpProtoField(m.IPProto))
	}
	if m.HasVLAN {
		match.AddField(*openflow13.NewVlanIdField(m.VLAN, nil)) // adds OFPVID_PRESENT
	}
	if m.EthSrc != nil {
		match.AddField(*openflow13.NewEthSrcField(m.EthSrc, nil))
	}
	if m.EthDst != nil {
		var mask *net.HardwareAddr
		if m.EthDstMask != nil {
			mask = &m.EthDstMask
		}
		match.AddField(*openflow13.NewEthDstField(m.EthDst, mask))
	}
	if m.HasTunID {
		match.AddField(*openflow13.NewTunnelIdField(m.TunID))
	}
	if m.ArpOp != 0 {
		match.AddField(*openflow13.NewArpOperField(m.ArpOp))
	}
	if m.ArpSPA.IsValid() {
		match.AddField(*openflow13.NewArpSpaField(net.IP(m.ArpSPA.AsSlice())))
	}
	if m.ArpTPA.IsValid() {
		match.AddField(*openflow13.NewArpTpaField(net.IP(m.ArpTPA.AsSlice())))
	}
	if m.IPv6Src.IsValid() {
		match.AddField(rawField(classOpenFlow, openflow13.OXM_FIELD_IPV6_SRC, m.IPv6Src.AsSlice()))
	}
	if m.HasICMPType {
		f := uint8(openflow13.OXM_FIELD_ICMPV4_TYPE)
		if m.EthType == flows.EthTypeIPv6 {
			f = openflow13.OXM_FIELD_ICMPV6_TYPE
		}
		match.AddField(openflow13.MatchField{Class: openflow13.OXM_CLASS_OPENFLOW_BASIC, Field: f, Length: 1,
			Value: &openflow13.IcmpTypeField{Type: m.ICMPType}})
	}
	// After icmp_type, its prerequisite: OVS checks them field by field.
	if m.NDTarget.IsValid() {
		match.AddField(rawField(classOpenFlow, openflow13.OXM_FIELD_IPV6_ND_TARGET, m.NDTarget.AsSlice()))
	}
	return match, nil
}

// rawField is an unmasked OXM field with value v.
func rawField(class uint16, field uint8, v []byte) openflow13.MatchField {
	return openflow13.MatchField{Class: class, Field: field, Length: uint8(len(v)), Value: rawBytes(bytes.Clone(v)), Mask: rawBytes(nil)}
}

// encodeInstructions puts the actions in one apply-actions instruction and
// a final goto_table in its own instruction.
func encodeInstructions(actions []flows.Action) ([]openflow13.Instruction, error) {
	var instrs []openflow13.Instruction
	apply := openflow13.NewInstrApplyActions()
	for _, a := range actions {
		if g, ok := a.(flows.GotoTable); ok {
			instrs = append(instrs, openflow13.NewInstrGotoTable(g.Table))
			continue
		}
		act, err := encodeAction(a)
		if err != nil {
			return nil, err
		}
		apply.AddAction(act, false)
	}
	if len(apply.Actions) > 0 {
		instrs = append([]openflow13.Instruction{apply}, instrs...)
	}
	return instrs, nil
}

func encodeAction(a flows.Action) (openflow13.Action, error) {
	switch a := a.(type) {
	case flows.Output:
		out := openflow13.NewActionOutput(a.Port)
		out.MaxLen = 0
		if a.Port == flows.PortController {
			out.MaxLen = openflow13.OFPCML_NO_BUFFER // renders CONTROLLER:65535
		}
		return out, nil
	case flows.Controller:
		out := openflow13.NewActionOutput(flows.PortController)
		out.MaxLen = a.MaxLen
		return out, nil
	case flows.PushVLAN:
		return openflow13.NewActionPushVlan(0x8100), nil
	case flows.PopVLAN:
		return openflow13.NewActionPopVlan(), nil
	case flows.SetVLANVID:
		return openflow13.NewActionSetField(*openflow13.NewVlanIdField(a.VID, nil)), nil
	case flows.SetTunID:
		return openflow13.NewActionSetField(*openflow13.NewTunnelIdField(a.ID)), nil
	case flows.SetEthSrc:
		return openflow13.NewActionSetField(*openflow13.NewEthSrcField(a.MAC, nil)), nil
	case flows.SetARPOp:
		return openflow13.NewActionSetField(*openflow13.NewArpOperField(a.Op)), nil
	case flows.SetARPSHA:
		return openflow13.NewActionSetField(*openflow13.NewArpShaField(a.MAC)), nil
	case flows.SetARPSPA:
		return openflow13.NewActionSetField(*openflow13.NewArpSpaField(net.IP(a.IP.AsSlice()))), nil
	case flows.SetIPv6Src:
		return openflow13.NewActionSetField(rawField(classOpenFlow, openflow13.OXM_FIELD_IPV6_SRC, a.IP.AsSlice())), nil
	case flows.SetICMPv6Type:
		return openflow13.NewActionSetField(rawField(classOpenFlow, openflow13.OXM_FIELD_ICMPV6_TYPE, []byte{a.Type})), nil
	case flows.SetNDReserved:
		return openflow13.NewActionSetField(rawField(classEricOXM, ericNDReserved, binary.BigEndian.AppendUint32(nil, a.Value))), nil
	case flows.SetNDOptionsType:
		return openflow13.NewActionSetField(rawField(classEricOXM, ericNDOptionsType, []byte{a.Type})), nil
	case flows.Move:
		src, dst := fieldByName[string(a.Src)], fieldByName[string(a.Dst)]
		if src == nil || dst == nil {
			return nil, fmt.Errorf("move %s -> %s: unknown field", a.Src, a.Dst)
		}
		if src.bits != dst.bits {
			return nil, fmt.Errorf("move %s -> %s: %d bits into %d", a.Src, a.Dst, src.bits, dst.bits)
		}
		return openflow13.NewNXActionRegMove(uint16(src.bits), 0, 0, headerField(src), headerField(dst)), nil
	case flows.Learn:
		return encodeLearn(a)
	case Load:
		if a.Dst.f == nil {
			return nil, fmt.Errorf("load into unknown field %s", a.Dst.Field)
		}
		ofsBits := uint16(a.Dst.Ofs)<<6 | uint16(a.Dst.Bits-1)
		return openflow13.NewNXActionRegLoad(ofsBits, headerField(a.Dst.f), a.Value), nil
	}
	return nil, fmt.Errorf("action %s (%T) cannot be encoded", a, a)
}

// headerField is the MatchField whose header (MarshalHeader) is f's.
func headerField(f *field) *openflow13.MatchField {
	h := f.header()
	return &openflow13.MatchField{Class: uint16(h >> 16), Field: uint8(h>>9) & 0x7f, Length: uint8(h)}
}

// RawMatch wraps OXM TLVs read from a switch as a libOpenflow Match, so they
// go back out byte for byte.
func RawMatch(tlvs []byte) (openflow13.Match, error) {
	m := *openflow13.NewMatch()
	fields, rest := splitOXM(tlvs)
	if len(rest) > 0 {
		return m, fmt.Errorf("malformed OXM match: 0x%x", rest)
	}
	for _, o := range fields {
		payload := append(bytes.Clone(o.value), o.mask...)
		m.AddField(openflow13.MatchField{
			Class: o.class(), Field: o.field(), HasMask: o.mask != nil, Length: uint8(len(payload)),
			Value: rawBytes(payload), Mask: rawBytes(nil),
		})
	}
	return m, nil
}

// rawBytes is a util.Message of fixed bytes.
type rawBytes []byte

func (r rawBytes) Len() uint16                       { return uint16(len(r)) }
func (r rawBytes) MarshalBinary() ([]byte, error)    { return bytes.Clone(r), nil }
func (r rawBytes) UnmarshalBinary(data []byte) error { return errors.New("rawBytes is only sent") }

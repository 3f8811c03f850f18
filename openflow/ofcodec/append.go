package ofcodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// The append encoder writes flow-mods and bundle-adds straight into one
// buffer, without libOpenflow's message structs (about 57 allocations per
// flow-mod wrapped in a bundle-add): the bytes are exactly FlowMod's,
// marshalled by ofconn.Marshal, which this package's tests check for every
// kind of match and action. libOpenflow still encodes the rare actions
// (learn, load) whose layout is not worth repeating here.

// Wire constants of the messages the append encoder writes.
const (
	ofVersion         = 4
	typeExperimenter  = 4
	typeFlowMod       = 14
	flowModFixed      = 48 // header and ofp_flow_mod up to its match
	bundleAddFixed    = 24 // header, experimenter, exp_type, bundle_id, pad, flags
	onfExperimenter   = 0x4f4e4600
	bundleAddExpType  = 2301
	maxMessage        = 0xffff
	instrHeaderLength = 8
)

// BundleAtomic is the flags of an atomic bundle (OFPBF_ATOMIC).
const BundleAtomic uint16 = 1

// Mod is a flow-mod whose match and instructions are already in wire form:
// encoded once by AppendMatch and AppendInstructions (and reused, for
// instance, by a diff that compared them), or a dumped flow's raw match.
type Mod struct {
	Command                  uint8
	Table                    uint8
	Priority                 uint16
	IdleTimeout, HardTimeout uint16
	Cookie                   uint64
	Match                    []byte // OXM TLVs, without the ofp_match header
	Instructions             []byte // ignored by a strict delete
}

// ModOf is the Mod of f with its wire-form match and instructions.
func ModOf(f flows.Flow, command uint8, match, instructions []byte) Mod {
	return Mod{Command: command, Table: f.Table, Priority: f.Priority, IdleTimeout: f.IdleTimeout,
		HardTimeout: f.HardTimeout, Cookie: f.Cookie, Match: match, Instructions: instructions}
}

// AppendFlowMod appends f as a flow-mod message with xid, checked as
// FlowMod checks it.
func AppendFlowMod(b []byte, xid uint32, f flows.Flow, command uint8) ([]byte, error) {
	return appendFlow(b, f, command, func(b []byte, m Mod) ([]byte, error) { return AppendMod(b, xid, m) })
}

// AppendBundleAdd appends f's flow-mod wrapped in a bundle-add of bundle id
// with flags, checked as FlowMod checks it. The inner message carries the
// bundle-add's xid, as OVS requires.
func AppendBundleAdd(b []byte, xid, bundle uint32, flags uint16, f flows.Flow, command uint8) ([]byte, error) {
	return appendFlow(b, f, command, func(b []byte, m Mod) ([]byte, error) {
		return AppendBundleAddMod(b, xid, bundle, flags, m)
	})
}

// appendFlow checks and encodes f, then appends it with put; b comes back
// unchanged on error.
func appendFlow(b []byte, f flows.Flow, command uint8, put func([]byte, Mod) ([]byte, error)) ([]byte, error) {
	if err := Check(f); err != nil {
		return b, err
	}
	start := len(b)
	// The match and instructions are encoded past the end of b, then the
	// message is laid out after them and moved into place.
	scratch, err := AppendMatch(b, f.Match)
	if err != nil {
		return b, fmt.Errorf("flow %q: %w", f.String(), err)
	}
	mEnd := len(scratch)
	if command != CommandDeleteStrict {
		if scratch, err = AppendInstructions(scratch, f.Actions); err != nil {
			return b, fmt.Errorf("flow %q: %w", f.String(), err)
		}
	}
	iEnd := len(scratch)
	m := ModOf(f, command, scratch[start:mEnd], scratch[mEnd:iEnd])
	out, err := put(scratch, m)
	if err != nil {
		return b, fmt.Errorf("flow %q: %w", f.String(), err)
	}
	n := copy(out[start:], out[iEnd:])
	return out[:start+n], nil
}

// AppendMod appends m as a flow-mod message with xid.
func AppendMod(b []byte, xid uint32, m Mod) ([]byte, error) {
	n := m.len()
	if n > maxMessage {
		return b, fmt.Errorf("flow-mod of %d bytes: longer than OpenFlow allows", n)
	}
	return m.append(b, xid, n), nil
}

// AppendBundleAddMod appends m wrapped in a bundle-add of bundle id with
// flags; the bundle-add and its flow-mod both carry xid.
func AppendBundleAddMod(b []byte, xid, bundle uint32, flags uint16, m Mod) ([]byte, error) {
	n := m.len()
	if bundleAddFixed+n > maxMessage {
		return b, fmt.Errorf("bundle-add of a %d-byte flow-mod: longer than OpenFlow allows", n)
	}
	b = appendHeader(b, typeExperimenter, bundleAddFixed+n, xid)
	b = binary.BigEndian.AppendUint32(b, onfExperimenter)
	b = binary.BigEndian.AppendUint32(b, bundleAddExpType)
	b = binary.BigEndian.AppendUint32(b, bundle)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, flags)
	return m.append(b, xid, n), nil
}

// len is the flow-mod's length: libOpenflow leaves a strict delete's
// instructions out.
func (m Mod) len() int {
	n := flowModFixed + matchLen(len(m.Match))
	if m.Command != CommandDeleteStrict {
		n += len(m.Instructions)
	}
	return n
}

// matchLen is the length of an ofp_match holding tlvs bytes of OXM fields,
// padded to 8 bytes.
func matchLen(tlvs int) int { return (4 + tlvs + 7) / 8 * 8 }

func appendHeader(b []byte, typ uint8, n int, xid uint32) []byte {
	b = append(b, ofVersion, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	return binary.BigEndian.AppendUint32(b, xid)
}

// append lays the flow-mod out as libOpenflow's FlowMod.MarshalBinary does
// with the fields newFlowMod sets (out_port and out_group OFPP_ANY, no
// buffer, no flags).
func (m Mod) append(b []byte, xid uint32, n int) []byte {
	b = appendHeader(b, typeFlowMod, n, xid)
	b = binary.BigEndian.AppendUint64(b, m.Cookie)
	var mask uint64
	if m.Command == CommandDeleteStrict || m.Command == CommandModifyStrict {
		mask = ^uint64(0)
	}
	b = binary.BigEndian.AppendUint64(b, mask)
	b = append(b, m.Table, m.Command)
	b = binary.BigEndian.AppendUint16(b, m.IdleTimeout)
	b = binary.BigEndian.AppendUint16(b, m.HardTimeout)
	b = binary.BigEndian.AppendUint16(b, m.Priority)
	b = binary.BigEndian.AppendUint32(b, noBuffer)
	b = binary.BigEndian.AppendUint32(b, portAny) // out_port
	b = binary.BigEndian.AppendUint32(b, portAny) // out_group
	b = append(b, 0, 0, 0, 0)                     // flags, pad
	b = binary.BigEndian.AppendUint16(b, matchTypeOXM)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(m.Match)))
	b = append(b, m.Match...)
	b = append(b, make([]byte, matchLen(len(m.Match))-4-len(m.Match))...)
	if m.Command != CommandDeleteStrict {
		b = append(b, m.Instructions...)
	}
	return b
}

// OXM headers of the match fields flows.Match holds.
var (
	oxmInPort    = hdr(classOpenFlow, 0, 4)
	oxmEthDst    = hdr(classOpenFlow, 3, 6)
	oxmEthDstM   = hdr(classOpenFlow, 3, 12) | 0x100
	oxmEthSrc    = hdr(classOpenFlow, 4, 6)
	oxmEthType   = hdr(classOpenFlow, 5, 2)
	oxmVLANVID   = hdr(classOpenFlow, 6, 2)
	oxmIPProto   = hdr(classOpenFlow, 10, 1)
	oxmICMPType  = hdr(classOpenFlow, 19, 1)
	oxmARPOp     = hdr(classOpenFlow, 21, 2)
	oxmARPSPA    = hdr(classOpenFlow, 22, 4)
	oxmARPTPA    = hdr(classOpenFlow, 23, 4)
	oxmARPSHA    = hdr(classOpenFlow, 24, 6)
	oxmIPv6Src   = hdr(classOpenFlow, 26, 16)
	oxmNDTarget  = hdr(classOpenFlow, 31, 16)
	oxmICMP6Type = hdr(classOpenFlow, 29, 1)
	oxmTunnelID  = hdr(classOpenFlow, 38, 8)
)

const vidPresent = 0x1000 // OFPVID_PRESENT

// errBadMAC and errBadIPv4 are values encodeMatch would silently cut or pad.
var (
	errBadMAC  = errors.New("not a 48-bit MAC address")
	errBadIPv4 = errors.New("not an IPv4 address")
	errBadIPv6 = errors.New("not an IPv6 address")
)

// AppendMatch appends m's OXM fields (no ofp_match header), in the order and
// form FlowMod encodes them. A MAC that is not 48 bits or an ARP address
// that is not IPv4 is an error (FlowMod would cut or pad it).
func AppendMatch(b []byte, m flows.Match) ([]byte, error) {
	b, err := appendL2Match(b, m)
	if err != nil {
		return b, err
	}
	return appendL3Match(b, m)
}

// appendL2Match appends the fields up to the tunnel ID, in FlowMod's order.
func appendL2Match(b []byte, m flows.Match) ([]byte, error) {
	if m.InPort != 0 {
		b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(b, oxmInPort), m.InPort)
	}
	if m.EthType != 0 {
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(b, oxmEthType), m.EthType)
	}
	if m.IPProto != 0 {
		b = append(binary.BigEndian.AppendUint32(b, oxmIPProto), m.IPProto)
	}
	if m.HasVLAN {
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(b, oxmVLANVID), m.VLAN|vidPresent)
	}
	var err error
	if m.EthSrc != nil {
		if b, err = appendMAC(binary.BigEndian.AppendUint32(b, oxmEthSrc), m.EthSrc); err != nil {
			return b, fmt.Errorf("dl_src: %w", err)
		}
	}
	if m.EthDst != nil {
		h := oxmEthDst
		if m.EthDstMask != nil {
			h = oxmEthDstM
		}
		b, err = appendMAC(binary.BigEndian.AppendUint32(b, h), m.EthDst)
		if err == nil && m.EthDstMask != nil {
			b, err = appendMAC(b, m.EthDstMask)
		}
		if err != nil {
			return b, fmt.Errorf("dl_dst: %w", err)
		}
	}
	if m.HasTunID {
		b = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(b, oxmTunnelID), m.TunID)
	}
	return b, nil
}

// appendL3Match appends the ARP, IPv6 and ICMP fields, in FlowMod's order.
func appendL3Match(b []byte, m flows.Match) ([]byte, error) {
	var err error
	if m.ArpOp != 0 {
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(b, oxmARPOp), m.ArpOp)
	}
	if m.ArpSPA.IsValid() {
		if b, err = appendIPv4(binary.BigEndian.AppendUint32(b, oxmARPSPA), m.ArpSPA); err != nil {
			return b, fmt.Errorf("arp_spa: %w", err)
		}
	}
	if m.ArpTPA.IsValid() {
		if b, err = appendIPv4(binary.BigEndian.AppendUint32(b, oxmARPTPA), m.ArpTPA); err != nil {
			return b, fmt.Errorf("arp_tpa: %w", err)
		}
	}
	if m.IPv6Src.IsValid() {
		if b, err = appendIPv6(binary.BigEndian.AppendUint32(b, oxmIPv6Src), m.IPv6Src); err != nil {
			return b, fmt.Errorf("ipv6_src: %w", err)
		}
	}
	if m.HasICMPType {
		h := oxmICMPType
		if m.EthType == flows.EthTypeIPv6 {
			h = oxmICMP6Type
		}
		b = append(binary.BigEndian.AppendUint32(b, h), m.ICMPType)
	}
	if m.NDTarget.IsValid() {
		if b, err = appendIPv6(binary.BigEndian.AppendUint32(b, oxmNDTarget), m.NDTarget); err != nil {
			return b, fmt.Errorf("nd_target: %w", err)
		}
	}
	return b, nil
}

// appendIPv6 writes an IPv6 address (AsSlice's 16 bytes).
func appendIPv6(b []byte, ip netip.Addr) ([]byte, error) {
	if !ip.Is6() {
		return b, errBadIPv6
	}
	a := ip.As16()
	return append(b, a[:]...), nil
}

func appendMAC(b []byte, mac net.HardwareAddr) ([]byte, error) {
	if len(mac) != 6 {
		return b, errBadMAC
	}
	return append(b, mac...), nil
}

// appendIPv4 writes an IPv4 (or IPv4-mapped) address as net.IP.To4 does.
func appendIPv4(b []byte, ip netip.Addr) ([]byte, error) {
	ip = ip.Unmap()
	if !ip.Is4() {
		return b, errBadIPv4
	}
	a := ip.As4()
	return append(b, a[:]...), nil
}

// AppendInstructions appends the instructions of actions as FlowMod encodes
// them: one apply-actions instruction with every action but goto_table,
// then each goto_table instruction. No actions append nothing.
func AppendInstructions(b []byte, actions []flows.Action) ([]byte, error) {
	apply := -1
	for _, a := range actions {
		if _, ok := a.(flows.GotoTable); ok {
			continue
		}
		if apply < 0 {
			apply = len(b)
			b = append(b, 0, 4, 0, 0, 0, 0, 0, 0) // OFPIT_APPLY_ACTIONS, length set below
		}
		var err error
		if b, err = appendAction(b, a); err != nil {
			return b, err
		}
	}
	if apply >= 0 {
		if len(b)-apply > maxMessage {
			return b, fmt.Errorf("apply-actions of %d bytes: longer than OpenFlow allows", len(b)-apply)
		}
		binary.BigEndian.PutUint16(b[apply+2:], uint16(len(b)-apply))
	}
	for _, a := range actions {
		if g, ok := a.(flows.GotoTable); ok {
			b = append(b, 0, instrGotoTable, 0, instrHeaderLength, g.Table, 0, 0, 0)
		}
	}
	return b, nil
}

// appendAction appends one action as encodeAction's libOpenflow action
// marshals it; learn and load are marshalled by libOpenflow itself.
func appendAction(b []byte, a flows.Action) ([]byte, error) {
	switch a := a.(type) {
	case flows.Output:
		var maxLen uint16
		if a.Port == flows.PortController {
			maxLen = 0xffff // OFPCML_NO_BUFFER: renders CONTROLLER:65535
		}
		return appendOutput(b, a.Port, maxLen), nil
	case flows.Controller:
		return appendOutput(b, flows.PortController, a.MaxLen), nil
	case flows.PushVLAN:
		return append(b, 0, actPushVLAN, 0, 8, 0x81, 0x00, 0, 0), nil
	case flows.PopVLAN:
		return append(b, 0, actPopVLAN, 0, 8, 0, 0, 0, 0), nil
	case flows.Move:
		return appendMove(b, a)
	}
	if b, ok, err := appendSetFieldAction(b, a); ok {
		return b, err
	}
	act, err := encodeAction(a)
	if err != nil {
		return b, err
	}
	raw, err := act.MarshalBinary()
	if err != nil {
		return b, fmt.Errorf("action %s: %w", a, err)
	}
	return append(b, raw...), nil
}

// appendSetFieldAction appends the set_field actions of package flows that
// libOpenflow need not encode; ok is false for any other action.
func appendSetFieldAction(b []byte, a flows.Action) (_ []byte, ok bool, err error) {
	start := len(b)
	switch a := a.(type) {
	case flows.SetVLANVID:
		return pad8(binary.BigEndian.AppendUint16(setField(b, oxmVLANVID), a.VID|vidPresent), start), true, nil
	case flows.SetTunID:
		return pad8(binary.BigEndian.AppendUint64(setField(b, oxmTunnelID), a.ID), start), true, nil
	case flows.SetARPOp:
		return pad8(binary.BigEndian.AppendUint16(setField(b, oxmARPOp), a.Op), start), true, nil
	case flows.SetEthSrc:
		b, err = appendSetMAC(b, oxmEthSrc, a.MAC, "eth_src")
		return b, true, err
	case flows.SetARPSHA:
		b, err = appendSetMAC(b, oxmARPSHA, a.MAC, "arp_sha")
		return b, true, err
	case flows.SetARPSPA:
		v, err := appendIPv4(setField(b, oxmARPSPA), a.IP)
		if err != nil {
			return b[:start], true, fmt.Errorf("set_field arp_spa: %w", err)
		}
		return pad8(v, start), true, nil
	}
	return b, false, nil
}

func appendOutput(b []byte, port uint32, maxLen uint16) []byte {
	b = append(b, 0, actOutput, 0, 16)
	b = binary.BigEndian.AppendUint32(b, port)
	b = binary.BigEndian.AppendUint16(b, maxLen)
	return append(b, 0, 0, 0, 0, 0, 0)
}

// setField starts OFPAT_SET_FIELD of one OXM field: the caller appends the
// value, then pad8 pads the action to 8 bytes.
func setField(b []byte, header uint32) []byte {
	n := (4 + 4 + int(header&0xff) + 7) / 8 * 8
	b = append(b, 0, actSetField)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	return binary.BigEndian.AppendUint32(b, header)
}

// pad8 pads what was appended since start to a multiple of 8 bytes.
func pad8(b []byte, start int) []byte {
	return append(b, make([]byte, (8-(len(b)-start)%8)%8)...)
}

func appendSetMAC(b []byte, header uint32, mac net.HardwareAddr, name string) ([]byte, error) {
	start := len(b)
	v, err := appendMAC(setField(b, header), mac)
	if err != nil {
		return b[:start], fmt.Errorf("set_field %s: %w", name, err)
	}
	return pad8(v, start), nil
}

// appendMove writes NXAST_REG_MOVE of a whole field with its NXM headers.
func appendMove(b []byte, a flows.Move) ([]byte, error) {
	src, dst := movedField(a.Src), movedField(a.Dst)
	if src == nil || dst == nil {
		return b, fmt.Errorf("move %s -> %s: unknown field", a.Src, a.Dst)
	}
	if src.bits != dst.bits {
		return b, fmt.Errorf("move %s -> %s: %d bits into %d", a.Src, a.Dst, src.bits, dst.bits)
	}
	b = append(b, 0xff, 0xff, 0, 24)
	b = binary.BigEndian.AppendUint32(b, nxVendor)
	b = binary.BigEndian.AppendUint16(b, nxRegMove)
	b = binary.BigEndian.AppendUint16(b, uint16(src.bits))
	b = append(b, 0, 0, 0, 0) // src_ofs, dst_ofs
	b = binary.BigEndian.AppendUint32(b, src.header())
	return binary.BigEndian.AppendUint32(b, dst.header()), nil
}

// The fields the pipeline moves, looked up once: a map lookup by name per
// move costs more than the rest of an ARP responder's encoding.
var (
	fieldEthSrc = tableField(flows.FieldEthSrc)
	fieldEthDst = tableField(flows.FieldEthDst)
	fieldARPSHA = tableField(flows.FieldARPSHA)
	fieldARPTHA = tableField(flows.FieldARPTHA)
	fieldARPSPA = tableField(flows.FieldARPSPA)
	fieldARPTPA = tableField(flows.FieldARPTPA)
)

// tableField finds a field in fieldTable, for package variables (which are
// set before init fills fieldByName).
func tableField(name flows.Field) *field {
	for _, f := range fieldTable {
		if f.name == string(name) {
			return f
		}
	}
	return nil
}

// movedField is the field of a move's name (nil if unknown).
func movedField(name flows.Field) *field {
	switch name {
	case flows.FieldEthSrc:
		return fieldEthSrc
	case flows.FieldEthDst:
		return fieldEthDst
	case flows.FieldARPSHA:
		return fieldARPSHA
	case flows.FieldARPTHA:
		return fieldARPTHA
	case flows.FieldARPSPA:
		return fieldARPSPA
	case flows.FieldARPTPA:
		return fieldARPTPA
	}
	return fieldByName[string(name)]
}

// AppendDeleteStrict appends the strict delete of a dumped flow as
// DeleteStrict encodes it: its raw match, exact cookie and timeouts. A match
// whose OXM fields do not parse is an error, as for DeleteStrict.
func AppendDeleteStrict(b []byte, xid, bundle uint32, flags uint16, r RawFlow) ([]byte, error) {
	if _, rest := splitOXM(r.Match()); len(rest) > 0 {
		return b, fmt.Errorf("deleting a flow of table %d, priority %d: malformed OXM match: 0x%x", r.Table(), r.Priority(), rest)
	}
	m := Mod{Command: CommandDeleteStrict, Table: r.Table(), Priority: r.Priority(), IdleTimeout: r.IdleTimeout(),
		HardTimeout: r.HardTimeout(), Cookie: r.Cookie(), Match: r.Match()}
	return AppendBundleAddMod(b, xid, bundle, flags, m)
}

// Bundle control types (ONF extension, OFPBCT_*), for AppendBundleControl.
const (
	BundleOpen   uint16 = 0
	BundleCommit uint16 = 4
	// BundleDiscard drops an open bundle unapplied.
	BundleDiscard uint16 = 6
	// BundleCommitReply is the type of a successful commit's reply.
	BundleCommitReply uint16 = 5
	bundleCtrlExpType        = 2300
	bundleCtrlLen            = 24
)

// AppendBundleControl appends a bundle control request (open, commit, ...)
// of bundle id with flags: what lets a bundle be sent in one write, open,
// adds and commit together.
func AppendBundleControl(b []byte, xid, bundle uint32, typ, flags uint16) []byte {
	b = appendHeader(b, typeExperimenter, bundleCtrlLen, xid)
	b = binary.BigEndian.AppendUint32(b, onfExperimenter)
	b = binary.BigEndian.AppendUint32(b, bundleCtrlExpType)
	b = binary.BigEndian.AppendUint32(b, bundle)
	b = binary.BigEndian.AppendUint16(b, typ)
	return binary.BigEndian.AppendUint16(b, flags)
}

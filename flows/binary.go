package flows

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// The binary form of a flow is what its content cookie hashes and what
// CompileEndpoints tells Keys apart by: every field of the flow but the
// cookie, each present field as a tag byte and its value (variable-length
// values with their length), so two flows have the same form exactly when
// they have the same contents. It is never sent anywhere nor stored; it
// only has to be the same in every process, which plain bytes are.
//
// It replaces the text (Flow.String) on the compiler's path: rendering the
// text of 100,000 flows took most of a compile.

// Tags of the binary form; the numbers only need to differ.
const (
	binEthType byte = iota + 1
	binIPProto
	binTunID
	binInPort
	binVLAN
	binEthSrc
	binEthDst
	binEthDstMask
	binArpSPA
	binArpTPA
	binArpOp
	binIPv6Src
	binICMPType
	binNDTarget
	binActions // the match ends here
)

// Tags of the actions.
const (
	actOutput byte = iota + 1
	actController
	actGotoTable
	actPushVLAN
	actPopVLAN
	actSetVLANVID
	actSetTunID
	actSetEthSrc
	actSetARPOp
	actSetARPSHA
	actSetARPSPA
	actMove
	actSetIPv6Src
	actSetICMPv6Type
	actSetNDReserved
	actSetNDOptionsType
	actLearn
	actOther // an action type this file does not know: its text
)

// appendBinary appends f's binary form (its cookie aside).
func appendBinary(b []byte, f *Flow) []byte {
	return appendRestBinary(appendKeyBinary(b, f), f)
}

// appendRestBinary appends what follows the Key in f's binary form.
func appendRestBinary(b []byte, f *Flow) []byte {
	b = binary.BigEndian.AppendUint16(b, f.IdleTimeout)
	b = binary.BigEndian.AppendUint16(b, f.HardTimeout)
	b = append(b, binActions)
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.Actions)))
	for _, a := range f.Actions {
		b = appendActionBinary(b, a)
	}
	return b
}

// appendKeyBinary appends the binary form of f's Key: table, priority and
// match. Two flows have the same Key exactly when these bytes are equal.
func appendKeyBinary(b []byte, f *Flow) []byte {
	b = append(b, f.Table)
	b = binary.BigEndian.AppendUint16(b, f.Priority)
	m := &f.Match
	if m.EthType != 0 {
		b = binary.BigEndian.AppendUint16(append(b, binEthType), m.EthType)
	}
	if m.IPProto != 0 {
		b = append(b, binIPProto, m.IPProto)
	}
	if m.HasTunID {
		b = binary.BigEndian.AppendUint64(append(b, binTunID), m.TunID)
	}
	if m.InPort != 0 {
		b = binary.BigEndian.AppendUint32(append(b, binInPort), m.InPort)
	}
	if m.HasVLAN {
		b = binary.BigEndian.AppendUint16(append(b, binVLAN), m.VLAN)
	}
	b = appendMACBinary(b, binEthSrc, m.EthSrc)
	b = appendMACBinary(b, binEthDst, m.EthDst)
	b = appendMACBinary(b, binEthDstMask, m.EthDstMask)
	b = appendAddrBinary(b, binArpSPA, m.ArpSPA)
	b = appendAddrBinary(b, binArpTPA, m.ArpTPA)
	if m.ArpOp != 0 {
		b = binary.BigEndian.AppendUint16(append(b, binArpOp), m.ArpOp)
	}
	b = appendAddrBinary(b, binIPv6Src, m.IPv6Src)
	if m.HasICMPType {
		b = append(b, binICMPType, m.ICMPType)
	}
	return appendAddrBinary(b, binNDTarget, m.NDTarget)
}

// appendMACBinary appends a present (non-nil) address with its length: nil
// and empty differ, as they do in the text.
func appendMACBinary(b []byte, tag byte, mac net.HardwareAddr) []byte {
	if mac == nil {
		return b
	}
	return append(append(b, tag, byte(len(mac))), mac...)
}

// appendAddrBinary appends a valid address: 4 or 16 bytes, and its zone.
func appendAddrBinary(b []byte, tag byte, ip netip.Addr) []byte {
	if !ip.IsValid() {
		return b
	}
	if ip.Is4() {
		a := ip.As4()
		return append(append(b, tag, 4), a[:]...)
	}
	a := ip.As16()
	b = append(append(b, tag, 16), a[:]...)
	return appendString(b, ip.Zone())
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

// appendActionBinary appends one action: its tag, then its fields.
func appendActionBinary(b []byte, a Action) []byte {
	// binary.BigEndian's functions are called directly: as function
	// values they made b escape (no scratch buffer on the stack).
	be := binary.BigEndian
	switch a := a.(type) {
	case Output:
		return be.AppendUint32(append(b, actOutput), a.Port)
	case Controller:
		return be.AppendUint16(append(b, actController), a.MaxLen)
	case GotoTable:
		return append(b, actGotoTable, a.Table)
	case PushVLAN:
		return append(b, actPushVLAN)
	case PopVLAN:
		return append(b, actPopVLAN)
	case SetVLANVID:
		return be.AppendUint16(append(b, actSetVLANVID), a.VID)
	case SetTunID:
		return be.AppendUint64(append(b, actSetTunID), a.ID)
	case SetEthSrc:
		return append(append(b, actSetEthSrc, byte(len(a.MAC))), a.MAC...)
	case SetARPOp:
		return be.AppendUint16(append(b, actSetARPOp), a.Op)
	case SetARPSHA:
		return append(append(b, actSetARPSHA, byte(len(a.MAC))), a.MAC...)
	case SetARPSPA:
		return appendAddrBinary(append(b, actSetARPSPA), 0, a.IP)
	case Move:
		return appendString(appendString(append(b, actMove), string(a.Src)), string(a.Dst))
	case SetIPv6Src:
		return appendAddrBinary(append(b, actSetIPv6Src), 0, a.IP)
	case SetICMPv6Type:
		return append(b, actSetICMPv6Type, a.Type)
	case SetNDReserved:
		return be.AppendUint32(append(b, actSetNDReserved), a.Value)
	case SetNDOptionsType:
		return append(b, actSetNDOptionsType, a.Type)
	case Learn:
		b = be.AppendUint16(append(b, actLearn, a.Table), a.HardTimeout)
		return be.AppendUint64(be.AppendUint16(b, a.Priority), a.Cookie)
	}
	return appendString(append(b, actOther), a.String())
}

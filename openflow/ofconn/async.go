package ofconn

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
)

// The asynchronous messages are decoded here rather than by libOpenflow:
// its port-status parser reads every field at the wrong offset, its match
// parser panics on fields it lists without a type (tun_flags, which OVS puts
// in packet-ins from tunnels) and leaves eth_src/eth_dst empty.

// OXM is one OpenFlow extensible match field.
type OXM struct {
	Class uint16
	Field uint8
	Value []byte
	Mask  []byte // nil when the field is exact
}

// OXM classes.
const (
	OXMClassNXM1     = 0x0001
	OXMClassOpenFlow = 0x8000
)

// splitOXM parses OXM TLVs; it fails on any that does not fit.
func splitOXM(b []byte) ([]OXM, error) {
	var out []OXM
	for len(b) > 0 {
		if len(b) < 4 {
			return out, fmt.Errorf("%d stray bytes after the match fields", len(b))
		}
		h := binary.BigEndian.Uint32(b)
		n := int(h & 0xff)
		if 4+n > len(b) {
			return out, fmt.Errorf("match field 0x%08x of %d bytes past the end", h, n)
		}
		o := OXM{Class: uint16(h >> 16), Field: uint8(h>>9) & 0x7f, Value: b[4 : 4+n]}
		if h&0x100 != 0 {
			if n%2 != 0 {
				return out, fmt.Errorf("masked match field 0x%08x of odd length", h)
			}
			o.Value, o.Mask = b[4:4+n/2], b[4+n/2:4+n]
		}
		out = append(out, o)
		b = b[4+n:]
	}
	return out, nil
}

// decodeMatch reads an ofp_match at b; n is its padded length.
func decodeMatch(b []byte) (fields []OXM, n int, err error) {
	if len(b) < 4 {
		return nil, 0, fmt.Errorf("match of %d bytes", len(b))
	}
	typ, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
	n = (l + 7) / 8 * 8
	if typ != 1 || l < 4 || n > len(b) {
		return nil, 0, fmt.Errorf("match of type %d and length %d in %d bytes", typ, l, len(b))
	}
	fields, err = splitOXM(b[4:l])
	return fields, n, err
}

func findOXM(fields []OXM, class uint16, field uint8) ([]byte, bool) {
	for _, f := range fields {
		if f.Class == class && f.Field == field && f.Mask == nil {
			return f.Value, true
		}
	}
	return nil, false
}

// PacketIn is OFPT_PACKET_IN: a packet the switch sends to the controller.
type PacketIn struct {
	BufferID uint32
	TotalLen uint16
	Reason   uint8 // OFPR_NO_MATCH 0, OFPR_ACTION 1, OFPR_INVALID_TTL 2
	TableID  uint8
	Cookie   uint64
	Match    []OXM  // the packet's metadata: in_port, tunnel fields, registers
	Data     []byte // the packet (TotalLen bytes, or fewer when truncated)
}

// InPort is the port the packet came in on.
func (p *PacketIn) InPort() (uint32, bool) {
	v, ok := findOXM(p.Match, OXMClassOpenFlow, 0)
	if !ok || len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// TunnelID is the tunnel key (VNI) the packet came with, if any.
func (p *PacketIn) TunnelID() (uint64, bool) {
	v, ok := findOXM(p.Match, OXMClassOpenFlow, 38)
	if !ok || len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// DecodePacketIn decodes an OpenFlow 1.3 packet-in.
func DecodePacketIn(frame []byte) (*PacketIn, error) {
	if len(frame) < 24 {
		return nil, fmt.Errorf("packet-in of %d bytes", len(frame))
	}
	p := &PacketIn{
		BufferID: binary.BigEndian.Uint32(frame[8:]),
		TotalLen: binary.BigEndian.Uint16(frame[12:]),
		Reason:   frame[14],
		TableID:  frame[15],
		Cookie:   binary.BigEndian.Uint64(frame[16:]),
	}
	fields, n, err := decodeMatch(frame[24:])
	if err != nil {
		return nil, fmt.Errorf("packet-in: %w", err)
	}
	p.Match = fields
	rest := frame[24+n:]
	if len(rest) < 2 {
		return nil, fmt.Errorf("packet-in: no room for the padding before the packet")
	}
	p.Data = rest[2:]
	return p, nil
}

// Port is an ofp_port: a switch port's description.
type Port struct {
	No         uint32
	HWAddr     net.HardwareAddr
	Name       string
	Config     uint32
	State      uint32
	Curr       uint32
	Advertised uint32
	Supported  uint32
	Peer       uint32
	CurrSpeed  uint32
	MaxSpeed   uint32
}

// PortStatus is OFPT_PORT_STATUS: a port was added, deleted or changed.
type PortStatus struct {
	Reason uint8 // OFPPR_ADD 0, OFPPR_DELETE 1, OFPPR_MODIFY 2
	Port   Port
}

// DecodePortStatus decodes an OpenFlow 1.3 port-status.
func DecodePortStatus(frame []byte) (*PortStatus, error) {
	if len(frame) < 16+64 {
		return nil, fmt.Errorf("port-status of %d bytes, want 80", len(frame))
	}
	b := frame[16:]
	u := func(i int) uint32 { return binary.BigEndian.Uint32(b[i:]) }
	return &PortStatus{Reason: frame[8], Port: Port{
		No:     u(0),
		HWAddr: net.HardwareAddr(append([]byte(nil), b[8:14]...)),
		Name:   strings.TrimRight(string(b[16:32]), "\x00"),
		Config: u(32), State: u(36), Curr: u(40), Advertised: u(44), Supported: u(48), Peer: u(52),
		CurrSpeed: u(56), MaxSpeed: u(60),
	}}, nil
}

// FlowRemoved is OFPT_FLOW_REMOVED: a flow with the send_flow_rem flag
// expired or was deleted.
type FlowRemoved struct {
	Cookie       uint64
	Priority     uint16
	Reason       uint8 // OFPRR_IDLE_TIMEOUT 0, HARD_TIMEOUT 1, DELETE 2, GROUP_DELETE 3
	TableID      uint8
	DurationSec  uint32
	DurationNSec uint32
	IdleTimeout  uint16
	HardTimeout  uint16
	PacketCount  uint64
	ByteCount    uint64
	Match        []OXM
}

// DecodeFlowRemoved decodes an OpenFlow 1.3 flow-removed.
func DecodeFlowRemoved(frame []byte) (*FlowRemoved, error) {
	if len(frame) < 48 {
		return nil, fmt.Errorf("flow-removed of %d bytes", len(frame))
	}
	b := frame[8:]
	f := &FlowRemoved{
		Cookie:       binary.BigEndian.Uint64(b),
		Priority:     binary.BigEndian.Uint16(b[8:]),
		Reason:       b[10],
		TableID:      b[11],
		DurationSec:  binary.BigEndian.Uint32(b[12:]),
		DurationNSec: binary.BigEndian.Uint32(b[16:]),
		IdleTimeout:  binary.BigEndian.Uint16(b[20:]),
		HardTimeout:  binary.BigEndian.Uint16(b[22:]),
		PacketCount:  binary.BigEndian.Uint64(b[24:]),
		ByteCount:    binary.BigEndian.Uint64(b[32:]),
	}
	fields, _, err := decodeMatch(frame[48:])
	if err != nil {
		return nil, fmt.Errorf("flow-removed: %w", err)
	}
	f.Match = fields
	return f, nil
}

package ofcodec

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// OXM/NXM classes.
const (
	classNXM0         = 0x0000
	classNXM1         = 0x0001
	classOpenFlow     = 0x8000
	classExperimenter = 0xffff
	// classEricOXM holds Ericsson's ND fields (OVS 2.11+), which have no
	// NXM or standard OXM header.
	classEricOXM = 0x1000
)

// Fields of classEricOXM.
const (
	ericNDReserved    = 1
	ericNDOptionsType = 2
)

// valueFormat is how ovs-ofctl prints a field's value (meta-flow's MFS_*).
type valueFormat int

const (
	fmtHex valueFormat = iota
	fmtDec
	fmtMAC
	fmtIPv4
	fmtIPv6
)

// field is one packet or metadata field as OVS names and encodes it.
type field struct {
	name   string // in subfields, as ovs-ofctl prints them: the NXM name where one exists
	mf     string // meta-flow name, as set_field and match text use it
	bits   int
	nxm    uint32 // NXM header (OpenFlow 1.0 encoding), 0 if none
	oxm    uint32 // OpenFlow 1.3 OXM header, 0 if none
	format valueFormat
}

func hdr(class uint16, f uint8, n int) uint32 { return uint32(class)<<16 | uint32(f)<<9 | uint32(n) }

// header is the one this package encodes the field with: NXM, which every
// OVS action takes, where the field has one.
func (f *field) header() uint32 {
	if f.nxm != 0 {
		return f.nxm
	}
	return f.oxm
}

func (f *field) bytes() int { return int(f.header() & 0xff) }

var fieldTable = func() []*field {
	t := []*field{
		{name: "NXM_OF_IN_PORT", mf: "in_port", bits: 16, nxm: hdr(classNXM0, 0, 2), format: fmtDec},
		{name: "OXM_OF_IN_PORT", mf: "in_port_oxm", bits: 32, oxm: hdr(classOpenFlow, 0, 4), format: fmtDec},
		{name: "OXM_OF_METADATA", mf: "metadata", bits: 64, oxm: hdr(classOpenFlow, 2, 8), format: fmtHex},
		{name: "NXM_OF_ETH_DST", mf: "eth_dst", bits: 48, nxm: hdr(classNXM0, 1, 6), oxm: hdr(classOpenFlow, 3, 6), format: fmtMAC},
		{name: "NXM_OF_ETH_SRC", mf: "eth_src", bits: 48, nxm: hdr(classNXM0, 2, 6), oxm: hdr(classOpenFlow, 4, 6), format: fmtMAC},
		{name: "NXM_OF_ETH_TYPE", mf: "eth_type", bits: 16, nxm: hdr(classNXM0, 3, 2), oxm: hdr(classOpenFlow, 5, 2), format: fmtHex},
		{name: "NXM_OF_VLAN_TCI", mf: "vlan_tci", bits: 16, nxm: hdr(classNXM0, 4, 2), format: fmtHex},
		{name: "OXM_OF_VLAN_VID", mf: "vlan_vid", bits: 12, oxm: hdr(classOpenFlow, 6, 2), format: fmtDec},
		{name: "OXM_OF_VLAN_PCP", mf: "vlan_pcp", bits: 3, oxm: hdr(classOpenFlow, 7, 1), format: fmtDec},
		{name: "NXM_OF_IP_TOS", mf: "nw_tos", bits: 8, nxm: hdr(classNXM0, 5, 1), format: fmtDec},
		{name: "OXM_OF_IP_DSCP", mf: "ip_dscp", bits: 6, oxm: hdr(classOpenFlow, 8, 1), format: fmtDec},
		{name: "NXM_NX_IP_ECN", mf: "nw_ecn", bits: 2, nxm: hdr(classNXM1, 28, 1), oxm: hdr(classOpenFlow, 9, 1), format: fmtDec},
		{name: "NXM_OF_IP_PROTO", mf: "nw_proto", bits: 8, nxm: hdr(classNXM0, 6, 1), oxm: hdr(classOpenFlow, 10, 1), format: fmtDec},
		{name: "NXM_OF_IP_SRC", mf: "ip_src", bits: 32, nxm: hdr(classNXM0, 7, 4), oxm: hdr(classOpenFlow, 11, 4), format: fmtIPv4},
		{name: "NXM_OF_IP_DST", mf: "ip_dst", bits: 32, nxm: hdr(classNXM0, 8, 4), oxm: hdr(classOpenFlow, 12, 4), format: fmtIPv4},
		{name: "NXM_OF_TCP_SRC", mf: "tcp_src", bits: 16, nxm: hdr(classNXM0, 9, 2), oxm: hdr(classOpenFlow, 13, 2), format: fmtDec},
		{name: "NXM_OF_TCP_DST", mf: "tcp_dst", bits: 16, nxm: hdr(classNXM0, 10, 2), oxm: hdr(classOpenFlow, 14, 2), format: fmtDec},
		{name: "NXM_OF_UDP_SRC", mf: "udp_src", bits: 16, nxm: hdr(classNXM0, 11, 2), oxm: hdr(classOpenFlow, 15, 2), format: fmtDec},
		{name: "NXM_OF_UDP_DST", mf: "udp_dst", bits: 16, nxm: hdr(classNXM0, 12, 2), oxm: hdr(classOpenFlow, 16, 2), format: fmtDec},
		{name: "OXM_OF_SCTP_SRC", mf: "sctp_src", bits: 16, oxm: hdr(classOpenFlow, 17, 2), format: fmtDec},
		{name: "OXM_OF_SCTP_DST", mf: "sctp_dst", bits: 16, oxm: hdr(classOpenFlow, 18, 2), format: fmtDec},
		{name: "NXM_OF_ICMP_TYPE", mf: "icmp_type", bits: 8, nxm: hdr(classNXM0, 13, 1), oxm: hdr(classOpenFlow, 19, 1), format: fmtDec},
		{name: "NXM_OF_ICMP_CODE", mf: "icmp_code", bits: 8, nxm: hdr(classNXM0, 14, 1), oxm: hdr(classOpenFlow, 20, 1), format: fmtDec},
		{name: "NXM_OF_ARP_OP", mf: "arp_op", bits: 16, nxm: hdr(classNXM0, 15, 2), oxm: hdr(classOpenFlow, 21, 2), format: fmtDec},
		{name: "NXM_OF_ARP_SPA", mf: "arp_spa", bits: 32, nxm: hdr(classNXM0, 16, 4), oxm: hdr(classOpenFlow, 22, 4), format: fmtIPv4},
		{name: "NXM_OF_ARP_TPA", mf: "arp_tpa", bits: 32, nxm: hdr(classNXM0, 17, 4), oxm: hdr(classOpenFlow, 23, 4), format: fmtIPv4},
		{name: "NXM_NX_ARP_SHA", mf: "arp_sha", bits: 48, nxm: hdr(classNXM1, 17, 6), oxm: hdr(classOpenFlow, 24, 6), format: fmtMAC},
		{name: "NXM_NX_ARP_THA", mf: "arp_tha", bits: 48, nxm: hdr(classNXM1, 18, 6), oxm: hdr(classOpenFlow, 25, 6), format: fmtMAC},
		{name: "NXM_NX_IPV6_SRC", mf: "ipv6_src", bits: 128, nxm: hdr(classNXM1, 19, 16), oxm: hdr(classOpenFlow, 26, 16), format: fmtIPv6},
		{name: "NXM_NX_IPV6_DST", mf: "ipv6_dst", bits: 128, nxm: hdr(classNXM1, 20, 16), oxm: hdr(classOpenFlow, 27, 16), format: fmtIPv6},
		{name: "NXM_NX_IPV6_LABEL", mf: "ipv6_label", bits: 20, nxm: hdr(classNXM1, 27, 4), oxm: hdr(classOpenFlow, 28, 4), format: fmtHex},
		{name: "NXM_NX_ICMPV6_TYPE", mf: "icmpv6_type", bits: 8, nxm: hdr(classNXM1, 21, 1), oxm: hdr(classOpenFlow, 29, 1), format: fmtDec},
		{name: "NXM_NX_ICMPV6_CODE", mf: "icmpv6_code", bits: 8, nxm: hdr(classNXM1, 22, 1), oxm: hdr(classOpenFlow, 30, 1), format: fmtDec},
		{name: "NXM_NX_ND_TARGET", mf: "nd_target", bits: 128, nxm: hdr(classNXM1, 23, 16), oxm: hdr(classOpenFlow, 31, 16), format: fmtIPv6},
		{name: "NXM_NX_ND_SLL", mf: "nd_sll", bits: 48, nxm: hdr(classNXM1, 24, 6), oxm: hdr(classOpenFlow, 32, 6), format: fmtMAC},
		{name: "NXM_NX_ND_TLL", mf: "nd_tll", bits: 48, nxm: hdr(classNXM1, 25, 6), oxm: hdr(classOpenFlow, 33, 6), format: fmtMAC},
		{name: "OXM_OF_MPLS_LABEL", mf: "mpls_label", bits: 20, oxm: hdr(classOpenFlow, 34, 4), format: fmtDec},
		{name: "OXM_OF_MPLS_TC", mf: "mpls_tc", bits: 3, oxm: hdr(classOpenFlow, 35, 1), format: fmtDec},
		{name: "OXM_OF_MPLS_BOS", mf: "mpls_bos", bits: 1, oxm: hdr(classOpenFlow, 36, 1), format: fmtDec},
		{name: "NXM_NX_TUN_ID", mf: "tun_id", bits: 64, nxm: hdr(classNXM1, 16, 8), oxm: hdr(classOpenFlow, 38, 8), format: fmtHex},
		{name: "NXM_NX_IP_FRAG", mf: "nw_frag", bits: 2, nxm: hdr(classNXM1, 26, 1), format: fmtHex},
		{name: "NXM_NX_IP_TTL", mf: "nw_ttl", bits: 8, nxm: hdr(classNXM1, 29, 1), format: fmtDec},
		{name: "NXM_NX_TUN_IPV4_SRC", mf: "tun_src", bits: 32, nxm: hdr(classNXM1, 31, 4), format: fmtIPv4},
		{name: "NXM_NX_TUN_IPV4_DST", mf: "tun_dst", bits: 32, nxm: hdr(classNXM1, 32, 4), format: fmtIPv4},
		{name: "NXM_NX_PKT_MARK", mf: "pkt_mark", bits: 32, nxm: hdr(classNXM1, 33, 4), format: fmtHex},
		{name: "ERICOXM_OF_ICMPV6_ND_RESERVED", mf: "nd_reserved", bits: 32, oxm: hdr(classEricOXM, ericNDReserved, 4), format: fmtDec},
		{name: "ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE", mf: "nd_options_type", bits: 8, oxm: hdr(classEricOXM, ericNDOptionsType, 1), format: fmtDec},
	}
	for i := 0; i < 16; i++ {
		t = append(t, &field{name: fmt.Sprintf("NXM_NX_REG%d", i), mf: fmt.Sprintf("reg%d", i), bits: 32,
			nxm: hdr(classNXM1, uint8(i), 4), format: fmtHex})
	}
	return t
}()

var (
	fieldByHeader = map[uint32]*field{} // header>>9: class and field, without mask bit and length
	fieldByName   = map[string]*field{}
)

func init() {
	for _, f := range fieldTable {
		for _, h := range []uint32{f.nxm, f.oxm} {
			if h != 0 {
				fieldByHeader[h>>9] = f
			}
		}
		fieldByName[f.name] = f
	}
}

// lookupHeader finds the field of an NXM/OXM header (mask bit and length
// ignored); nil if unknown.
func lookupHeader(h uint32) *field { return fieldByHeader[h>>9] }

// Subfield is a bit range of a field, as move, load and learn name it:
// NAME[] for the whole field, NAME[i] for one bit, NAME[i..j] otherwise.
type Subfield struct {
	Field string // as ovs-ofctl prints it, e.g. NXM_NX_TUN_ID
	Ofs   int
	Bits  int
	f     *field // nil for a header this package does not know
}

// String renders the subfield as ovs-ofctl does.
func (s Subfield) String() string {
	switch {
	case s.f != nil && s.Ofs == 0 && s.Bits == s.f.bits:
		return s.Field + "[]"
	case s.Bits == 1:
		return fmt.Sprintf("%s[%d]", s.Field, s.Ofs)
	}
	return fmt.Sprintf("%s[%d..%d]", s.Field, s.Ofs, s.Ofs+s.Bits-1)
}

// Whole reports whether the subfield is its entire field.
func (s Subfield) Whole() bool { return s.f != nil && s.Ofs == 0 && s.Bits == s.f.bits }

// subfieldOf builds the subfield of a header read from the wire.
func subfieldOf(h uint32, ofs, bits int) Subfield {
	if f := lookupHeader(h); f != nil {
		return Subfield{Field: f.name, Ofs: ofs, Bits: bits, f: f}
	}
	return Subfield{Field: fmt.Sprintf("unknown_field_0x%08x", h), Ofs: ofs, Bits: bits}
}

// ParseSubfield reads NAME[], NAME[i] or NAME[i..j], NAME as ovs-ofctl
// prints it in subfields (NXM_NX_TUN_ID, OXM_OF_IN_PORT, ...).
func ParseSubfield(s string) (Subfield, error) {
	name, rng, ok := strings.Cut(s, "[")
	if !ok || !strings.HasSuffix(rng, "]") {
		return Subfield{}, fmt.Errorf("subfield %q: want NAME[], NAME[i] or NAME[i..j]", s)
	}
	f := fieldByName[name]
	if f == nil {
		return Subfield{}, fmt.Errorf("subfield %q: unknown field %s", s, name)
	}
	rng = strings.TrimSuffix(rng, "]")
	sf := Subfield{Field: name, f: f}
	if rng == "" {
		sf.Bits = f.bits
		return sf, nil
	}
	lo, hi, isRange := strings.Cut(rng, "..")
	a, err1 := strconv.Atoi(lo)
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || a < 0 || b < a || b >= f.bits {
		return Subfield{}, fmt.Errorf("subfield %q: bad bit range for a %d-bit field", s, f.bits)
	}
	sf.Ofs, sf.Bits = a, b-a+1
	return sf, nil
}

// cHex renders like C's %#x: "0" for zero, as ovs-ofctl prints.
func cHex(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

// formatValue renders a field value (big-endian bytes) as ovs-ofctl does.
func formatValue(f *field, b []byte) string {
	format := fmtHex
	if f != nil {
		format = f.format
	}
	switch {
	case format == fmtMAC && len(b) == 6:
		return net.HardwareAddr(b).String()
	case format == fmtIPv4 && len(b) == 4:
		return netip.AddrFrom4([4]byte(b)).String()
	case format == fmtIPv6 && len(b) == 16:
		return netip.AddrFrom16([16]byte(b)).String()
	case format == fmtDec && len(b) <= 8:
		return strconv.FormatUint(beUint(b), 10)
	case len(b) <= 8:
		return cHex(beUint(b))
	}
	return "0x" + fmt.Sprintf("%x", b)
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// putHex renders bytes like OVS's ds_put_hex: 0x and the value without
// leading zero bytes, or "0".
func putHex(b []byte) string {
	for i, c := range b {
		if c != 0 {
			return fmt.Sprintf("0x%x%x", c, b[i+1:])
		}
	}
	return "0"
}

func u16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func u32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func u64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

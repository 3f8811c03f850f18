package controller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Frame is what the controller needs from a frame a switch reported: the
// Ethernet addresses, the 802.1Q VID (br-int tags frames with their
// network's local VLAN before br-tun sees them) and, for ARP and IPv6
// neighbour discovery, the sender.
type Frame struct {
	Dst, Src  net.HardwareAddr
	Tagged    bool
	VLAN      uint16 // VID of the outer 802.1Q header, when Tagged
	EtherType uint16 // after the VLAN header
	// ARP is set for an Ethernet/IPv4 ARP packet.
	ARP *ARP
	// ND is set for an IPv6 neighbour solicitation or advertisement.
	ND *ND
}

// ND is an IPv6 neighbour solicitation or advertisement (RFC 4861): its
// type, IPv6 source, target and link-layer address option.
type ND struct {
	Type   uint8 // 135 solicitation, 136 advertisement
	Src    netip.Addr
	Target netip.Addr
	// LinkAddr is the source (solicitation) or target (advertisement)
	// link-layer address option; nil when the message has none.
	LinkAddr net.HardwareAddr
}

// ARP is an Ethernet/IPv4 ARP packet's operation and addresses.
type ARP struct {
	Op       uint16
	SHA, THA net.HardwareAddr
	SPA, TPA netip.Addr
}

// Frame decoding errors.
var (
	errShortFrame = errors.New("frame shorter than an Ethernet header")
	errShortVLAN  = errors.New("802.1Q header cut short")
)

// DecodeFrame reads the Ethernet header, one 802.1Q header and an ARP or
// IPv6 neighbour discovery payload from data. It copies what it keeps (data
// may be reused), reads nothing past len(data) and never panics: a frame
// comes from a VM, which may send anything. A truncated payload is not an
// error (the frame is still a frame); Frame.ARP or Frame.ND then stays nil.
func DecodeFrame(data []byte) (Frame, error) {
	var f Frame
	if len(data) < 14 {
		return f, fmt.Errorf("%w (%d bytes)", errShortFrame, len(data))
	}
	f.Dst = net.HardwareAddr(append([]byte(nil), data[0:6]...))
	f.Src = net.HardwareAddr(append([]byte(nil), data[6:12]...))
	f.EtherType = binary.BigEndian.Uint16(data[12:])
	rest := data[14:]
	if f.EtherType == 0x8100 {
		if len(rest) < 4 {
			return f, errShortVLAN
		}
		f.Tagged = true
		f.VLAN = binary.BigEndian.Uint16(rest) & 0x0fff
		f.EtherType = binary.BigEndian.Uint16(rest[2:])
		rest = rest[4:]
	}
	switch f.EtherType {
	case 0x0806:
		f.ARP = decodeARP(rest)
	case 0x86dd:
		f.ND = decodeND(rest)
	}
	return f, nil
}

// decodeARP reads an Ethernet/IPv4 ARP packet; nil for anything else.
func decodeARP(b []byte) *ARP {
	if len(b) < 28 || binary.BigEndian.Uint16(b) != 1 || binary.BigEndian.Uint16(b[2:]) != 0x0800 || b[4] != 6 || b[5] != 4 {
		return nil
	}
	return &ARP{
		Op:  binary.BigEndian.Uint16(b[6:]),
		SHA: net.HardwareAddr(append([]byte(nil), b[8:14]...)),
		SPA: netip.AddrFrom4([4]byte(b[14:18])),
		THA: net.HardwareAddr(append([]byte(nil), b[18:24]...)),
		TPA: netip.AddrFrom4([4]byte(b[24:28])),
	}
}

// Lengths of what decodeND reads: the IPv6 header, an NS or NA up to its
// options, an option's length unit.
const (
	ipv6HeaderLen = 40
	ndFixedLen    = 24
	ndOptionUnit  = 8
)

// decodeND reads an IPv6 neighbour solicitation or advertisement without
// extension headers and with hop limit 255 (RFC 4861 drops any other);
// nil for anything else.
func decodeND(b []byte) *ND {
	if len(b) < ipv6HeaderLen+ndFixedLen || b[0]>>4 != 6 || b[6] != 58 || b[7] != 255 {
		return nil
	}
	icmp := b[ipv6HeaderLen:]
	if t := icmp[0]; (t != 135 && t != 136) || icmp[1] != 0 {
		return nil
	}
	nd := &ND{Type: icmp[0], Src: netip.AddrFrom16([16]byte(b[8:24])), Target: netip.AddrFrom16([16]byte(icmp[8:24]))}
	want := byte(1) // the source link-layer address option
	if nd.Type == 136 {
		want = 2 // the target link-layer address option
	}
	for opts := icmp[ndFixedLen:]; len(opts) >= 2 && opts[1] != 0; {
		n := int(opts[1]) * ndOptionUnit
		if n > len(opts) {
			break
		}
		if opts[0] == want && n == ndOptionUnit {
			nd.LinkAddr = net.HardwareAddr(append([]byte(nil), opts[2:8]...))
			break
		}
		opts = opts[n:]
	}
	return nd
}

// SenderIP is the address the frame's source announces for itself: the
// sender of an ARP request or reply whose hardware address is the frame's
// source; the source of a neighbour solicitation, or the target of an
// advertisement, whose link-layer address option (if any) is the frame's
// source. Probes and DAD (unspecified sender), and multicast, broadcast or
// loopback addresses announce nothing.
func (f Frame) SenderIP() (netip.Addr, bool) {
	var ip netip.Addr
	switch a, nd := f.ARP, f.ND; {
	case a != nil:
		if (a.Op != 1 && a.Op != 2) || string(a.SHA) != string(f.Src) {
			return netip.Addr{}, false
		}
		ip = a.SPA
	case nd != nil:
		if nd.LinkAddr != nil && string(nd.LinkAddr) != string(f.Src) {
			return netip.Addr{}, false
		}
		ip = nd.Src
		if nd.Type == 136 {
			// Without the option, only an advertisement sent from its
			// target is surely the target's own.
			if nd.LinkAddr == nil && nd.Src != nd.Target {
				return netip.Addr{}, false
			}
			ip = nd.Target
		}
		if ip.Is4In6() {
			return netip.Addr{}, false
		}
	default:
		return netip.Addr{}, false
	}
	if ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || ip.IsLoopback() {
		return netip.Addr{}, false
	}
	return ip, true
}

// UnicastSource reports whether the frame's source is an address a host can
// own: not a group address and not all zeros.
func (f Frame) UnicastSource() bool {
	if len(f.Src) != 6 || f.Src[0]&1 != 0 {
		return false
	}
	for _, b := range f.Src {
		if b != 0 {
			return true
		}
	}
	return false
}

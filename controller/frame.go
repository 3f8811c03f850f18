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
// network's local VLAN before br-tun sees them) and, for ARP, the sender.
type Frame struct {
	Dst, Src  net.HardwareAddr
	Tagged    bool
	VLAN      uint16 // VID of the outer 802.1Q header, when Tagged
	EtherType uint16 // after the VLAN header
	// ARP is set for an Ethernet/IPv4 ARP packet.
	ARP *ARP
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

// DecodeFrame reads the Ethernet header, one 802.1Q header and an ARP
// payload from data. It copies what it keeps (data may be reused), reads
// nothing past len(data) and never panics: a frame comes from a VM, which
// may send anything. A truncated ARP payload is not an error (the frame is
// still a frame); Frame.ARP then stays nil.
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
	if f.EtherType == 0x0806 {
		f.ARP = decodeARP(rest)
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

// SenderIP is the IPv4 address the frame's source announces for itself: the
// sender of an ARP request or reply whose hardware address is the frame's
// source. Probes (sender 0.0.0.0) and non-unicast senders announce nothing.
func (f Frame) SenderIP() (netip.Addr, bool) {
	a := f.ARP
	if a == nil || (a.Op != 1 && a.Op != 2) || string(a.SHA) != string(f.Src) {
		return netip.Addr{}, false
	}
	ip := a.SPA
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

package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// vxlanPort is the UDP port of the labs' tunnels (the topology default).
const vxlanPort = 4789

// countVXLAN reads a pcap file of Ethernet frames and counts the VXLAN
// frames in it (IPv4, UDP to vxlanPort), the ARP requests and replies they
// carry, and those whose inner destination is a group (broadcast or
// multicast) address.
func countVXLAN(path string) (underlayCount, error) {
	var c underlayCount
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if len(b) < 24 {
		return c, fmt.Errorf("%s: %d bytes, too short for a pcap file", path, len(b))
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return c, fmt.Errorf("%s: not a pcap file", path)
	}
	if lt := bo.Uint32(b[20:]); lt != 1 {
		return c, fmt.Errorf("%s: link type %d, want Ethernet (1)", path, lt)
	}
	for r := b[24:]; len(r) > 0; {
		if len(r) < 16 {
			return c, fmt.Errorf("%s: %w in a record header", path, io.ErrUnexpectedEOF)
		}
		n := int(bo.Uint32(r[8:]))
		if 16+n > len(r) {
			return c, fmt.Errorf("%s: %w in a %d-byte record", path, io.ErrUnexpectedEOF, n)
		}
		countFrame(r[16:16+n], &c)
		r = r[16+n:]
	}
	return c, nil
}

// countFrame adds one captured frame to c if it is a VXLAN frame.
func countFrame(f []byte, c *underlayCount) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || ip[9] != 17 || len(ip) < ihl+8 {
		return
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[2:]) != vxlanPort || len(udp) < 8+8 {
		return
	}
	c.Frames++
	inner := udp[16:] // after the UDP and VXLAN headers
	if len(inner) < 14 {
		return
	}
	if inner[0]&1 != 0 {
		c.Broadcast++
	}
	typ, rest := binary.BigEndian.Uint16(inner[12:]), inner[14:]
	if typ == 0x8100 && len(rest) >= 4 {
		typ, rest = binary.BigEndian.Uint16(rest[2:]), rest[4:]
	}
	if typ != 0x0806 || len(rest) < 8 {
		return
	}
	switch binary.BigEndian.Uint16(rest[6:]) {
	case 1:
		c.ARPRequests++
	case 2:
		c.ARPReplies++
	}
}

package integration

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// Frames a VM sends that no tool on the machine sends on demand (no arping,
// ndisc6 or keepalived): gratuitous ARP and unsolicited neighbour
// advertisements, written as keepalived writes them, sent from inside the
// VM's namespace.

// sendFrames sends raw Ethernet frames on dev in namespace ns. The thread
// that enters ns comes back out before it is unlocked (sendFramesFrom): a
// thread left in a lab's namespace makes the test process look like part of
// the lab, and lab down ends everything it finds there.
func sendFrames(t testing.TB, ns, dev string, frames ...[]byte) {
	t.Helper()
	sendFramesFrom(t, ns, dev, frames...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// garpFrame is the gratuitous ARP request keepalived (and a migrating VM)
// broadcasts for ip from mac: sender and target ip, padded to 60 bytes.
func garpFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	b = append(b, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	b = append(append(b, mac...), ip.AsSlice()...)
	b = append(append(b, 0, 0, 0, 0, 0, 0), ip.AsSlice()...)
	return append(b, make([]byte, 60-len(b))...)
}

// unsolicitedNA is the unsolicited neighbour advertisement keepalived sends
// for ip from mac: to all nodes (ff02::1), override flag set, with the
// target link-layer address option.
func unsolicitedNA(mac net.HardwareAddr, ip netip.Addr) []byte {
	all := netip.MustParseAddr("ff02::1")
	icmp := []byte{136, 0, 0, 0, 0x20, 0, 0, 0} // type, code, checksum, flags (O)
	icmp = append(append(icmp, ip.AsSlice()...), 2, 1)
	icmp = append(icmp, mac...)
	sum := icmpv6Checksum(ip, all, icmp)
	binary.BigEndian.PutUint16(icmp[2:], sum)
	b := append([]byte{0x33, 0x33, 0, 0, 0, 1}, mac...)
	b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(icmp)))
	b = append(b, 58, 255)
	b = append(append(b, ip.AsSlice()...), all.AsSlice()...)
	return append(b, icmp...)
}

// icmpv6Checksum is the ICMPv6 checksum of msg (checksum field zero) sent
// from src to dst: the IPv6 pseudo-header's and msg's one's complement sum.
func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var pseudo []byte
	pseudo = append(append(pseudo, src.AsSlice()...), dst.AsSlice()...)
	pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(msg)))
	pseudo = append(pseudo, 0, 0, 0, 58)
	var sum uint32
	for _, part := range [][]byte{pseudo, msg} {
		for i := 0; i+1 < len(part); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(part[i:]))
		}
		if len(part)%2 == 1 {
			sum += uint32(part[len(part)-1]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// rarpFrame is the RARP "request reverse" (op 3) a hypervisor broadcasts
// for a migrated VM that has no address to announce (QEMU's announce):
// sender and target hardware address mac, protocol addresses zero.
func rarpFrame(mac net.HardwareAddr) []byte {
	b := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	b = append(b, 0x80, 0x35, 0, 1, 8, 0, 6, 4, 0, 3)
	b = append(append(b, mac...), 0, 0, 0, 0)
	b = append(append(b, mac...), 0, 0, 0, 0)
	return append(b, make([]byte, 60-len(b))...)
}

// udpFrame is a plain IPv4 UDP datagram (port 9, discard, checksum zero)
// from srcMAC/src to dstMAC/dst: ordinary unicast traffic, no ARP.
func udpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr) []byte {
	udp := []byte{0x30, 0x39, 0, 9, 0, 12, 0, 0, 'p', 'i', 'n', 'g'}
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	b := append(append(append([]byte{}, dstMAC...), srcMAC...), 0x08, 0x00)
	b = append(append(b, ip...), udp...)
	return append(b, make([]byte, max(0, 60-len(b)))...)
}

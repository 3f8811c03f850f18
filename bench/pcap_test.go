package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// vxlanFrame builds an Ethernet/IPv4/UDP frame to dport whose payload is a VXLAN
// header and inner.
func vxlanFrame(dport uint16, inner []byte) []byte {
	f := make([]byte, 14+20+8+8)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	f[14] = 0x45
	f[14+9] = 17
	binary.BigEndian.PutUint16(f[34+2:], dport)
	f[42] = 0x08 // VXLAN I flag
	return append(f, inner...)
}

func innerARP(dst byte, op uint16, tagged bool) []byte {
	b := []byte{dst, dst, dst, dst, dst, dst, 0x52, 0x54, 0, 0, 0, 1}
	if tagged {
		b = append(b, 0x81, 0, 0, 1)
	}
	b = append(b, 0x08, 0x06, 0, 1, 8, 0, 6, 4)
	return binary.BigEndian.AppendUint16(b, op)
}

func writePcap(t *testing.T, frames ...[]byte) string {
	t.Helper()
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(b[4:], 2)
	binary.LittleEndian.PutUint16(b[6:], 4)
	binary.LittleEndian.PutUint32(b[16:], 65535)
	binary.LittleEndian.PutUint32(b[20:], 1)
	for _, f := range frames {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(f)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(f)))
		b = append(append(b, rec...), f...)
	}
	p := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCountVXLAN(t *testing.T) {
	p := writePcap(t,
		vxlanFrame(4789, innerARP(0xff, 1, false)), // broadcast ARP request
		vxlanFrame(4789, innerARP(0xff, 1, true)),  // the same, 802.1Q-tagged inside
		vxlanFrame(4789, innerARP(0x52, 2, false)), // unicast ARP reply
		vxlanFrame(4789, []byte{0x52, 0, 0, 0, 0, 2, 0x52, 0, 0, 0, 0, 1, 0x08, 0x00}),
		vxlanFrame(53, innerARP(0xff, 1, false)), // not VXLAN
		[]byte{1, 2, 3},                          // runt
	)
	c, err := countVXLAN(p)
	if err != nil {
		t.Fatal(err)
	}
	want := underlayCount{Frames: 4, ARPRequests: 2, ARPReplies: 1, Broadcast: 2}
	if c != want {
		t.Errorf("counted %+v, want %+v", c, want)
	}
	if _, err := countVXLAN(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file gave no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.pcap")
	os.WriteFile(bad, make([]byte, 40), 0o644)
	if _, err := countVXLAN(bad); err == nil {
		t.Error("a file without pcap magic gave no error")
	}
}

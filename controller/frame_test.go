package controller

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// arpFrame is an 802.1Q-tagged ARP request from 52:54:00:00:00:07
// (10.1.0.7) for 10.1.0.1, on VLAN 5.
func arpFrame(t testing.TB) []byte {
	t.Helper()
	b, err := hex.DecodeString("ffffffffffff" + "525400000007" + "8100" + "0005" + "0806" +
		"0001" + "0800" + "06" + "04" + "0001" + "525400000007" + "0a010007" + "000000000000" + "0a010001")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFrame(t *testing.T) {
	f, err := DecodeFrame(arpFrame(t))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Tagged || f.VLAN != 5 || f.EtherType != 0x0806 || f.Src.String() != "52:54:00:00:00:07" || f.Dst.String() != "ff:ff:ff:ff:ff:ff" {
		t.Fatalf("frame: %+v", f)
	}
	if ip, ok := f.SenderIP(); !ok || ip != netip.MustParseAddr("10.1.0.7") {
		t.Fatalf("sender IP %v %v", ip, ok)
	}
	if !f.UnicastSource() {
		t.Fatal("unicast source not recognised")
	}

	// A probe (sender 0.0.0.0) and an ARP whose sender is not the frame's
	// source announce nothing.
	probe := arpFrame(t)
	copy(probe[32:36], []byte{0, 0, 0, 0})
	if f, _ := DecodeFrame(probe); f.ARP == nil {
		t.Fatal("probe not decoded as ARP")
	} else if _, ok := f.SenderIP(); ok {
		t.Fatal("probe announced an IP")
	}
	proxy := arpFrame(t)
	proxy[26] = 0x99
	if f, _ := DecodeFrame(proxy); func() bool { _, ok := f.SenderIP(); return ok }() {
		t.Fatal("ARP from another sender announced an IP")
	}

	// Untagged IPv4; a truncated ARP; a group source; short frames.
	untagged, _ := hex.DecodeString("0a0000000001" + "525400000007" + "0800" + "4500")
	if f, err := DecodeFrame(untagged); err != nil || f.Tagged || f.EtherType != 0x0800 {
		t.Fatalf("untagged: %+v %v", f, err)
	}
	if f, err := DecodeFrame(arpFrame(t)[:30]); err != nil || f.ARP != nil {
		t.Fatalf("truncated ARP: %+v %v", f, err)
	}
	group := arpFrame(t)
	group[6] = 0x01
	if f, _ := DecodeFrame(group); f.UnicastSource() {
		t.Fatal("group source taken for unicast")
	}
	zero := arpFrame(t)
	copy(zero[6:12], make([]byte, 6))
	if f, _ := DecodeFrame(zero); f.UnicastSource() {
		t.Fatal("zero source taken for unicast")
	}
	if _, err := DecodeFrame(arpFrame(t)[:13]); err == nil {
		t.Fatal("13-byte frame decoded")
	}
	if _, err := DecodeFrame(arpFrame(t)[:16]); err == nil {
		t.Fatal("frame with half a VLAN header decoded")
	}
}

// packetIn builds an OpenFlow 1.3 packet-in as OVS sends one from br-tun's
// table 1 (reason action, in_port 1) carrying data.
func packetIn(cookie uint64, inPort uint32, data []byte) []byte {
	match := []byte{0, 1, 0, 12, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0} // OXM in_port, padded to 16
	binary.BigEndian.PutUint32(match[8:], inPort)
	b := make([]byte, 24, 24+len(match)+2+len(data))
	b[0], b[1] = ofconn.Version, ofconn.TypePacketIn
	binary.BigEndian.PutUint32(b[4:], 7)
	binary.BigEndian.PutUint32(b[8:], 0xffffffff)
	binary.BigEndian.PutUint16(b[12:], uint16(len(data)))
	b[14], b[15] = 1, 1
	binary.BigEndian.PutUint64(b[16:], cookie)
	b = append(b, match...)
	b = append(b, 0, 0)
	b = append(b, data...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func TestPacketInFrame(t *testing.T) {
	msg := ofconn.Decode(packetIn(0x7678<<48|1, 1, arpFrame(t)))
	pi, ok := msg.Parsed.(*ofconn.PacketIn)
	if !ok {
		t.Fatalf("not decoded: %v", msg.ParseErr)
	}
	if port, _ := pi.InPort(); port != 1 || pi.TableID != 1 || pi.Reason != 1 {
		t.Fatalf("packet-in %+v", pi)
	}
	f, err := DecodeFrame(pi.Data)
	if err != nil || f.VLAN != 5 {
		t.Fatalf("frame %+v %v", f, err)
	}
}

// FuzzDecodePacketIn feeds anything a switch could send as a packet-in
// through the same path the controller uses: ofconn.Decode, then
// DecodeFrame and SenderIP. None may panic, read out of bounds or keep a
// reference into the buffer it was given.
func FuzzDecodePacketIn(f *testing.F) {
	f.Add(packetIn(0x7678<<48|1, 1, arpFrame(f)))
	f.Add(packetIn(0, 10, arpFrame(f)[:20]))
	f.Add(packetIn(1, 1, nil))
	f.Add([]byte{4, 10, 0, 8, 0, 0, 0, 1})
	f.Add(arpFrame(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		frame := bytes.Clone(b)
		if len(frame) >= 4 {
			binary.BigEndian.PutUint16(frame[2:], uint16(len(frame)))
		}
		msg := ofconn.Decode(frame)
		for _, data := range [][]byte{b, packetInData(msg)} {
			if data == nil {
				continue
			}
			buf := bytes.Clone(data)
			fr, err := DecodeFrame(buf)
			if err != nil {
				continue
			}
			ip, _ := fr.SenderIP()
			fr.UnicastSource()
			before := fr.Src.String() + fr.Dst.String() + ip.String()
			for i := range buf {
				buf[i] ^= 0xff // the decoded frame must not share the buffer
			}
			if after := fr.Src.String() + fr.Dst.String() + ip.String(); after != before {
				t.Fatalf("decoded frame changed with its buffer: %s -> %s", before, after)
			}
		}
	})
}

func packetInData(m ofconn.Message) []byte {
	if pi, ok := m.Parsed.(*ofconn.PacketIn); ok {
		pi.InPort()
		pi.TunnelID()
		return pi.Data
	}
	return nil
}

// FuzzReadFrame feeds a byte stream to the connection's message reader and
// decoder: every frame it returns must be whole (its length field) and
// decoding must not panic.
func FuzzReadFrame(f *testing.F) {
	f.Add(packetIn(1, 1, arpFrame(f)))
	f.Add(append(packetIn(1, 1, nil), 4, 0, 0, 8, 0, 0, 0, 0))
	f.Add([]byte{4, 19, 0, 16, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{4, 12, 0, 7})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bufio.NewReader(bytes.NewReader(stream))
		for range 100 {
			frame, err := ofconn.ReadFrame(r)
			if err != nil {
				return
			}
			if n := int(binary.BigEndian.Uint16(frame[2:])); n != len(frame) {
				t.Fatalf("frame of %d bytes announces %d", len(frame), n)
			}
			m := ofconn.Decode(frame)
			packetInData(m)
			if m.Type == ofconn.TypeMultipartReply {
				openflow.DecodePortDescReply(frame)
				openflow.DecodeFlowStatsCounters(frame)
			}
			if m.Type == ofconn.TypeError {
				if e, err := ofconn.DecodeError(frame); err == nil {
					_ = e.Error()
				}
			}
		}
	})
}

package controller

import (
	"net"
	"net/netip"
	"testing"
)

// ndFrame builds an 802.1Q-tagged (VLAN 5) neighbour solicitation (typ 135)
// or advertisement (136) from MAC src and IPv6 ipSrc about target, with a
// link-layer address option carrying opt (none when nil).
func ndFrame(typ uint8, src string, ipSrc, target string, opt net.HardwareAddr) []byte {
	return ndFrameIn(5, typ, src, ipSrc, target, opt)
}

// ndFrameIn is ndFrame tagged with vlan.
func ndFrameIn(vlan uint16, typ uint8, src string, ipSrc, target string, opt net.HardwareAddr) []byte {
	mac, _ := net.ParseMAC(src)
	b := append([]byte{0x33, 0x33, 0xff, 0, 0, 1}, mac...)
	b = append(b, 0x81, 0x00, byte(vlan>>8)&0x0f, byte(vlan), 0x86, 0xdd)
	payload := 24
	if opt != nil {
		payload += 8
	}
	// IPv6: version 6, payload length, next header 58, hop limit 255.
	b = append(b, 0x60, 0, 0, 0, byte(payload>>8), byte(payload), 58, 255)
	s, d := netip.MustParseAddr(ipSrc).As16(), netip.MustParseAddr("ff02::1:ff00:1").As16()
	b = append(append(b, s[:]...), d[:]...)
	t := netip.MustParseAddr(target).As16()
	b = append(b, typ, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, t[:]...)
	if opt != nil {
		kind := byte(1)
		if typ == 136 {
			kind = 2
		}
		b = append(append(b, kind, 1), opt...)
	}
	return b
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Neighbour discovery announces an address as ARP does: a solicitation its
// source, an advertisement its target, when the link-layer option (if any)
// is the frame's source; DAD and mismatches announce nothing.
func TestDecodeNDSenderIP(t *testing.T) {
	const m = "52:54:00:00:00:07"
	own := mustMAC(m)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string // "" announces nothing
	}{
		{"solicitation", ndFrame(135, m, "fd00::7", "fd00::1", own), "fd00::7"},
		{"solicitation without option", ndFrame(135, m, "fe80::7", "fe80::1", nil), "fe80::7"},
		{"solicitation with another MAC", ndFrame(135, m, "fd00::7", "fd00::1", mustMAC("52:54:00:00:00:99")), ""},
		{"DAD", ndFrame(135, m, "::", "fd00::7", nil), ""},
		{"advertisement", ndFrame(136, m, "fd00::7", "fd00::7", own), "fd00::7"},
		{"advertisement of a VIP", ndFrame(136, m, "fd00::7", "fd00::100", own), "fd00::100"},
		{"advertisement without option from its target", ndFrame(136, m, "fd00::7", "fd00::7", nil), "fd00::7"},
		{"advertisement without option for another", ndFrame(136, m, "fd00::7", "fd00::8", nil), ""},
		{"advertisement of a multicast target", ndFrame(136, m, "fd00::7", "ff02::1", own), ""},
		{"advertisement of a mapped IPv4 address", ndFrame(136, m, "fd00::7", "::ffff:10.1.1.1", own), ""},
	} {
		f, err := DecodeFrame(tc.frame)
		if err != nil || f.ND == nil {
			t.Errorf("%s: not decoded as ND: %+v %v", tc.name, f, err)
			continue
		}
		ip, ok := f.SenderIP()
		if got := map[bool]string{true: ip.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("%s: announces %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Anything but a well-formed ND message leaves Frame.ND nil, without error.
func TestDecodeNDRejects(t *testing.T) {
	good := func() []byte {
		return ndFrame(135, "52:54:00:00:00:07", "fd00::7", "fd00::1", mustMAC("52:54:00:00:00:07"))
	}
	const ip6 = 18 // offset of the IPv6 header in a tagged frame
	for name, change := range map[string]func([]byte) []byte{
		"hop limit 64":          func(b []byte) []byte { b[ip6+7] = 64; return b },
		"extension header":      func(b []byte) []byte { b[ip6+6] = 0; return b },
		"echo request":          func(b []byte) []byte { b[ip6+40] = 128; return b },
		"code 1":                func(b []byte) []byte { b[ip6+41] = 1; return b },
		"IPv4 version":          func(b []byte) []byte { b[ip6] = 0x40; return b },
		"cut in the target":     func(b []byte) []byte { return b[:ip6+40+20] },
		"cut in the header":     func(b []byte) []byte { return b[:ip6+30] },
		"option of length 0":    func(b []byte) []byte { b[ip6+65] = 0; return b },
		"option past the end":   func(b []byte) []byte { b[ip6+65] = 3; return b },
		"option of 16 bytes":    func(b []byte) []byte { b[ip6+65] = 2; return append(b, make([]byte, 8)...) },
		"option cut in the MAC": func(b []byte) []byte { return b[:len(b)-3] },
	} {
		b := change(good())
		f, err := DecodeFrame(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		switch name {
		case "option of length 0", "option past the end", "option of 16 bytes", "option cut in the MAC":
			// Still a solicitation, without a usable option.
			if f.ND == nil || f.ND.LinkAddr != nil {
				t.Errorf("%s: %+v", name, f.ND)
			}
		default:
			if f.ND != nil {
				t.Errorf("%s: decoded as ND: %+v", name, f.ND)
			}
		}
	}
}

// FuzzDecodeND feeds ND-shaped frames through DecodeFrame and SenderIP.
func FuzzDecodeND(f *testing.F) {
	f.Add(ndFrame(135, "52:54:00:00:00:07", "fd00::7", "fd00::1", mustMAC("52:54:00:00:00:07")))
	f.Add(ndFrame(136, "52:54:00:00:00:07", "fd00::7", "fd00::7", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			return
		}
		ip, ok := fr.SenderIP()
		if ok && (!ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast()) {
			t.Fatalf("announced %v", ip)
		}
	})
}

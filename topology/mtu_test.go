package topology

import (
	"net/netip"
	"testing"
)

func TestParseMTU(t *testing.T) {
	withMTU := func(mtu string) string {
		return hdr + hosts3 + "networks:\n  - name: n1\n    vni: 1\n    mtu: " + mtu + "\n"
	}
	for _, c := range []struct{ mtu, msg string }{
		{"575", "575 is out of range 576..9000"},
		{"9001", "9001 is out of range 576..9000"},
		{"0", "0 is out of range 576..9000"},
		{"1450.5", "want an integer in 576..9000"},
		{"big", `want an integer in 576..9000, got "big"`},
	} {
		checkProblems(t, withMTU(c.mtu), []want{{"networks[0].mtu", c.msg, 9}})
	}
	for _, c := range []struct {
		mtu  string
		want int
	}{{"576", 576}, {"1450", 1450}, {"9000", 9000}, {"~", 0}} {
		top := mustParse(t, withMTU(c.mtu))
		if got := top.Network("n1").MTU; got != c.want {
			t.Errorf("mtu: %s: got %d, want %d", c.mtu, got, c.want)
		}
	}
	if got := mustParse(t, onePort()).Network("n1").MTU; got != 0 {
		t.Errorf("a network without mtu resolved to MTU %d, want 0 (resolved at apply time)", got)
	}
}

func TestEffectiveMTU(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, c := range []struct {
		declared int
		vtep     netip.Addr
		underlay int
		want     int
	}{
		{0, v4, 1500, 1450},
		{0, v6, 1500, 1430},
		{0, v4, 9000, 8950},
		{0, v4, 0, 0},       // underlay unknown
		{1400, v4, 0, 1400}, // declared wins, even unknown underlay
		{1400, v6, 1500, 1400},
		{8900, v4, 1500, 8900}, // declared larger than fits: apply warns, not this
	} {
		if got := EffectiveMTU(&Network{MTU: c.declared}, c.vtep, c.underlay); got != c.want {
			t.Errorf("EffectiveMTU(mtu %d, vtep %s, underlay %d) = %d, want %d", c.declared, c.vtep, c.underlay, got, c.want)
		}
	}
}

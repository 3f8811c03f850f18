package flows

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// binaryVariants are flows that differ from each other in one field or
// action each (and two that differ only where the text would not show
// field boundaries): every pair must have distinct binary forms, Keys and
// cookies where the text says they are distinct.
func binaryVariants() []Flow {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	ip := netip.MustParseAddr
	base := Flow{Table: 3, Priority: 2, Match: Match{HasVLAN: true, VLAN: 1}, Actions: []Action{Output{Port: 1}}}
	with := func(f func(*Flow)) Flow {
		g := base
		g.Actions = append([]Action(nil), base.Actions...)
		f(&g)
		return g
	}
	return []Flow{
		base,
		with(func(f *Flow) { f.Table = 4 }),
		with(func(f *Flow) { f.Priority = 3 }),
		with(func(f *Flow) { f.IdleTimeout = 1 }),
		with(func(f *Flow) { f.HardTimeout = 1 }),
		with(func(f *Flow) { f.Match.VLAN = 2 }),
		with(func(f *Flow) { f.Match.HasVLAN = false }),
		with(func(f *Flow) { f.Match.EthType = EthTypeARP }),
		with(func(f *Flow) { f.Match.EthType, f.Match.IPProto = EthTypeIPv4, 1 }),
		with(func(f *Flow) { f.Match.HasTunID = true }),
		with(func(f *Flow) { f.Match.HasTunID, f.Match.TunID = true, 5 }),
		with(func(f *Flow) { f.Match.InPort = 1 }),
		with(func(f *Flow) { f.Match.EthSrc = mac("52:54:00:00:00:01") }),
		with(func(f *Flow) { f.Match.EthDst = mac("52:54:00:00:00:01") }),
		with(func(f *Flow) { f.Match.EthDst, f.Match.EthDstMask = Unicast, GroupBit }),
		with(func(f *Flow) { f.Match.EthType, f.Match.ArpSPA = EthTypeARP, ip("10.0.0.1") }),
		with(func(f *Flow) { f.Match.EthType, f.Match.ArpTPA = EthTypeARP, ip("10.0.0.1") }),
		with(func(f *Flow) { f.Match.EthType, f.Match.ArpOp = EthTypeARP, 1 }),
		with(func(f *Flow) { f.Match.EthType, f.Match.IPProto, f.Match.IPv6Src = EthTypeIPv6, 58, ip("::") }),
		with(func(f *Flow) { f.Match.EthType, f.Match.IPProto, f.Match.IPv6Src = EthTypeIPv6, 58, ip("fe80::1") }),
		with(func(f *Flow) { f.Match.EthType, f.Match.IPProto, f.Match.HasICMPType = EthTypeIPv6, 58, true }),
		with(func(f *Flow) {
			f.Match.EthType, f.Match.IPProto, f.Match.HasICMPType, f.Match.ICMPType, f.Match.NDTarget = EthTypeIPv6, 58, true, 135, ip("fe80::1")
		}),
		with(func(f *Flow) { f.Actions = nil }),
		with(func(f *Flow) { f.Actions = []Action{Output{Port: 2}} }),
		with(func(f *Flow) { f.Actions = []Action{Output{Port: 1}, Output{Port: 1}} }),
		with(func(f *Flow) { f.Actions = []Action{Controller{MaxLen: 128}} }),
		with(func(f *Flow) { f.Actions = []Action{GotoTable{Table: 1}} }),
		with(func(f *Flow) { f.Actions = []Action{PushVLAN{}, SetVLANVID{VID: 1}} }),
		with(func(f *Flow) { f.Actions = []Action{PopVLAN{}, SetTunID{ID: 1}} }),
		with(func(f *Flow) { f.Actions = []Action{SetEthSrc{MAC: mac("52:54:00:00:00:01")}} }),
		with(func(f *Flow) { f.Actions = []Action{SetARPSHA{MAC: mac("52:54:00:00:00:01")}} }),
		with(func(f *Flow) { f.Actions = []Action{SetARPOp{Op: 2}} }),
		with(func(f *Flow) { f.Actions = []Action{SetARPSPA{IP: ip("10.0.0.1")}} }),
		with(func(f *Flow) { f.Actions = []Action{SetIPv6Src{IP: ip("fe80::1")}} }),
		with(func(f *Flow) { f.Actions = []Action{Move{Src: FieldEthSrc, Dst: FieldEthDst}} }),
		with(func(f *Flow) { f.Actions = []Action{Move{Src: FieldEthDst, Dst: FieldEthSrc}} }),
		with(func(f *Flow) { f.Actions = []Action{SetICMPv6Type{Type: 136}} }),
		with(func(f *Flow) { f.Actions = []Action{SetNDReserved{Value: NDFlagSolicited}} }),
		with(func(f *Flow) { f.Actions = []Action{SetNDOptionsType{Type: NDOptionTLL}} }),
		with(func(f *Flow) { f.Actions = []Action{Learn{Table: 20, Priority: 1}} }),
		with(func(f *Flow) { f.Actions = []Action{Learn{Table: 20, Priority: 1, Cookie: 1}} }),
		with(func(f *Flow) { f.Actions = []Action{Learn{Table: 20, Priority: 1, HardTimeout: 1}} }),
	}
}

// TestBinaryFormTellsFlowsApart: flows of different texts have different
// binary forms and cookies, flows of different Keys different Key forms,
// and a flow's forms do not depend on its cookie.
func TestBinaryFormTellsFlowsApart(t *testing.T) {
	fl := binaryVariants()
	bins, keys, cookies := map[string]string{}, map[string]string{}, map[uint64]string{}
	for _, f := range fl {
		text := WithContentCookie(f, 0).String()
		if prev, ok := bins[string(appendBinary(nil, &f))]; ok && prev != text {
			t.Errorf("%s and %s have one binary form", prev, text)
		}
		bins[string(appendBinary(nil, &f))] = text
		if prev, ok := keys[string(appendKeyBinary(nil, &f))]; ok && prev != f.Key() {
			t.Errorf("Keys %s and %s have one binary form", prev, f.Key())
		}
		keys[string(appendKeyBinary(nil, &f))] = f.Key()
		c := WithContentCookie(f, CookieOwned).Cookie
		if prev, ok := cookies[c]; ok && prev != text {
			t.Errorf("%s and %s share cookie %#x", prev, text, c)
		}
		cookies[c] = text
		g := f
		g.Cookie = 12345
		if WithContentCookie(g, CookieOwned).Cookie != c {
			t.Errorf("%s: the cookie depends on the previous cookie", text)
		}
	}
	if len(bins) != len(fl) {
		t.Errorf("%d variants, %d binary forms", len(fl), len(bins))
	}
}

// TestFirstOfEachKey keeps the first flow of each Key and drops the later
// ones, whatever their actions, as the text Key would.
func TestFirstOfEachKey(t *testing.T) {
	fl := binaryVariants()
	var in []Flow
	for _, f := range fl {
		g := f
		g.Actions = []Action{Output{Port: 99}} // same Key, other contents
		in = append(in, f, g)
	}
	got := firstOfEachKey(in, CookieController)
	seen := map[string]bool{}
	var want []Flow
	for _, f := range in {
		if !seen[f.Key()] {
			seen[f.Key()] = true
			want = append(want, f)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("kept %d flows, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].String() != want[i].String() {
			t.Errorf("flow %d: %s, want %s", i, got[i], want[i])
		}
	}
}

// TestCompileEndpointsManyIsUnionOfOne: compiling many endpoints at once
// (a set of unmanaged hosts, one list sized once, Keys told apart in
// binary) gives exactly the sorted union of compiling them one at a time,
// as the controller's fast path relies on; a duplicate Key keeps the first.
func TestCompileEndpointsManyIsUnionOfOne(t *testing.T) {
	topo := ctlTopology()
	topo.Host("host3").Managed = false
	alloc := mustAlloc(t, topo, "host1")
	var eps []Endpoint
	for i := range 24 {
		host := []string{"host1", "host2", "host3"}[i%3]
		e := Endpoint{VNI: []uint32{100, 200}[i%2], MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 1, byte(i)}, Host: host}
		switch i % 4 {
		case 1:
			e.IPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}
		case 2:
			e.IPs = []netip.Addr{netip.AddrFrom16([16]byte{0xfd, 15: byte(i)}), netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})}
		}
		eps = append(eps, e)
	}
	var union []Flow
	for _, e := range eps {
		union = append(union, CompileEndpoints(topo, topo.Host("host1"), alloc, []Endpoint{e})...)
	}
	Sort(union)
	got := CompileEndpoints(topo, topo.Host("host1"), alloc, eps)
	if g, w := strings.Join(lines(got), "\n"), strings.Join(lines(union), "\n"); g != w {
		t.Errorf("all at once:\n%s\none at a time:\n%s", g, w)
	}
	if len(got) < 3*len(eps) {
		t.Errorf("only %d flows for %d endpoints", len(got), len(eps))
	}
	// The same endpoint twice, the second with another IP: its MAC's
	// flows are kept once, the first's.
	dup := eps[1]
	dup.IPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 9, 9, 9})}
	again := CompileEndpoints(topo, topo.Host("host1"), alloc, append(slices.Clone(eps), dup))
	if len(again) != len(got)+3 { // the new IP's responder, owner's request and gratuitous ARP
		t.Errorf("%d flows with a duplicate endpoint, want %d", len(again), len(got)+3)
	}
}

// TestAppendEndpointsLeavesDst: AppendEndpoints is dst followed by
// CompileEndpoints, dst untouched and not sorted with the new flows.
func TestAppendEndpointsLeavesDst(t *testing.T) {
	topo := ctlTopology()
	alloc := mustAlloc(t, topo, "host1")
	h := topo.Host("host1")
	eps := []Endpoint{{VNI: 100, MAC: mac("52:54:00:00:00:02"), Host: "host2", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}},
		{VNI: 100, MAC: mac("52:54:00:00:00:01"), Host: "host1"}}
	dst := []Flow{{Table: 99, Priority: 1}, {Table: 0, Priority: 9}} // out of order on purpose
	got := AppendEndpoints(slices.Clone(dst), topo, h, alloc, eps)
	want := append(slices.Clone(dst), CompileEndpoints(topo, h, alloc, eps)...)
	if g, w := strings.Join(lines(got), "\n"), strings.Join(lines(want), "\n"); g != w {
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
}

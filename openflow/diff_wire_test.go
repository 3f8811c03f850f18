package openflow

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/internal/ovstest"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

// textDiff is the diff on texts alone: every flow rendered, paired by text,
// then by Key. The wire diff must give the same.
func textDiff(desired, installed []flows.Flow) Diff {
	return pair(texts(desired), texts(installed)).diff(desired, installed)
}

// diffLines is a diff as the texts of its four lists, in order.
func diffLines(d Diff) [4][]string {
	var out [4][]string
	for k, l := range [][]flows.Flow{d.Add, d.Modify, d.Replaced, d.Delete} {
		for _, f := range l {
			out[k] = append(out[k], f.String())
		}
	}
	return out
}

func sameDiff(t *testing.T, name string, got, want Diff) {
	t.Helper()
	g, w := diffLines(got), diffLines(want)
	for k, what := range []string{"add", "modify", "replaced", "delete"} {
		if !slices.Equal(g[k], w[k]) {
			t.Errorf("%s: %s:\n%q\nwant (text diff):\n%q", name, what, g[k], w[k])
		}
	}
}

// baseFlows are the examples' flows and every kind of flow, with content
// cookies, without duplicate Keys.
func baseFlows(t *testing.T) []flows.Flow {
	var out []flows.Flow
	seen := map[string]bool{}
	for _, f := range append(ovstest.ExampleFlows(t), ovstest.EveryKind()...) {
		f = flows.WithContentCookie(f, flows.CookieOwned)
		if k := f.Key(); !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}

// scenario derives desired and installed flows from base: most the same,
// some with other actions, other cookies or other timeouts, some only on
// one side, some installed twice, all shuffled.
func scenario(base []flows.Flow, r *rand.Rand) (desired, installed []flows.Flow) {
	for i, f := range base {
		g := f
		switch r.IntN(12) {
		case 0: // other actions: a modification
			g.Actions = []flows.Action{flows.Output{Port: uint32(i%7 + 1)}}
			g = flows.WithContentCookie(g, flows.CookieOwned)
		case 1: // same flow under another cookie
			g.Cookie ^= 1
		case 2:
			g.IdleTimeout++
		case 3: // installed only
			installed = append(installed, f)
			continue
		case 4: // desired only
			desired = append(desired, f)
			continue
		case 5: // installed twice (a lossy match can do that)
			installed = append(installed, f)
		}
		desired, installed = append(desired, f), append(installed, g)
	}
	r.Shuffle(len(desired), func(i, j int) { desired[i], desired[j] = desired[j], desired[i] })
	r.Shuffle(len(installed), func(i, j int) { installed[i], installed[j] = installed[j], installed[i] })
	return desired, installed
}

// TestWireDiffIsTextDiff: ComputeDiff, which compares in wire form first,
// gives the text diff's result on the examples' flows and every kind of
// flow, under random changes.
func TestWireDiffIsTextDiff(t *testing.T) {
	base := baseFlows(t)
	sameDiff(t, "same flows", ComputeDiff(base, slices.Clone(base)), textDiff(base, base))
	if d := ComputeDiff(base, base); !d.Empty() {
		t.Errorf("same flows: %s", d)
	}
	sameDiff(t, "install", ComputeDiff(base, nil), textDiff(base, nil))
	sameDiff(t, "remove all", ComputeDiff(nil, base), textDiff(nil, base))
	r := rand.New(rand.NewPCG(13, 1))
	for range 20 {
		desired, installed := scenario(base, r)
		sameDiff(t, "changes", ComputeDiff(desired, installed), textDiff(desired, installed))
	}
}

// TestWireDiffOfDump: against flows as a switch dumps them (match fields in
// another order, some with flags), the wire diff is the text diff of the
// decoded flows, and flows the same but for the order of their match fields
// stay.
func TestWireDiffOfDump(t *testing.T) {
	base := baseFlows(t)
	r := rand.New(rand.NewPCG(13, 2))
	for round := range 10 {
		desired, installed := scenario(base, r)
		if round == 0 {
			installed = slices.Clone(desired)
		}
		var body []byte
		for i, f := range installed {
			flags := uint16(0)
			if round > 0 && i%50 == 0 {
				flags = 1 // send_flow_rem: the flow differs
			}
			body = append(body, dumped(t, f, flags)...)
		}
		raw, err := ofcodec.ScanFlowStats(body, nil)
		if err != nil || len(raw) != len(installed) {
			t.Fatalf("%d entries of %d: %v", len(raw), len(installed), err)
		}
		decoded := make([]flows.Flow, len(raw))
		for i, e := range raw {
			decoded[i] = e.Decode().Flow
		}
		p := pairSides(encodeSide(desired, true), dumpSide(raw))
		got := p.diffOf(encodeSide(desired, true), dumpSide(raw))
		sameDiff(t, "dump", got, textDiff(desired, decoded))
		if round == 0 && (!got.Empty() || p.rendered != 0) {
			t.Errorf("flows dumped with their match fields reversed: %d rendered, diff:\n%s", p.rendered, got)
		}
		// Only changed flows are rendered: each change renders at most
		// one flow of each side, and flagged ones their counterpart.
		if changed := len(got.Add) + 2*len(got.Modify) + len(got.Delete); p.rendered > 2*changed {
			t.Errorf("%d flows rendered for %d changes", p.rendered, changed)
		}
	}
}

// dumped lays f out as a switch reports it in a flow stats reply: its match
// fields in reverse order, with flags.
func dumped(t testing.TB, f flows.Flow, flags uint16) []byte {
	t.Helper()
	fm, err := ofcodec.AppendFlowMod(nil, 1, f, ofcodec.CommandAdd)
	if err != nil {
		t.Fatal(err)
	}
	rest := fm[48:] // match and instructions
	mlen := int(binary.BigEndian.Uint16(rest[2:]))
	var tlvs [][]byte
	for b := rest[4:mlen]; len(b) > 0; {
		n := 4 + int(b[3])
		tlvs = append(tlvs, b[:n])
		b = b[n:]
	}
	slices.Reverse(tlvs)
	e := make([]byte, 48, 48+len(rest))
	binary.BigEndian.PutUint16(e[0:], uint16(48+len(rest)))
	e[2] = f.Table
	binary.BigEndian.PutUint16(e[12:], f.Priority)
	binary.BigEndian.PutUint16(e[14:], f.IdleTimeout)
	binary.BigEndian.PutUint16(e[16:], f.HardTimeout)
	binary.BigEndian.PutUint16(e[18:], flags)
	binary.BigEndian.PutUint64(e[24:], f.Cookie)
	e = append(e, rest[:4]...)
	e = append(e, slices.Concat(tlvs...)...)
	return append(e, rest[mlen:]...)
}

// TestSameOXM: the same fields in any order are the same match; a repeated
// field, a missing one or a malformed match is not.
func TestSameOXM(t *testing.T) {
	a := []byte{0x80, 0, 0, 4, 0, 0, 0, 1}  // in_port=1
	b := []byte{0x80, 0, 10, 2, 0x08, 0x06} // eth_type=arp
	c := []byte{0x80, 0, 10, 2, 0x08, 0x00} // eth_type=ip
	for _, tc := range []struct {
		x, y [][]byte
		same bool
	}{
		{[][]byte{a, b}, [][]byte{b, a}, true},
		{[][]byte{a, b}, [][]byte{a, b}, true},
		{[][]byte{a, b}, [][]byte{a, c}, false},
		{[][]byte{b, c}, [][]byte{c, b}, false}, // eth_type twice
		{[][]byte{a}, [][]byte{a, b}, false},
		{[][]byte{{0x80, 0, 0, 9}}, [][]byte{{0x80, 0, 0, 9}}, true}, // equal bytes, however malformed
		{[][]byte{{0x80, 0, 0, 9}, a}, [][]byte{a, {0x80, 0, 0, 9}}, false},
	} {
		if got := sameOXM(slices.Concat(tc.x...), slices.Concat(tc.y...)); got != tc.same {
			t.Errorf("sameOXM(%x, %x) = %v, want %v", tc.x, tc.y, got, tc.same)
		}
	}
}

// TestOpsOrder: a diff is sent as its deletes, then a re-add per modified
// flow (preceded by a delete when the installed one is lossy), then its
// adds, as flowMods orders them.
func TestOpsOrder(t *testing.T) {
	f := func(prio uint16, port uint32) flows.Flow {
		return flows.WithContentCookie(flows.Flow{Table: 1, Priority: prio, Actions: []flows.Action{flows.Output{Port: port}}}, flows.CookieOwned)
	}
	keep, mod, gone, lossy, added := f(1, 1), f(2, 1), f(3, 1), f(4, 1), f(5, 1)
	desired := []flows.Flow{added, f(4, 2), f(2, 2), keep}
	installed := []flows.Flow{gone, keep, mod, lossy}
	p := pairSides(encodeSide(desired, true), encodeSide(installed, true))
	got := p.ops(func(i int) bool { return i == 3 })
	want := []flowOp{{delete: true, i: 0}, {delete: true, i: 3}, {i: 1, verb: "modifying "}, {i: 2, verb: "modifying "}, {i: 0, verb: "adding "}}
	if !slices.Equal(got, want) {
		t.Errorf("ops %+v, want %+v", got, want)
	}
	if p.rendered != 6 {
		t.Errorf("%d flows rendered, want the 6 that changed (3 desired, 3 installed)", p.rendered)
	}
}

// TestCookieTable: every cookie finds what was stored for it, also among
// cookies that share their low or high bits, and a swap returns the
// previous index.
func TestCookieTable(t *testing.T) {
	var cookies []uint64
	for i := range uint64(1000) {
		cookies = append(cookies, i+1, (i+1)<<48, flows.CookieOwned|(i+1)<<20, ^i)
	}
	tb := newCookieTable(len(cookies))
	for i, c := range cookies {
		if old := tb.swap(c, int32(i)); old != -1 {
			t.Fatalf("cookie %#x: swap returned %d for a new cookie", c, old)
		}
	}
	for i, c := range cookies {
		if got := tb.get(c); got != int32(i) {
			t.Fatalf("cookie %#x: %d, want %d", c, got, i)
		}
	}
	if old := tb.swap(cookies[7], 99999); old != 7 || tb.get(cookies[7]) != 99999 {
		t.Errorf("swap returned %d, now %d", old, tb.get(cookies[7]))
	}
	if got := tb.get(0x1234_5678_9abc); got != -1 {
		t.Errorf("absent cookie: %d", got)
	}
}

// TestCheckWire: flows a reconcile cannot converge on are named, each
// problem once; the examples' flows pass.
func TestCheckWire(t *testing.T) {
	base := baseFlows(t)
	check := func(fl []flows.Flow) error {
		return checkWire(fl, encodeSide(fl, true), flows.CookieOwned, flows.CookieOwnerMask)
	}
	if err := check(base); err != nil {
		t.Fatalf("the examples' flows: %v", err)
	}
	a := flows.WithContentCookie(flows.Flow{Table: 1, Priority: 1, Match: flows.Match{InPort: 1, EthType: flows.EthTypeARP},
		Actions: []flows.Action{flows.Output{Port: 1}}}, flows.CookieOwned)
	b := a
	b.Actions = nil
	b = flows.WithContentCookie(b, flows.CookieOwned)
	foreign := a
	foreign.Cookie, foreign.Priority = 5, 2
	bad := flows.WithContentCookie(flows.Flow{Table: 2, Actions: []flows.Action{flows.GotoTable{Table: 1}}}, flows.CookieOwned)
	for name, tc := range map[string]struct {
		fl   []flows.Flow
		want string
	}{
		"duplicate key":  {[]flows.Flow{a, base[0], b}, "have the same table, priority and match"},
		"foreign cookie": {[]flows.Flow{foreign}, "outside the reconciled range"},
		"rejected flow":  {[]flows.Flow{bad}, "goto_table"},
	} {
		err := check(tc.fl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

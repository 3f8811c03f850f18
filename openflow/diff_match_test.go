package openflow

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// TestMatchAllIsMatchInTurn: the staged matchAll pairs exactly as match
// called for each flow in turn: across batch boundaries, with cookies that
// several desired flows share (chains), installed flows without wire form,
// flows that differ only past their first bytes, and duplicates on both
// sides (the first unpaired desired flow wins).
func TestMatchAllIsMatchInTurn(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var desired []flows.Flow
	for i := range 3*matchBatch + 17 {
		f := flows.Flow{Table: uint8(i % 3), Priority: uint16(i % 7), Cookie: flows.CookieOwned | uint64(i%40), // chains of ~10
			Match:   flows.Match{InPort: uint32(i + 1)},
			Actions: []flows.Action{flows.Output{Port: uint32(i%5 + 1)}, flows.SetTunID{ID: uint64(i)}}}
		desired = append(desired, f)
	}
	desired = append(desired, desired[5], desired[300]) // duplicates
	var installed []flows.Flow
	for _, f := range desired {
		switch r.IntN(5) {
		case 0: // gone
			continue
		case 1: // other actions, same first action
			f.Actions = []flows.Action{f.Actions[0], flows.SetTunID{ID: 1 << 40}}
		case 2: // twice
			installed = append(installed, f)
		}
		installed = append(installed, f)
	}
	r.Shuffle(len(installed), func(i, j int) { installed[i], installed[j] = installed[j], installed[i] })
	d, in := encodeSide(desired, true), encodeSide(installed, true)
	in.bin[7].ok = false // one without a wire form

	one := newCookieIndex(d)
	var want []bool
	for j := range in.bin {
		want = append(want, one.match(&in.bin[j]))
	}
	all := newCookieIndex(d)
	got := all.matchAll(in.bin[:100], nil) // in two calls, as parts arrive
	got = all.matchAll(in.bin[100:], got)
	if !slices.Equal(got, want) {
		t.Errorf("installed flows paired:\n%v\nwant\n%v", got, want)
	}
	if !slices.Equal(all.usedD, one.usedD) {
		t.Errorf("desired flows paired:\n%v\nwant\n%v", all.usedD, one.usedD)
	}
	if n := len(unused(all.usedD)); n == 0 || n == len(desired) {
		t.Errorf("%d of %d desired flows unpaired: the test pairs nothing or everything", n, len(desired))
	}
}

// BenchmarkMatchShuffledDump pairs a dump of 100,000 flows in an order
// unrelated to the desired flows' (as OVS dumps them) in the index built
// beforehand: a no-op reconcile's work after the switch's last reply part.
func BenchmarkMatchShuffledDump(b *testing.B) {
	fl := controllerFlows(benchFlows)
	want := encodeSide(fl, true)
	raw := dumpOf(b, fl)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(raw), func(i, j int) { raw[i], raw[j] = raw[j], raw[i] })
	have := make([]wireFlow, len(raw))
	for i, r := range raw {
		have[i] = wireOf(r)
	}
	used := make([]bool, 0, len(have))
	for b.Loop() {
		b.StopTimer()
		x := newCookieIndex(want)
		b.StartTimer()
		used = x.matchAll(have, used[:0])
		if slices.Contains(used, false) {
			b.Fatal("a flow was not paired")
		}
	}
}

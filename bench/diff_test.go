package main

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
)

// textDiff is the diff on texts alone, as the reconcile defined it before
// it compared flows in wire form: paired by text, then by Key; the lists of
// texts in openflow.Diff's order.
func textDiff(desired, installed []flows.Flow) (add, modify, replaced, del []string) {
	used := make([]bool, len(installed))
	byText := map[string][]int{}
	for i, f := range installed {
		byText[f.String()] = append(byText[f.String()], i)
	}
	var rest []int
	for i, f := range desired {
		if idx := byText[f.String()]; len(idx) > 0 {
			used[idx[0]], byText[f.String()] = true, idx[1:]
			continue
		}
		rest = append(rest, i)
	}
	byKey := map[string][]int{}
	for i, f := range installed {
		if !used[i] {
			byKey[f.Key()] = append(byKey[f.Key()], i)
		}
	}
	for _, i := range rest {
		if idx := byKey[desired[i].Key()]; len(idx) > 0 {
			used[idx[0]], byKey[desired[i].Key()] = true, idx[1:]
			modify, replaced = append(modify, desired[i].String()), append(replaced, installed[idx[0]].String())
			continue
		}
		add = append(add, desired[i].String())
	}
	for i, f := range installed {
		if !used[i] {
			del = append(del, f.String())
		}
	}
	return add, modify, replaced, del
}

func texts(fl []flows.Flow) []string {
	var out []string
	for _, f := range fl {
		out = append(out, f.String())
	}
	return out
}

// TestWireDiffIsTextDiffOnFlowSet: on the benchmark's flow set, one port
// added and random changes, ComputeDiff (wire form first) gives the text
// diff's result.
func TestWireDiffIsTextDiffOnFlowSet(t *testing.T) {
	fs, err := flowSetOf(3000)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := fs.withExtraPort()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 13))
	mutated := slices.Clone(fs.flows)
	for i := range mutated {
		switch r.IntN(20) {
		case 0:
			mutated[i].Priority++
		case 1:
			mutated[i].Actions = []flows.Action{flows.Output{Port: 9}}
			mutated[i] = flows.WithContentCookie(mutated[i], flows.CookieController)
		case 2:
			mutated[i].Cookie++
		}
	}
	for name, tc := range map[string][2][]flows.Flow{
		"no change":  {fs.flows, fs.flows},
		"port added": {changed.flows, fs.flows},
		"port gone":  {fs.flows, changed.flows},
		"random":     {mutated, changed.flows},
		"install":    {fs.flows, nil},
	} {
		d := openflow.ComputeDiff(tc[0], tc[1])
		add, mod, rep, del := textDiff(tc[0], tc[1])
		for what, l := range map[string][2][]string{"add": {texts(d.Add), add}, "modify": {texts(d.Modify), mod},
			"replaced": {texts(d.Replaced), rep}, "delete": {texts(d.Delete), del}} {
			if !slices.Equal(l[0], l[1]) {
				t.Errorf("%s: %s: %d flows %q\nwant (text diff) %d: %q", name, what, len(l[0]), l[0], len(l[1]), l[1])
			}
		}
	}
}

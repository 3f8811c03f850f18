package openflow

import (
	"sort"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
)

// Diff is what turns installed flows into desired ones.
type Diff struct {
	Add    []flows.Flow // desired flows with no installed flow of their Key
	Modify []flows.Flow // desired flows whose Key is installed with other contents
	// Replaced holds the installed flows Modify replaces, index for index.
	Replaced []flows.Flow
	Delete   []flows.Flow // installed flows no desired flow has the Key of
}

// Empty reports whether there is nothing to change.
func (d Diff) Empty() bool { return len(d.Add)+len(d.Modify)+len(d.Delete) == 0 }

// String renders the diff as `ovs-ofctl diff-flows` does: "-" for an
// installed flow that goes, "+" for a desired flow that comes (a modified
// flow gives both), ordered by flow key; "" when empty.
func (d Diff) String() string {
	type line struct {
		key  string
		rank int
		text string
	}
	var lines []line
	add := func(f flows.Flow, rank int, sign string) {
		lines = append(lines, line{f.Key(), rank, sign + strings.TrimPrefix(f.String(), " ")})
	}
	for _, f := range d.Delete {
		add(f, 0, "-")
	}
	for i, f := range d.Modify {
		if i < len(d.Replaced) {
			add(d.Replaced[i], 0, "-")
		}
		add(f, 1, "+")
	}
	for _, f := range d.Add {
		add(f, 1, "+")
	}
	sort.SliceStable(lines, func(i, j int) bool {
		if lines[i].key != lines[j].key {
			return lines[i].key < lines[j].key
		}
		return lines[i].rank < lines[j].rank
	})
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// ComputeDiff compares desired with installed flows: a flow with the same
// text on both sides stays; a desired flow whose Key (table, priority,
// match) is installed with other contents is a modification; the rest of
// the desired flows are added and the rest of the installed ones deleted.
// Desired flows are expected to have distinct Keys (OpenFlow holds one flow
// per Key); Reconcile checks that.
func ComputeDiff(desired, installed []flows.Flow) Diff {
	return pair(texts(desired), texts(installed)).diff(desired, installed)
}

// flowText is a flow's rendering and Key, computed once.
type flowText struct{ text, key string }

func texts(fl []flows.Flow) []flowText {
	out := make([]flowText, len(fl))
	for i, f := range fl {
		out[i] = flowText{f.String(), f.Key()}
	}
	return out
}

// pairing is a diff by index, for Reconcile to find each installed flow's
// raw match again.
type pairing struct {
	add    []int // into desired
	modify []struct{ desired, installed int }
	delete []int // into installed
}

func (p pairing) diff(desired, installed []flows.Flow) Diff {
	d := Diff{
		Add:      make([]flows.Flow, 0, len(p.add)),
		Modify:   make([]flows.Flow, 0, len(p.modify)),
		Replaced: make([]flows.Flow, 0, len(p.modify)),
		Delete:   make([]flows.Flow, 0, len(p.delete)),
	}
	for _, i := range p.add {
		d.Add = append(d.Add, desired[i])
	}
	for _, m := range p.modify {
		d.Modify = append(d.Modify, desired[m.desired])
		d.Replaced = append(d.Replaced, installed[m.installed])
	}
	for _, i := range p.delete {
		d.Delete = append(d.Delete, installed[i])
	}
	return d
}

func pair(desired, installed []flowText) pairing {
	var p pairing
	byText := make(map[string][]int, len(installed))
	for i, f := range installed {
		byText[f.text] = append(byText[f.text], i)
	}
	used := make([]bool, len(installed))
	var rest []int // desired flows not installed verbatim
	for i, f := range desired {
		if idx := byText[f.text]; len(idx) > 0 {
			used[idx[0]] = true
			byText[f.text] = idx[1:]
			continue
		}
		rest = append(rest, i)
	}
	byKey := map[string][]int{}
	for i, f := range installed {
		if !used[i] {
			byKey[f.key] = append(byKey[f.key], i)
		}
	}
	for _, i := range rest {
		k := desired[i].key
		if idx := byKey[k]; len(idx) > 0 {
			used[idx[0]] = true
			byKey[k] = idx[1:]
			p.modify = append(p.modify, struct{ desired, installed int }{i, idx[0]})
			continue
		}
		p.add = append(p.add, i)
	}
	for i := range installed {
		if !used[i] {
			p.delete = append(p.delete, i)
		}
	}
	return p
}

package openflow

import (
	"bytes"
	"math/bits"
	"slices"
	"sort"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
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
//
// Flows are compared in wire form first (cookie, table, priority, timeouts,
// match and instructions as bytes); only the flows that differ there are
// rendered and compared as text, so the result is the text comparison's.
func ComputeDiff(desired, installed []flows.Flow) Diff {
	d, in := encodeSide(desired, true), encodeSide(installed, true)
	return pairSides(d, in).diffOf(d, in)
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
	// rendered counts the flows pairSides compared as text (those whose
	// wire forms differ from every flow of the other side).
	rendered int
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

// pair is the one definition of what a reconcile changes, shared by
// ComputeDiff, Reconcile and ReconcileKnown: a desired flow with the text of
// an installed one stays (the text holds the content cookie and the Key);
// one whose Key is installed with another text is modified; the other
// desired flows are added and the other installed ones deleted.
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

// flowSide is one side of a diff as comparing needs it: each flow in wire
// form where it has one, and the flow itself on demand (decoded from a dump
// only for the flows that change).
type flowSide struct {
	bin    []wireFlow
	flow   func(i int) flows.Flow
	values []flows.Flow // the flows, when they are values (not a dump)
	// lossy reports that flow i only looks like its desired counterpart's
	// Key (nil: never), so an add will not replace it.
	lossy func(i int) bool
}

func (s flowSide) len() int { return len(s.bin) }

// wireFlow is a flow in wire form. ok is false for one that has none (the
// codec rejects or cannot encode it): it is compared by its text only.
type wireFlow struct {
	ok                          bool
	table                       uint8
	priority, idle, hard, flags uint16
	cookie                      uint64
	match, instr                []byte // OXM fields in any order; instructions
}

// sameWire reports whether two flows in wire form are the same flow with
// the same contents: then they also render the same text.
func sameWire(a, b *wireFlow) bool {
	return a.ok && b.ok && a.cookie == b.cookie && a.table == b.table && a.priority == b.priority &&
		a.idle == b.idle && a.hard == b.hard && a.flags == 0 && b.flags == 0 &&
		bytes.Equal(a.instr, b.instr) && sameOXM(a.match, b.match)
}

// sameOXM reports whether two OXM matches hold the same fields, in any
// order: a switch dumps them in its own order. A match with a repeated
// field header is never the same as another (OpenFlow forbids it).
func sameOXM(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if bytes.Equal(a, b) {
		return true
	}
	for rest := a; len(rest) > 0; {
		n := oxmLen(rest)
		if n == 0 {
			return false
		}
		tlv := rest[:n]
		rest = rest[n:]
		if !containsOXM(b, tlv) || containsOXMHeader(rest, tlv) {
			return false
		}
	}
	return true
}

// oxmLen is the length of the OXM field b starts with (0: malformed).
func oxmLen(b []byte) int {
	if len(b) < 4 || 4+int(b[3]) > len(b) {
		return 0
	}
	return 4 + int(b[3])
}

func containsOXM(b, tlv []byte) bool {
	for len(b) > 0 {
		n := oxmLen(b)
		if n == 0 {
			return false
		}
		if bytes.Equal(b[:n], tlv) {
			return true
		}
		b = b[n:]
	}
	return false
}

// containsOXMHeader reports whether b holds a field with tlv's class and
// field (mask bit and length aside).
func containsOXMHeader(b, tlv []byte) bool {
	for len(b) > 0 {
		n := oxmLen(b)
		if n == 0 {
			return false
		}
		if b[0] == tlv[0] && b[1] == tlv[1] && b[2]>>1 == tlv[2]>>1 {
			return true
		}
		b = b[n:]
	}
	return false
}

// encodeSide puts flow values in wire form, in one buffer. With check, a
// flow the codec rejects (ofcodec.Check) gets no wire form; checking here,
// while the flow is in the cache, costs half of a pass of its own.
func encodeSide(fl []flows.Flow, check bool) flowSide {
	s := flowSide{bin: make([]wireFlow, len(fl)), flow: func(i int) flows.Flow { return fl[i] }, values: fl}
	type span struct{ start, mEnd, end int }
	spans := make([]span, len(fl))
	buf := make([]byte, 0, 112*len(fl))
	for i := range fl {
		f := &fl[i]
		if check && ofcodec.Check(*f) != nil {
			continue
		}
		start := len(buf)
		b, err := ofcodec.AppendMatch(buf, f.Match)
		mEnd := len(b)
		if err == nil {
			b, err = ofcodec.AppendInstructions(b, f.Actions)
		}
		if err != nil {
			buf = buf[:start]
			continue
		}
		buf = b
		spans[i] = span{start, mEnd, len(buf)}
		s.bin[i] = wireFlow{ok: true, table: f.Table, priority: f.Priority, idle: f.IdleTimeout, hard: f.HardTimeout, cookie: f.Cookie}
	}
	// Slices are taken once the buffer stops growing.
	for i, sp := range spans {
		if s.bin[i].ok {
			s.bin[i].match, s.bin[i].instr = buf[sp.start:sp.mEnd:sp.mEnd], buf[sp.mEnd:sp.end:sp.end]
		}
	}
	return s
}

// dumpSide is the side of flows dumped from a switch: their wire form is
// what the switch sent; each is decoded only if it changes.
func dumpSide(raw []ofcodec.RawFlow) flowSide {
	s := dumpSideOf(raw)
	s.bin = make([]wireFlow, len(raw))
	for i, r := range raw {
		s.bin[i] = wireOf(r)
	}
	return s
}

// dumpSideOf is dumpSide without the wire forms, which the caller fills.
func dumpSideOf(raw []ofcodec.RawFlow) flowSide {
	return flowSide{
		flow:  func(i int) flows.Flow { return raw[i].Decode().Flow },
		lossy: func(i int) bool { return raw[i].Decode().MatchLossy },
	}
}

// wireOf is a dumped flow's wire form, as it came.
func wireOf(r ofcodec.RawFlow) wireFlow {
	return wireFlow{ok: true, table: r.Table(), priority: r.Priority(), idle: r.IdleTimeout(), hard: r.HardTimeout(),
		flags: r.Flags(), cookie: r.Cookie(), match: r.Match(), instr: r.Instructions()}
}

// maxCookieChain bounds the desired flows of one cookie an installed flow
// is compared with in wire form: content cookies are all but unique, and
// flows sharing a cookie beyond that go to the text comparison, which is
// linear.
const maxCookieChain = 8

// pairSides is pair for sides in wire form: a desired and an installed flow
// the same in wire form stay; the others are rendered and paired by pair.
func pairSides(d, in flowSide) pairing {
	if d.len() == 0 || in.len() == 0 { // nothing to pair
		return pairRest(d, in, allOf(d.len()), allOf(in.len()))
	}
	x := newCookieIndex(d)
	usedI := x.matchAll(in.bin, make([]bool, 0, in.len()))
	return pairRest(d, in, unused(x.usedD), unused(usedI))
}

// cookieIndex finds desired flows by cookie, to pair installed flows with
// them in wire form one by one (as a dump arrives).
type cookieIndex struct {
	d     flowSide
	head  cookieTable // the first desired flow of a cookie
	next  []int32     // the next desired flow of the same cookie, or -1
	usedD []bool
}

func newCookieIndex(d flowSide) *cookieIndex {
	x := &cookieIndex{d: d, head: newCookieTable(d.len()), next: make([]int32, d.len()), usedD: make([]bool, d.len())}
	for i := d.len() - 1; i >= 0; i-- {
		if d.bin[i].ok {
			x.next[i] = x.head.swap(d.bin[i].cookie, int32(i))
		}
	}
	return x
}

// cookieTable maps cookies to flow indexes: open addressing, one cache line
// per lookup where a map takes two or three (which made a third of a no-op
// reconcile's client CPU).
type cookieTable struct {
	shift uint // 64 - log2(len(slots))
	slots []cookieSlot
}

type cookieSlot struct {
	cookie uint64
	i      int32 // index + 1; 0: empty
}

func newCookieTable(n int) cookieTable {
	bits := uint(bits.Len(uint(2*n + 1)))
	return cookieTable{shift: 64 - bits, slots: make([]cookieSlot, 1<<bits)}
}

// find is the slot of cookie, or the empty one where it goes.
func (t *cookieTable) find(cookie uint64) *cookieSlot {
	mask := uint64(len(t.slots) - 1)
	for h := (cookie * 0x9e3779b97f4a7c15) >> t.shift; ; h = (h + 1) & mask {
		if sl := &t.slots[h]; sl.i == 0 || sl.cookie == cookie {
			return sl
		}
	}
}

// get is the index stored for cookie, or -1.
func (t *cookieTable) get(cookie uint64) int32 { return t.find(cookie).i - 1 }

// swap stores i for cookie and returns what was stored (-1: nothing).
func (t *cookieTable) swap(cookie uint64, i int32) int32 {
	sl := t.find(cookie)
	old := sl.i - 1
	sl.cookie, sl.i = cookie, i+1
	return old
}

// match pairs an installed flow with the first unpaired desired flow the
// same in wire form, and reports whether there was one.
func (x *cookieIndex) match(w *wireFlow) bool {
	if !w.ok {
		return false
	}
	for i, steps := x.head.get(w.cookie), 0; i >= 0 && steps < maxCookieChain; i, steps = x.next[i], steps+1 {
		if !x.usedD[i] && sameWire(&x.d.bin[i], w) {
			x.usedD[i] = true
			return true
		}
	}
	return false
}

// matchBatch is how many flows matchAll looks up at a time.
const matchBatch = 128

// matchAll is match for each of ws in turn, appending to used whether each
// was paired. It goes over a batch in stages: the cookie table for every
// flow, then each one's first candidate, then the comparisons. The desired
// flows are found in an order that has nothing to do with theirs (a
// switch's), so every step is a cache miss; in stages the misses of a
// batch overlap instead of following one another, which made the pairing
// of a 100,000-flow dump, on a reconcile's critical path after the
// switch's last reply part, about twice as fast.
func (x *cookieIndex) matchAll(ws []wireFlow, used []bool) []bool {
	var head [matchBatch]int32
	var hint [matchBatch]bool
	for len(ws) > 0 {
		n := min(len(ws), matchBatch)
		for j := range n {
			head[j] = -1
			if ws[j].ok {
				head[j] = x.head.get(ws[j].cookie)
			}
		}
		for j := range n {
			hint[j] = head[j] >= 0 && sameHeader(&x.d.bin[head[j]], &ws[j])
		}
		for j := range n {
			used = append(used, x.matchFrom(head[j], hint[j], &ws[j]))
		}
		ws = ws[n:]
	}
	return used
}

// sameHeader is sameWire's cheap first part, and reads the first bytes of
// a's match and instructions (matchAll's second stage: it brings them in).
func sameHeader(a, b *wireFlow) bool {
	return a.cookie == b.cookie && a.table == b.table && a.priority == b.priority &&
		len(a.match) == len(b.match) && len(a.instr) == len(b.instr) &&
		(len(a.match) == 0 || a.match[0] == b.match[0]) && (len(a.instr) == 0 || a.instr[len(a.instr)-1] == b.instr[len(b.instr)-1])
}

// matchFrom is match with the cookie's first desired flow found already
// (head; -1: none) and whether it looked the same (hint): a flow that is
// right is paired with it at once, as match would.
func (x *cookieIndex) matchFrom(head int32, hint bool, w *wireFlow) bool {
	if hint && !x.usedD[head] && sameWire(&x.d.bin[head], w) {
		x.usedD[head] = true
		return true
	}
	for i, steps := head, 0; i >= 0 && steps < maxCookieChain; i, steps = x.next[i], steps+1 {
		if !x.usedD[i] && sameWire(&x.d.bin[i], w) {
			x.usedD[i] = true
			return true
		}
	}
	return false
}

func allOf(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func unused(used []bool) []int {
	var out []int
	for i, u := range used {
		if !u {
			out = append(out, i)
		}
	}
	return out
}

// pairRest pairs the flows left after the wire comparison by text: only
// they are rendered. With nothing left on one side, the other side is all
// adds or all deletes and nothing is rendered.
func pairRest(d, in flowSide, restD, restI []int) pairing {
	if len(restD) == 0 || len(restI) == 0 {
		return pairing{add: restD, delete: restI}
	}
	render := func(s flowSide, idx []int) []flowText {
		out := make([]flowText, len(idx))
		for k, i := range idx {
			f := s.flow(i)
			out[k] = flowText{f.String(), f.Key()}
		}
		return out
	}
	p := pair(render(d, restD), render(in, restI))
	p.rendered = len(restD) + len(restI)
	for k := range p.add {
		p.add[k] = restD[p.add[k]]
	}
	for k := range p.delete {
		p.delete[k] = restI[p.delete[k]]
	}
	for k := range p.modify {
		p.modify[k].desired, p.modify[k].installed = restD[p.modify[k].desired], restI[p.modify[k].installed]
	}
	return p
}

// diffOf is diff for sides whose installed flows are decoded on demand.
// When every desired flow is added (a switch that holds none), Add is the
// desired slice itself, not a copy: 100,000 flows take 20 MB.
func (p pairing) diffOf(d, in flowSide) Diff {
	if len(p.add) == d.len() && d.values != nil && len(p.modify)+len(p.delete) == 0 {
		return Diff{Add: slices.Clip(d.values), Modify: []flows.Flow{}, Replaced: []flows.Flow{}, Delete: []flows.Flow{}}
	}
	out := Diff{
		Add:      make([]flows.Flow, 0, len(p.add)),
		Modify:   make([]flows.Flow, 0, len(p.modify)),
		Replaced: make([]flows.Flow, 0, len(p.modify)),
		Delete:   make([]flows.Flow, 0, len(p.delete)),
	}
	for _, i := range p.add {
		out.Add = append(out.Add, d.flow(i))
	}
	for _, m := range p.modify {
		out.Modify = append(out.Modify, d.flow(m.desired))
		out.Replaced = append(out.Replaced, in.flow(m.installed))
	}
	for _, i := range p.delete {
		out.Delete = append(out.Delete, in.flow(i))
	}
	return out
}

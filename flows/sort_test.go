package flows

import (
	"cmp"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestSortOrdersAsText: Sort, which orders by cookie where it can, leaves
// flows in the order of (table, priority descending, text), for cookies
// that are prefixes of each other, zero cookies and equal ones.
func TestSortOrdersAsText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cookies := []uint64{0, 0x1, 0x12, 0x123, 0xf, 0x10, 0x7678, 0x76781, 0x7678 << 48, CookieOwned | 1, CookieOwned | 0x10, ^uint64(0)}
	var fl []Flow
	for range 2000 {
		f := Flow{Table: uint8(r.IntN(3)), Priority: uint16(r.IntN(3)), Cookie: cookies[r.IntN(len(cookies))],
			Actions: []Action{Output{Port: uint32(r.IntN(5) + 1)}}}
		if r.IntN(3) == 0 {
			f.Cookie = r.Uint64() >> (4 * r.IntN(16))
		}
		fl = append(fl, f)
	}
	want := slices.Clone(fl)
	slices.SortStableFunc(want, func(a, b Flow) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(b.Priority, a.Priority), strings.Compare(a.String(), b.String()))
	})
	Sort(fl)
	for i := range fl {
		if fl[i].String() != want[i].String() {
			t.Fatalf("flow %d: %s, want %s", i, fl[i], want[i])
		}
	}
}

func TestCompareHex(t *testing.T) {
	vals := []uint64{1, 2, 0xf, 0x10, 0x11, 0x1f, 0x100, 0xabc, 0xab, 0xabd, 0x7678 << 48, ^uint64(0)}
	for _, a := range vals {
		for _, b := range vals {
			want := strings.Compare(strconv.FormatUint(a, 16), strconv.FormatUint(b, 16))
			if got := compareHex(a, b); got != want {
				t.Errorf("compareHex(%#x, %#x) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestContentCookieIsFNV: the cookie's low bits are FNV-1a of the text, as
// hash/fnv computes it (installed flows keep their cookies across the
// inlining of the hash).
func TestContentCookieIsFNV(t *testing.T) {
	for _, f := range []Flow{
		{},
		{Table: 1, Priority: 2, Match: Match{InPort: 3}, Actions: []Action{Output{Port: 4}}},
		{Table: 20, Priority: 1, Cookie: 99, Match: Match{HasVLAN: true, VLAN: 7}, Actions: []Action{PopVLAN{}, SetTunID{ID: 5}}},
	} {
		h := fnv.New64a()
		g := f
		g.Cookie = 0
		h.Write([]byte(g.String()))
		want := CookieController | h.Sum64()&^CookieOwnerMask
		if got := WithContentCookie(f, CookieController).Cookie; got != want {
			t.Errorf("%s: cookie %#x, want %#x", f, got, want)
		}
	}
}

package flows

import (
	"cmp"

	"github.com/cespare/xxhash/v2"
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

// TestSortRadixOrdersAsText: with content cookies only (16 hex digits,
// sorted as numbers a byte at a time) the order is still the text's, for
// ties of cookie too, and whether or not a byte is shared by every key.
func TestSortRadixOrdersAsText(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{257, 5000} {
		pool := []uint64{CookieOwned | 1, CookieOwned | 0xabc, CookieController | 0xabc}
		var fl []Flow
		for range n {
			f := Flow{Table: uint8(r.IntN(3) * 100), Priority: uint16(r.IntN(3) * 300), Cookie: CookieOwned | r.Uint64()>>16,
				Actions: []Action{Output{Port: uint32(r.IntN(5) + 1)}}}
			if r.IntN(5) == 0 {
				f.Cookie = pool[r.IntN(len(pool))]
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
				t.Fatalf("%d flows: flow %d: %s, want %s", n, i, fl[i], want[i])
			}
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

// TestContentCookieIsPinned: the cookie's low bits are XXH64 of the flow's
// binary form, whatever cookie it had before, and the values do not move:
// a switch keeps cookies across restarts and upgrades of ovs-vxctl, and a
// cookie that moved would make the next reconcile rewrite every flow.
func TestContentCookieIsPinned(t *testing.T) {
	for _, tt := range []struct {
		f    Flow
		want uint64
	}{
		{Flow{}, 0x767aacb1cbada68a},
		{Flow{Table: 1, Priority: 2, Match: Match{InPort: 3}, Actions: []Action{Output{Port: 4}}}, 0x767ad97754d14aef},
		{Flow{Table: 20, Priority: 1, Cookie: 99, Match: Match{HasVLAN: true, VLAN: 7}, Actions: []Action{PopVLAN{}, SetTunID{ID: 5}}}, 0x767a61dae61e6e01},
	} {
		want := CookieController | xxhash.Sum64(appendBinary(nil, &tt.f))&^CookieOwnerMask
		got := WithContentCookie(tt.f, CookieController).Cookie
		if got != want || got != tt.want {
			t.Errorf("%s: cookie %#x, want %#x (XXH64) and %#x (pinned)", tt.f, got, want, tt.want)
		}
	}
	// The layout, spelled out: table, priority, in_port (tag 4), idle and
	// hard timeouts, the actions (tag 15), one: output (tag 1) to 4.
	f := Flow{Table: 1, Priority: 2, Match: Match{InPort: 3}, Actions: []Action{Output{Port: 4}}}
	want := []byte{1, 0, 2, 4, 0, 0, 0, 3, 0, 0, 0, 0, 15, 0, 1, 1, 0, 0, 0, 4}
	if got := appendBinary(nil, &f); !slices.Equal(got, want) {
		t.Errorf("binary form % x, want % x", got, want)
	}
}

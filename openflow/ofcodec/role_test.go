package ofcodec_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
)

func TestRoleMessageRoundTrip(t *testing.T) {
	for _, m := range []ofcodec.RoleMessage{
		{Type: ofcodec.TypeRoleRequest, Xid: 7, Role: ofcodec.RoleMaster, GenerationID: 42},
		{Type: ofcodec.TypeRoleRequest, Xid: 1, Role: ofcodec.RoleNoChange},
		{Type: ofcodec.TypeRoleReply, Xid: 0xfffffffe, Role: ofcodec.RoleSlave, GenerationID: ofcodec.GenerationIDNone},
		{Type: ofcodec.TypeRoleReply, Xid: 3, Role: ofcodec.RoleEqual, GenerationID: 1 << 63},
	} {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if len(b) != int(m.Len()) || b[0] != 4 || b[1] != m.Type {
			t.Fatalf("%+v encodes as % x", m, b)
		}
		got, err := ofcodec.DecodeRole(b)
		if err != nil || got != m {
			t.Fatalf("%+v decodes back as %+v, %v", m, got, err)
		}
		var u ofcodec.RoleMessage
		if err := u.UnmarshalBinary(b); err != nil || u != m {
			t.Fatalf("UnmarshalBinary: %+v, %v", u, err)
		}
	}
	// The body layout OpenFlow 1.3 fixes: role, 4 bytes of padding, generation ID.
	b, _ := ofcodec.NewRoleRequest(ofcodec.RoleSlave, 0x0102030405060708).MarshalBinary()
	want := []byte{4, 24, 0, 24, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(b, want) {
		t.Fatalf("role request\n got % x\nwant % x", b, want)
	}
	if _, err := (&ofcodec.RoleMessage{Type: 10}).MarshalBinary(); err == nil {
		t.Error("a role message of type 10 encoded")
	}
}

func TestDecodeRoleRejects(t *testing.T) {
	good, _ := ofcodec.NewRoleRequest(ofcodec.RoleMaster, 1).MarshalBinary()
	long := append(append([]byte(nil), good...), 0, 0, 0, 0, 0, 0, 0, 0)
	long[3] = 32
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short":         good[:16],
		"long":          long,
		"OpenFlow 1.0":  append([]byte{1}, good[1:]...),
		"a barrier":     {4, 20, 0, 8, 0, 0, 0, 1},
		"wrong length":  append(good[:2:2], append([]byte{0, 25}, good[4:]...)...),
		"header of 8 ":  {4, 24, 0, 8, 0, 0, 0, 1},
		"type 26 (get)": append([]byte{4, 26}, good[2:]...),
	} {
		if m, err := ofcodec.DecodeRole(b); err == nil {
			t.Errorf("%s: decoded as %+v", name, m)
		}
	}
	if _, err := ofcodec.DecodeRole(long); !errors.Is(err, ofcodec.ErrRoleLength) {
		t.Errorf("a 32-byte role request: %v, want ErrRoleLength", err)
	}
	if ofcodec.Role(4).Valid() || !ofcodec.RoleSlave.Valid() {
		t.Error("Valid: role 4 accepted or slave refused")
	}
}

func TestGenerationStale(t *testing.T) {
	for _, c := range []struct {
		gen, last uint64
		stale     bool
	}{
		{5, 5, false},
		{6, 5, false},
		{4, 5, true},
		{0, math.MaxUint64, false},     // wrapped around: 0 comes after 2^64-1
		{math.MaxUint64, 0, true},      // and 2^64-1 before 0
		{1 << 63, 0, true},             // exactly half way round counts as older
		{1<<63 - 1, 0, false},          // just short of it as newer
		{10, 1<<63 + 20, false},        // within half the ring ahead
		{1<<63 + 20, 1<<63 + 21, true}, // one behind
	} {
		if got := ofcodec.GenerationStale(c.gen, c.last); got != c.stale {
			t.Errorf("GenerationStale(%d, %d) = %v, want %v", c.gen, c.last, got, c.stale)
		}
	}
}

func TestRoleStatusRoundTrip(t *testing.T) {
	s := ofcodec.RoleStatus{Role: ofcodec.RoleSlave, Reason: ofcodec.RoleStatusMasterRequest, GenerationID: 99}
	b := ofcodec.EncodeRoleStatus(s, 0)
	got, ok := ofcodec.DecodeRoleStatus(b)
	if !ok || got != s {
		t.Fatalf("role status %+v decodes as %+v, %v", s, got, ok)
	}
	b[15]++ // another experimenter type
	if _, ok := ofcodec.DecodeRoleStatus(b); ok {
		t.Error("an experimenter message of another type decoded as a role status")
	}
}

// FuzzDecodeRole: arbitrary bytes never panic the decoders, and whatever
// decodes encodes back to the same bytes.
func FuzzDecodeRole(f *testing.F) {
	for _, m := range []*ofcodec.RoleMessage{
		ofcodec.NewRoleRequest(ofcodec.RoleMaster, 3),
		{Type: ofcodec.TypeRoleReply, Xid: 9, Role: ofcodec.RoleSlave, GenerationID: ofcodec.GenerationIDNone},
	} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Add(ofcodec.EncodeRoleStatus(ofcodec.RoleStatus{Role: ofcodec.RoleSlave, GenerationID: 1}, 0))
	f.Add([]byte{4, 24, 0, 8, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ofcodec.DecodeRole(b); err == nil {
			// Everything but the padding (bytes 12-15) survives.
			again, err := m.MarshalBinary()
			if err != nil || !bytes.Equal(again[:12], b[:12]) || !bytes.Equal(again[16:], b[16:]) {
				t.Fatalf("% x decodes as %+v, encodes back as % x (%v)", b, m, again, err)
			}
		}
		if s, ok := ofcodec.DecodeRoleStatus(b); ok {
			again := ofcodec.EncodeRoleStatus(s, uint32(b[4])<<24|uint32(b[5])<<16|uint32(b[6])<<8|uint32(b[7]))
			if !bytes.Equal(again[:21], b[:21]) || !bytes.Equal(again[24:], b[24:]) {
				t.Fatalf("% x decodes as role status %+v, encodes back as % x", b, s, again)
			}
		}
	})
}

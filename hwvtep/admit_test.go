package hwvtep

import (
	"fmt"
	"net"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

func localMAC(t *testing.T, vni uint32, s string) LocalMAC {
	t.Helper()
	mac, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return LocalMAC{VNI: vni, MAC: mac}
}

// A MAC taken earlier keeps its place over the bound, whatever sorts
// before it; new MACs fill only the room left, lowest first.
func TestAdmitIsSticky(t *testing.T) {
	server := localMAC(t, 100, "76:33:00:00:00:01")
	cands := []LocalMAC{localMAC(t, 100, "02:00:00:00:00:01"), localMAC(t, 100, "02:00:00:00:00:02"),
		localMAC(t, 100, "02:00:00:00:00:03"), server}
	out, over := admit(cands, map[macKey]bool{keyOfLocal(server): true}, 2)
	if over != 2 || len(out) != 2 || out[0].MAC.String() != "02:00:00:00:00:01" || out[1].MAC.String() != server.MAC.String() {
		t.Fatalf("admit = %v, %d over; want the lowest new MAC and the known server, 2 over", out, over)
	}
	// Known MACs beyond the bound (the bound shrank): still at most max.
	all := map[macKey]bool{}
	for _, c := range cands {
		all[keyOfLocal(c)] = true
	}
	if out, over := admit(cands, all, 3); len(out) != 3 || over != 1 {
		t.Fatalf("admit with all known = %v, %d over; want 3 taken, 1 over", out, over)
	}
	if out, over := admit(cands, nil, 0); len(out) != 4 || over != 0 {
		t.Fatalf("unbounded admit = %v, %d", out, over)
	}
}

// The attack of H1: a switch's table holds a server, then a flood of MACs
// that sort before it arrives in one transaction. The server stays taken
// at every later read; the flood gets only the room left.
func TestLocalMACsFloodKeepsKnownServer(t *testing.T) {
	s, m := hostileSnapshot(0)
	s.ucastLocal = nil
	ls := s.lswitches[0].UUID
	s.ucastLocal = append(s.ucastLocal, &hwvtep.UcastMacsLocal{UUID: uuid(5000), LogicalSwitch: ls, MAC: "76:33:00:00:00:01"})
	c := &Client{maxLocal: 8192}
	first, _ := s.index().localMACsKnown(m, c.maxLocal, c.admitted)
	c.KeepLocal(first) // what Sync records, or a reconnecting controller seeds
	for i := range 9000 {
		s.ucastLocal = append(s.ucastLocal, &hwvtep.UcastMacsLocal{UUID: uuid(6000 + i), LogicalSwitch: ls,
			MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, (i>>8)&0xff, i&0xff)})
	}
	for read := range 2 {
		local, ref := s.index().localMACsKnown(m, c.maxLocal, c.admitted)
		if len(local) != 8192 || ref.limit != 9001-8192 {
			t.Fatalf("read %d: %d taken, %d over the limit; want 8192 and %d", read, len(local), ref.limit, 9001-8192)
		}
		if last := local[len(local)-1]; last.MAC.String() != "76:33:00:00:00:01" {
			t.Fatalf("read %d: the known server was pushed out (last taken %s)", read, last.MAC)
		}
		c.KeepLocal(local)
	}
}

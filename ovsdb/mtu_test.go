package ovsdb

import (
	"maps"
	"strconv"
	"testing"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Internal ports get their network's MTU as mtu_request, vm ports never
// (their MTU is the VM's); br-int records the known MTUs for show.
func TestApplyMTU(t *testing.T) {
	tp := topo(topology.ModeLearn)
	h := tp.Host("host1")
	alloc, err := tp.Allocate(h, topology.Allocation{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := desired(tp, h, alloc)
	if err != nil {
		t.Fatal(err)
	}
	mtus := map[uint32]int{}
	for _, n := range tp.NetworksOn(h) {
		mtus[n.VNI] = 1400 + int(n.VNI%100)
	}
	applyMTU(want, mtus)
	internal, vm := 0, 0
	for _, b := range want {
		if b.name == topology.BridgeInt {
			if got := parseMTUs(b.externalIDs[KeyMTUs]); !maps.Equal(got, mtus) {
				t.Errorf("br-int %s = %q, reads back as %v, want %v", KeyMTUs, b.externalIDs[KeyMTUs], got, mtus)
			}
		}
		for _, p := range b.ports {
			switch p.kind {
			case kindInternal:
				internal++
				if p.mtuRequest == nil || *p.mtuRequest != mtus[vniOf(t, p)] {
					t.Errorf("internal port %s mtu_request %v, want %d", p.name, p.mtuRequest, mtus[vniOf(t, p)])
				}
			default:
				if p.kind == kindVM {
					vm++
				}
				if p.mtuRequest != nil {
					t.Errorf("%s port %s got mtu_request %d", p.kind, p.name, *p.mtuRequest)
				}
			}
		}
	}
	if internal == 0 || vm == 0 {
		t.Fatalf("topology has %d internal and %d vm ports on host1, want some of each", internal, vm)
	}

	// Unknown MTUs (0): no mtu_request, nothing recorded.
	want, _ = desired(tp, h, alloc)
	applyMTU(want, map[uint32]int{100: 0})
	for _, b := range want {
		if _, ok := b.externalIDs[KeyMTUs]; ok {
			t.Errorf("%s records MTUs it does not know: %q", b.name, b.externalIDs[KeyMTUs])
		}
		for _, p := range b.ports {
			if p.mtuRequest != nil {
				t.Errorf("port %s got mtu_request %d from an unknown MTU", p.name, *p.mtuRequest)
			}
		}
	}
	if got := parseMTUs("100=1450,junk,200=x,300=9000"); !maps.Equal(got, map[uint32]int{100: 1450, 300: 9000}) {
		t.Errorf("parseMTUs kept %v", got)
	}
}

func vniOf(t *testing.T, p *wantPort) uint32 {
	t.Helper()
	vni, err := strconv.ParseUint(p.externalIDs[KeyVNI], 10, 32)
	if err != nil {
		t.Fatalf("port %s: %v", p.name, err)
	}
	return uint32(vni)
}

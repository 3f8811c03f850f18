package flows

import (
	"maps"
	"slices"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// CookieAllocation marks the advertisement flows (low bits: content hash).
// Under the controller's reconcile mask (CookieOwnerMask &^ 2<<48) it falls
// outside both CookieOwned and CookieController, so the controller never
// deletes them.
const CookieAllocation uint64 = 0x767b << 48

// ControllerReconcileMask selects CookieOwned and CookieController flows (they
// differ only in bit 49) and nothing else: what a controller reconciles.
const ControllerReconcileMask = CookieOwnerMask &^ (2 << 48)

// CompileAllocation advertises alloc's local VLANs as flows of
// TableAllocation: "tun_id=VNI,dl_vlan=VLAN actions=drop".
func CompileAllocation(alloc topology.Allocation) []Flow {
	var out []Flow
	for _, vni := range slices.Sorted(maps.Keys(alloc.LocalVLAN)) {
		out = append(out, WithContentCookie(Flow{Table: TableAllocation, Priority: PriorityClassify,
			Match: Match{HasTunID: true, TunID: uint64(vni), HasVLAN: true, VLAN: alloc.LocalVLAN[vni]}}, CookieAllocation))
	}
	Sort(out)
	return out
}

// LocalVLANsFromFlows reads the advertisement flows back (others are ignored).
func LocalVLANsFromFlows(fl []Flow) map[uint32]uint16 {
	out := map[uint32]uint16{}
	for _, f := range fl {
		if f.Table == TableAllocation && f.Cookie&CookieOwnerMask == CookieAllocation && f.Match.HasTunID && f.Match.HasVLAN {
			out[uint32(f.Match.TunID)] = f.Match.VLAN
		}
	}
	return out
}

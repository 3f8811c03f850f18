package ovsdb

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// KeyMTUs is on br-int: the networks' effective MTUs apply used, "VNI=MTU"
// pairs sorted by VNI and joined by commas ("100=1450,200=1450"), so that
// show can print them without the topology or the underlay.
const KeyMTUs = "ovs-vxctl-mtus"

// applyMTU gives the internal ports of br-int their network's MTU
// (mtu_request: OVS otherwise sizes an internal port after the bridge's
// other ports) and records every known MTU on br-int.
func applyMTU(want []*wantBridge, mtu map[uint32]int) {
	known := map[uint32]int{}
	for vni, m := range mtu {
		if m > 0 {
			known[vni] = m
		}
	}
	for _, br := range want {
		if br.name != topology.BridgeInt {
			continue
		}
		if s := formatMTUs(known); s != "" {
			br.externalIDs[KeyMTUs] = s
		}
		for _, p := range br.ports {
			vni, err := strconv.ParseUint(p.externalIDs[KeyVNI], 10, 32)
			if p.kind != kindInternal || err != nil || known[uint32(vni)] == 0 {
				continue
			}
			m := known[uint32(vni)]
			p.mtuRequest = &m
		}
	}
}

// formatMTUs renders a VNI -> MTU map as KeyMTUs stores it.
func formatMTUs(m map[uint32]int) string {
	parts := make([]string, 0, len(m))
	for _, vni := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d=%d", vni, m[vni]))
	}
	return strings.Join(parts, ",")
}

// parseMTUs reads KeyMTUs back; entries it cannot read are left out (the
// value is informational only).
func parseMTUs(s string) map[uint32]int {
	out := map[uint32]int{}
	for _, pair := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(pair, "=")
		vni, err1 := strconv.ParseUint(k, 10, 32)
		mtu, err2 := strconv.Atoi(v)
		if err1 == nil && err2 == nil && mtu > 0 {
			out[uint32(vni)] = mtu
		}
	}
	return out
}

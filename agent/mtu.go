package agent

import (
	"fmt"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/hostnet"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// mtuPlan is what apply works out about MTUs from the host's kernel links.
type mtuPlan struct {
	// byVNI is each network's effective MTU; 0 when unknown.
	byVNI map[uint32]int
	// warnings name what will not fit: a vm interface larger than its
	// network, a declared mtu the underlay cannot carry.
	warnings []string
	// unknown, when not "", says why networks without mtu have none.
	unknown string
}

// networkMTUs computes the effective MTU of every network of host h (see
// topology.EffectiveMTU), the underlay's MTU being that of the link that
// holds the VTEP address, as the kernel routes VXLAN from it.
func networkMTUs(t *topology.Topology, h *topology.Host, links map[string]hostnet.Link) mtuPlan {
	mp := mtuPlan{byVNI: map[uint32]int{}}
	ul, found := hostnet.HoldsAddr(links, h.VTEP)
	underlay := 0
	if found {
		underlay = ul.MTU
	}
	var undeclared []string
	for _, n := range t.NetworksOn(h) {
		eff := topology.EffectiveMTU(n, h.VTEP, underlay)
		mp.byVNI[n.VNI] = eff
		if n.MTU == 0 {
			undeclared = append(undeclared, n.Name)
		}
		if over := overhead(h); n.MTU > 0 && underlay > 0 && n.MTU+over > underlay {
			mp.warnings = append(mp.warnings, fmt.Sprintf(
				"network %s: mtu %d and VXLAN's %d bytes exceed the MTU %d of %s, which holds the VTEP address %s: the underlay drops larger frames",
				n.Name, n.MTU, over, underlay, ul.Name, h.VTEP))
		}
	}
	if !found && len(undeclared) > 0 {
		mp.unknown = fmt.Sprintf("no interface holds the VTEP address %s, so the underlay MTU is unknown: networks %s get no MTU (set mtu in the file)",
			h.VTEP, strings.Join(undeclared, ", "))
	}
	mp.warnings = append(mp.warnings, vmMTUWarnings(t, h, links, mp.byVNI)...)
	return mp
}

// vmMTUWarnings names every vm interface whose MTU is larger than its
// network's: the VM may send frames the tunnel cannot carry, which are lost
// without a trace but a line in ovs-vswitchd's log.
func vmMTUWarnings(t *topology.Topology, h *topology.Host, links map[string]hostnet.Link, byVNI map[uint32]int) []string {
	var out []string
	for _, p := range t.PortsOn(h) {
		l, ok := links[p.Name]
		eff := byVNI[p.Network.VNI]
		// A port bound by iface_id has no interface of its name.
		if p.Type != topology.PortVM || p.IfaceID != "" || !ok || eff == 0 || l.MTU <= eff {
			continue
		}
		out = append(out, fmt.Sprintf(
			"vm port %s: interface %s has MTU %d, larger than the MTU %d of network %s: larger frames are lost in the tunnel; give the VM (and %s) MTU %d",
			p.Name, p.Name, l.MTU, eff, p.Network.Name, p.Name, eff))
	}
	return out
}

// overhead is VXLAN's encapsulation overhead on h's underlay.
func overhead(h *topology.Host) int {
	if h.VTEP.Is6() && !h.VTEP.Is4In6() {
		return topology.VXLANOverheadIPv6
	}
	return topology.VXLANOverheadIPv4
}

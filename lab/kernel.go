package lab

import (
	"context"
	"fmt"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// buildKernelHost makes unmanaged host hp a Linux-kernel VTEP, the seed's
// way: the VTEP address on the underlay veth, and per network a Linux bridge
// holding a kernel vxlan device (learning on) and the host's VM ports, with
// head-end replication entries to every other host of the network.
func (p *plan) buildKernelHost(ctx context.Context, hp *hostPlan) error {
	lines := p.vtepLines(hp, UnderlayIf)
	dstPort := portOrDefault(hp.h.DstPort)
	for _, np := range hp.nets {
		lines = append(lines,
			fmt.Sprintf("link add name %s type bridge mcast_snooping 0", np.bridge),
			// The network's MTU, as its VMs have: the kernel's default
			// (1500) would make the bridge drop their larger frames.
			fmt.Sprintf("link add name %s mtu %d type vxlan id %d dstport %d local %s",
				np.vxlan, topology.EffectiveMTU(np.n, hp.h.VTEP, UnderlayMTU), np.n.VNI, dstPort, hp.h.VTEP.Unmap()),
			fmt.Sprintf("link set dev %s master %s up", np.vxlan, np.bridge))
		for _, vm := range np.vms {
			lines = append(lines, fmt.Sprintf("link set dev %s master %s", vm.port.Name, np.bridge))
		}
		if port := np.internal; port != nil {
			// An internal port is the host's own address in the network:
			// the bridge's, as in the seed.
			lines = append(lines, fmt.Sprintf("link set dev %s address %s", np.bridge, PortMAC(p.o.Topology.Name, port)))
			if port.IP.IsValid() {
				line := fmt.Sprintf("addr add %s dev %s", port.IP, np.bridge)
				if port.IP.Addr().Is6() {
					line += " nodad"
				}
				lines = append(lines, line)
			}
		}
		lines = append(lines, fmt.Sprintf("link set dev %s up", np.bridge))
	}
	if err := ipBatch(ctx, hp.ns, lines); err != nil {
		return fmt.Errorf("building the kernel VTEP: %w", err)
	}
	var fdb []string
	for _, np := range hp.nets {
		for _, peer := range np.peers {
			fdb = append(fdb, fmt.Sprintf("fdb append 00:00:00:00:00:00 dev %s dst %s", np.vxlan, peer))
		}
	}
	if err := bridgeBatch(ctx, hp.ns, fdb); err != nil {
		return fmt.Errorf("adding head-end replication entries: %w", err)
	}
	// Without this the kernel sends VXLAN with a partial UDP checksum that
	// OVS's userspace tunnels drop.
	return txOff(ctx, hp.ns, UnderlayIf)
}

// portOrDefault is the VXLAN port, defaulting like the topology file does.
func portOrDefault(p uint16) uint16 {
	if p == 0 {
		return topology.DefaultDstPort
	}
	return p
}

package topology

import (
	"cmp"
	"slices"
)

// Host returns the host called name, or nil.
func (t *Topology) Host(name string) *Host {
	for _, h := range t.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Network returns the network called name, or nil.
func (t *Topology) Network(name string) *Network {
	for _, n := range t.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// ManagedHosts returns the hosts ovs-vxctl configures, in file order.
func (t *Topology) ManagedHosts() []*Host {
	var out []*Host
	for _, h := range t.Hosts {
		if h.Managed {
			out = append(out, h)
		}
	}
	return out
}

// HasPortOn reports whether network n has at least one port on host h.
func (n *Network) HasPortOn(h *Host) bool {
	for _, p := range n.Ports {
		if p.Host == h {
			return true
		}
	}
	return false
}

// PortsOn returns n's ports on host h, in file order.
func (n *Network) PortsOn(h *Host) []*Port {
	var out []*Port
	for _, p := range n.Ports {
		if p.Host == h {
			out = append(out, p)
		}
	}
	return out
}

// NetworksOn returns the networks with at least one port on h, sorted by VNI.
func (t *Topology) NetworksOn(h *Host) []*Network {
	var out []*Network
	for _, n := range t.Networks {
		if n.HasPortOn(h) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *Network) int { return cmp.Compare(a.VNI, b.VNI) })
	return out
}

// PortsOn returns every port of every network on host h, in file order.
func (t *Topology) PortsOn(h *Host) []*Port {
	var out []*Port
	for _, n := range t.Networks {
		out = append(out, n.PortsOn(h)...)
	}
	return out
}

// FloodPeers returns the other hosts that have ports in network n, as seen
// from host h (file order). They are h's flood list for n; an empty list means
// the network never leaves h. O(ports of n + hosts).
func (t *Topology) FloodPeers(h *Host, n *Network) []*Host {
	if !n.HasPortOn(h) {
		return nil
	}
	in := map[*Host]bool{}
	for _, p := range n.Ports {
		in[p.Host] = true
	}
	return t.others(h, in)
}

// Peers returns the hosts h needs a tunnel to: every other host (managed or
// not) that shares at least one network with h, in file order. O(ports + hosts).
func (t *Topology) Peers(h *Host) []*Host {
	in := map[*Host]bool{}
	for _, n := range t.Networks {
		if n.HasPortOn(h) {
			for _, p := range n.Ports {
				in[p.Host] = true
			}
		}
	}
	return t.others(h, in)
}

// others lists the hosts of set other than h, in file order.
func (t *Topology) others(h *Host, set map[*Host]bool) []*Host {
	var out []*Host
	for _, o := range t.Hosts {
		if o != h && set[o] {
			out = append(out, o)
		}
	}
	return out
}

// PairDstPort is the VXLAN UDP port of the tunnel between a and b: the
// unmanaged host's port where one of them is unmanaged, else the managed
// hosts' shared port (validation guarantees they agree).
func PairDstPort(a, b *Host) uint16 {
	switch {
	case !b.Managed:
		return b.DstPort
	case !a.Managed:
		return a.DstPort
	default:
		return a.DstPort
	}
}

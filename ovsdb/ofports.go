package ovsdb

import (
	"context"
	"errors"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// TunnelOFPorts returns the OpenFlow port numbers ovs-vswitchd gave the
// tunnel ports of host h of topology t, by peer: the numbers the flows must
// name, which are not always the requested ones. Ports without a number
// yet (or that could not be attached) are left out.
func (c *Client) TunnelOFPorts(ctx context.Context, t *topology.Topology, h *topology.Host) (map[string]uint32, error) {
	if t == nil || h == nil {
		return nil, errors.New("reading tunnel ofports needs a topology and a host")
	}
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	m := marks{owner: t.Name, host: h.Name}
	out := map[string]uint32{}
	br := snap.bridges[topology.BridgeTun]
	if br == nil || !m.owns(br.ExternalIDs) {
		return out, nil
	}
	for _, u := range br.Ports {
		port := snap.ports[u]
		if port == nil || !m.owns(port.ExternalIDs) {
			continue
		}
		peer, ok := port.ExternalIDs[KeyPeer]
		iface := snap.ifaceOf(port)
		if !ok || iface == nil {
			continue
		}
		if n := ofport(iface); n > 0 {
			out[peer] = uint32(n)
		}
	}
	return out, nil
}

// HeldOFPorts returns every OpenFlow port number that an interface on bridge
// holds or requests now, whoever created it. An allocation that gives a new
// port one of them could see OVS assign another: a port removed in the same
// transaction still holds its number while the new one is added.
func (c *Client) HeldOFPorts(ctx context.Context, bridge string) (map[uint32]bool, error) {
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	held := map[uint32]bool{}
	br := snap.bridges[bridge]
	if br == nil {
		return held, nil
	}
	for _, u := range br.Ports {
		port := snap.ports[u]
		if port == nil {
			continue
		}
		for _, iu := range port.Interfaces {
			iface := snap.ifaces[iu]
			if iface == nil {
				continue
			}
			if n := ofport(iface); n > 0 {
				held[uint32(n)] = true
			}
			if r := iface.OfportRequest; r != nil && *r > 0 {
				held[uint32(*r)] = true
			}
		}
	}
	return held, nil
}

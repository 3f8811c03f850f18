package ovsdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// State is what ovs-vxctl configured on one host, read back from OVSDB: only
// rows that carry the host's ownership marks.
type State struct {
	Topology string         `json:"topology"`
	Host     string         `json:"host"`
	Bridges  []BridgeState  `json:"bridges"`
	Peers    []PeerState    `json:"peers"`
	Networks []NetworkState `json:"networks"`
}

// BridgeState is one bridge of ours.
type BridgeState struct {
	Name         string `json:"name"`
	DatapathType string `json:"datapath_type"`
	// DatapathID is what ovs-vswitchd reports (16 hex digits); "" until
	// it has created the bridge.
	DatapathID  string            `json:"datapath_id"`
	FailMode    string            `json:"fail_mode"`
	Controllers []ControllerState `json:"controllers,omitempty"`
}

// ControllerState is one controller of a bridge of ours.
type ControllerState struct {
	Target    string `json:"target"`
	Connected bool   `json:"connected"`
}

// PeerState is the tunnel towards one peer.
type PeerState struct {
	Peer     string `json:"peer"`
	Port     string `json:"port"`
	RemoteIP string `json:"remote_ip"`
	DstPort  int    `json:"dst_port"`
	// OFPort is the OpenFlow port number: 0 while ovs-vswitchd has not
	// assigned one, -1 when it could not attach the interface.
	OFPort int    `json:"ofport"`
	State  string `json:"state"`
}

// NetworkState is one network present on the host.
type NetworkState struct {
	Name      string `json:"name"`
	VNI       uint32 `json:"vni"`
	LocalVLAN int    `json:"local_vlan"`
	// MTU is the network's effective MTU as apply last set it; 0 when
	// apply did not know it (no mtu in the file, underlay MTU unknown).
	MTU   int         `json:"mtu"`
	Ports []PortState `json:"ports"`
}

// PortState is one VM or internal port of a network.
type PortState struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // "vm" or "internal"
	Tag    int    `json:"tag"`
	OFPort int    `json:"ofport"`
	State  string `json:"state"`
	// Interface is the interface a port given by iface_id is bound to;
	// "" for the ports ovs-vxctl created, named like their interface.
	Interface string `json:"interface,omitempty"`
}

// Show reads what ovs-vxctl configured for host h of topology t: bridges,
// peers (tunnel ports) and networks (VNI, local VLAN, ports), with the
// state ovs-vswitchd reports for each interface.
func (c *Client) Show(ctx context.Context, t *topology.Topology, h *topology.Host) (*State, error) {
	if t == nil || h == nil {
		return nil, errors.New("show needs a topology and a host")
	}
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	m := marks{owner: t.Name, host: h.Name}
	st := &State{Topology: t.Name, Host: h.Name, Bridges: []BridgeState{}, Peers: []PeerState{}, Networks: []NetworkState{}}
	nets := map[uint32]*NetworkState{}
	network := func(vni uint32) *NetworkState {
		if n := nets[vni]; n != nil {
			return n
		}
		n := &NetworkState{VNI: vni, Ports: []PortState{}}
		nets[vni] = n
		return n
	}
	for _, name := range sortedKeys(snap.bridges) {
		br := snap.bridges[name]
		if !m.owns(br.ExternalIDs) {
			continue
		}
		bs := BridgeState{Name: br.Name, DatapathType: br.DatapathType}
		if br.DatapathID != nil {
			bs.DatapathID = *br.DatapathID
		}
		if br.FailMode != nil {
			bs.FailMode = *br.FailMode
		}
		for _, u := range br.Controller {
			if k := snap.controllers[u]; k != nil {
				bs.Controllers = append(bs.Controllers, ControllerState{Target: k.Target, Connected: k.IsConnected})
			}
		}
		st.Bridges = append(st.Bridges, bs)
		if v, ok := br.ExternalIDs[KeyLocalVLANs]; ok && br.Name == topology.BridgeInt {
			vlans, err := parseLocalVLANs(v)
			if err != nil {
				return nil, fmt.Errorf("bridge %s: %w", br.Name, err)
			}
			for vni, vlan := range vlans {
				network(vni).LocalVLAN = int(vlan)
			}
		}
		if br.Name == topology.BridgeInt {
			for vni, mtu := range parseMTUs(br.ExternalIDs[KeyMTUs]) {
				network(vni).MTU = mtu
			}
		}
		for _, u := range br.Ports {
			port := snap.ports[u]
			if port == nil || !m.owns(port.ExternalIDs) && !m.bound(port.ExternalIDs) {
				continue
			}
			iface := snap.ifaceOf(port)
			if iface == nil {
				iface = &vswitch.Interface{Name: port.Name}
			}
			if peer, ok := port.ExternalIDs[KeyPeer]; ok {
				dst, _ := strconv.Atoi(iface.Options["dst_port"])
				st.Peers = append(st.Peers, PeerState{
					Peer: peer, Port: port.Name, RemoteIP: iface.Options["remote_ip"], DstPort: dst,
					OFPort: ofport(iface), State: ifaceState(iface),
				})
				continue
			}
			vniText, ok := port.ExternalIDs[KeyVNI]
			if !ok {
				continue // patch or local port
			}
			vni, err := strconv.ParseUint(vniText, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("port %s: bad %s %q", port.Name, KeyVNI, vniText)
			}
			n := network(uint32(vni))
			n.Name = port.ExternalIDs[KeyNetwork]
			ps := PortState{Name: port.Name, Type: kindVM, OFPort: ofport(iface), State: ifaceState(iface)}
			if iface.Type == "internal" {
				ps.Type = kindInternal
			}
			if m.bound(port.ExternalIDs) {
				ps.Name, ps.Interface = port.ExternalIDs[KeyBoundPort], port.Name
			}
			if port.Tag != nil {
				ps.Tag = *port.Tag
				if n.LocalVLAN == 0 {
					n.LocalVLAN = *port.Tag
				}
			}
			n.Ports = append(n.Ports, ps)
		}
	}
	slices.SortFunc(st.Peers, func(a, b PeerState) int { return cmp.Compare(a.Peer, b.Peer) })
	for _, vni := range sortedKeys(nets) {
		n := nets[vni]
		slices.SortFunc(n.Ports, func(a, b PortState) int { return cmp.Compare(a.Name, b.Name) })
		st.Networks = append(st.Networks, *n)
	}
	return st, nil
}

// ofport is an interface's OpenFlow port number, 0 when not yet assigned.
func ofport(i *vswitch.Interface) int {
	if i.Ofport == nil {
		return 0
	}
	return *i.Ofport
}

// ifaceState summarises an interface's error, admin_state and link_state.
func ifaceState(i *vswitch.Interface) string {
	if i.Error != nil && *i.Error != "" {
		return "error: " + *i.Error
	}
	if i.AdminState == nil && i.LinkState == nil {
		return "unknown"
	}
	if i.AdminState != nil && i.LinkState != nil && *i.AdminState == "up" && *i.LinkState == "up" {
		return "up"
	}
	return fmt.Sprintf("admin %s, link %s", showPtr(i.AdminState), showPtr(i.LinkState))
}

// OFPort returns the OpenFlow port number ovs-vswitchd gave port on bridge
// (any bridge, ours or not). It fails when there is no such port or when
// ovs-vswitchd has not attached it (yet).
func (c *Client) OFPort(ctx context.Context, bridge, port string) (int, error) {
	snap, err := c.read(ctx)
	if err != nil {
		return 0, err
	}
	br := snap.bridges[bridge]
	if br == nil {
		return 0, fmt.Errorf("reading the ofport of %s: no bridge %s", port, bridge)
	}
	for _, u := range br.Ports {
		p := snap.ports[u]
		if p == nil || p.Name != port {
			continue
		}
		iface := snap.ifaceOf(p)
		if iface == nil {
			return 0, fmt.Errorf("reading the ofport of %s on %s: the port has no interface named %s", port, bridge, port)
		}
		switch n := ofport(iface); {
		case iface.Ofport == nil:
			return 0, fmt.Errorf("reading the ofport of %s on %s: ovs-vswitchd has not assigned one yet", port, bridge)
		case n < 0:
			return 0, fmt.Errorf("reading the ofport of %s on %s: ovs-vswitchd could not attach it (%s)", port, bridge, ifaceState(iface))
		default:
			return n, nil
		}
	}
	return 0, fmt.Errorf("reading the ofport of %s: bridge %s has no such port", port, bridge)
}

// CurrentAllocation reads the allocation persisted for host h of topology
// t: the local VLANs from br-int's external_ids:ovs-vxctl-local-vlans and
// the tunnel ofports from the ofport_request of our tunnel interfaces on
// br-tun. Nothing persisted gives empty maps. The caller then runs
// t.Allocate(h, prev). It waits at most WaitTimeout for the database.
func (c *Client) CurrentAllocation(t *topology.Topology, h *topology.Host) (topology.Allocation, error) {
	alloc := topology.Allocation{LocalVLAN: map[uint32]uint16{}, TunnelOFPort: map[string]uint32{}}
	if t == nil || h == nil {
		return alloc, errors.New("reading the allocation needs a topology and a host")
	}
	timeout := c.WaitTimeout
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	snap, err := c.read(ctx)
	if err != nil {
		return alloc, err
	}
	m := marks{owner: t.Name, host: h.Name}
	if br := snap.bridges[topology.BridgeInt]; br != nil && m.owns(br.ExternalIDs) {
		vlans, err := parseLocalVLANs(br.ExternalIDs[KeyLocalVLANs])
		if err != nil {
			return alloc, fmt.Errorf("reading the allocation from bridge %s: %w", topology.BridgeInt, err)
		}
		alloc.LocalVLAN = vlans
	}
	if br := snap.bridges[topology.BridgeTun]; br != nil && m.owns(br.ExternalIDs) {
		for _, u := range br.Ports {
			port := snap.ports[u]
			if port == nil || !m.owns(port.ExternalIDs) {
				continue
			}
			peer, ok := port.ExternalIDs[KeyPeer]
			if !ok {
				continue
			}
			iface := snap.ifaceOf(port)
			if iface == nil || iface.OfportRequest == nil || *iface.OfportRequest <= 0 {
				continue // nothing persisted: Allocate picks a number
			}
			if _, dup := alloc.TunnelOFPort[peer]; dup {
				return alloc, fmt.Errorf("reading the allocation from bridge %s: two tunnel ports for peer %s", topology.BridgeTun, peer)
			}
			alloc.TunnelOFPort[peer] = uint32(*iface.OfportRequest)
		}
	}
	return alloc, nil
}

// Owner is the topology and host that own this OVSDB's br-tun, read from its
// ownership marks: verbs run without a topology file (show, fdb) use it.
type Owner struct {
	Topology string
	Host     string
}

// FindOwner returns the owner of br-tun; an error when ovs-vxctl has not
// configured this OVS.
func (c *Client) FindOwner(ctx context.Context) (Owner, error) {
	snap, err := c.read(ctx)
	if err != nil {
		return Owner{}, err
	}
	br, ok := snap.bridges[topology.BridgeTun]
	if !ok || br.ExternalIDs[KeyOwner] == "" {
		return Owner{}, errors.New("no br-tun configured by ovs-vxctl here (run apply, or give -f FILE --host H)")
	}
	return Owner{Topology: br.ExternalIDs[KeyOwner], Host: br.ExternalIDs[KeyHost]}, nil
}

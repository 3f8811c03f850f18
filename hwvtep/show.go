package hwvtep

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// State is what a hardware VTEP's database says about one host of a
// topology: its physical switch, and for every logical switch bound on it
// or ours, what the switch learned (local MACs) and what it was told
// (remote MACs and the flood list).
type State struct {
	Topology       string        `json:"topology"`
	Host           string        `json:"host"`
	PhysicalSwitch string        `json:"physical_switch"`
	Description    string        `json:"description"`
	TunnelIPs      []string      `json:"tunnel_ips"`
	Ports          []string      `json:"ports"`
	Switches       []SwitchState `json:"logical_switches"`
}

// SwitchState is one logical switch.
type SwitchState struct {
	Name            string     `json:"name"`
	Network         string     `json:"network,omitempty"` // "" when not ours
	Ours            bool       `json:"ours"`
	TunnelKey       int        `json:"tunnel_key"` // -1 when not set
	ReplicationMode string     `json:"replication_mode"`
	Bindings        []string   `json:"bindings"`    // "PORT vlan N" on this physical switch
	LocalMACs       []MACEntry `json:"local_macs"`  // Ucast_Macs_Local: learned by the switch
	RemoteMACs      []MACEntry `json:"remote_macs"` // Ucast_Macs_Remote: told to the switch
	Flood           []string   `json:"flood"`       // Mcast_Macs_Remote unknown-dst locators
}

// MACEntry is one unicast MAC row: the MAC, its IP if reported, and the
// VTEP (locator) it sits behind.
type MACEntry struct {
	MAC     string `json:"mac"`
	IP      string `json:"ip,omitempty"`
	Locator string `json:"locator"`
}

// Show reads the database and describes physical switch physicalSwitch as
// seen by host of topology: every logical switch bound on its ports, and
// every one of ours.
func (c *Client) Show(ctx context.Context, topology, host, physicalSwitch string) (*State, error) {
	if c.lean {
		return nil, fmt.Errorf("internal error: show on a client that does not read the local MACs")
	}
	snap, err := c.read(ctx, true)
	if err != nil {
		return nil, err
	}
	x := snap.index()
	ps := x.switchNamed[physicalSwitch]
	if ps == nil {
		return nil, fmt.Errorf("the hardware VTEP's database at %s has no physical switch %q", c.endpoint, physicalSwitch)
	}
	st := &State{Topology: topology, Host: host, PhysicalSwitch: ps.Name, Description: ps.Description,
		TunnelIPs: slices.Sorted(slices.Values(ps.TunnelIPs))}
	ports := x.switchPorts(ps)
	st.Ports = slices.Sorted(maps.Keys(ports))
	bindings := map[string][]string{} // logical switch UUID -> "PORT vlan N"
	for _, name := range st.Ports {
		port := ports[name]
		for _, vlan := range slices.Sorted(maps.Keys(port.VLANBindings)) {
			u := port.VLANBindings[vlan]
			bindings[u] = append(bindings[u], fmt.Sprintf("%s vlan %d", name, vlan))
		}
	}
	m := marks{owner: topology, host: host}
	for _, ls := range x.lswitches {
		if _, bound := bindings[ls.UUID]; bound || m.owns(ls) {
			st.Switches = append(st.Switches, x.switchState(ls, m, bindings[ls.UUID]))
		}
	}
	slices.SortFunc(st.Switches, func(a, b SwitchState) int {
		return cmp.Or(cmp.Compare(a.TunnelKey, b.TunnelKey), strings.Compare(a.Name, b.Name))
	})
	return st, nil
}

func (x *index) switchState(ls *hwvtep.LogicalSwitch, m marks, bindings []string) SwitchState {
	s := SwitchState{Name: ls.Name, Ours: m.owns(ls), TunnelKey: -1, ReplicationMode: "service_node", Bindings: bindings}
	if s.Ours {
		s.Network = ls.OtherConfig[ovsdb.KeyNetwork]
	}
	if ls.TunnelKey != nil {
		s.TunnelKey = *ls.TunnelKey
	}
	if ls.ReplicationMode != nil {
		s.ReplicationMode = *ls.ReplicationMode
	}
	for _, r := range x.ucastLocal {
		if r.LogicalSwitch == ls.UUID {
			s.LocalMACs = append(s.LocalMACs, MACEntry{MAC: r.MAC, IP: r.Ipaddr, Locator: x.locatorAddr(r.Locator)})
		}
	}
	for _, r := range x.ucastRemote {
		if r.LogicalSwitch == ls.UUID {
			s.RemoteMACs = append(s.RemoteMACs, MACEntry{MAC: r.MAC, IP: r.Ipaddr, Locator: x.locatorAddr(r.Locator)})
		}
	}
	for _, r := range x.mcastRemote {
		if r.LogicalSwitch == ls.UUID && r.MAC == UnknownDst {
			s.Flood = append(s.Flood, x.setAddrs(r.LocatorSet)...)
		}
	}
	byMAC := func(a, b MACEntry) int { return strings.Compare(a.MAC, b.MAC) }
	slices.SortFunc(s.LocalMACs, byMAC)
	slices.SortFunc(s.RemoteMACs, byMAC)
	return s
}

// Package hwvtep configures hardware VTEPs (top-of-rack switches, or OVS's
// VTEP emulator ovs-vtep) through the hardware_vtep OVSDB schema they serve:
// for a host of the topology with hardware_vtep, one Logical_Switch per
// network with ports on it (tunnel_key = VNI, head-end replication), the
// physical port/VLAN bindings of the file, a Physical_Locator per peer VTEP,
// and the unknown-dst flood list — the same list table 21 floods to on the
// OVS hosts. It reconciles in one transaction, idempotently, and never
// changes what it did not create.
//
// Ownership. Of the tables written here, only Logical_Switch has a column
// for marks: its other_config carries ovsdb.KeyOwner (the topology),
// ovsdb.KeyHost (the host) and ovsdb.KeyNetwork, as external_ids do on OVS
// hosts. Everything else is ours by reference to one of our logical
// switches: a vlan_bindings entry whose value is one, an *_Macs_Remote row
// whose logical_switch is one. Locators and locator sets are not root
// tables: OVSDB collects them when nothing refers to them any more, and an
// existing locator for a VTEP is reused, never modified. The switch's rows
// (Physical_Switch, Physical_Port, Tunnel, the *_Macs_Local rows it learns
// for other logical switches) are never changed, save the vlan_bindings
// entries of our own.
package hwvtep

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// UnknownDst is the MAC column value of the Mcast_Macs_Remote row that
// lists where a logical switch floods frames to unknown destinations.
const UnknownDst = "unknown-dst"

// Config is what a hardware VTEP's database must hold for one host of a
// topology: a pure function of the topology and the host (Desired).
type Config struct {
	Topology       string
	Host           string
	PhysicalSwitch string     // the Physical_Switch row's name
	VTEP           netip.Addr // the host's tunnel address
	Switches       []LogicalSwitch
}

// LogicalSwitch is one network on the hardware VTEP.
type LogicalSwitch struct {
	// Name is the Logical_Switch row's name: the network's name.
	Name    string
	Network string
	VNI     uint32 // the tunnel_key
	// Bindings are the (physical port, VLAN) pairs bound to it, sorted.
	Bindings []Binding
	// Flood are the VTEPs of the other hosts with ports in the network,
	// sorted: the unknown-dst locators (head-end replication). Empty when
	// the network never leaves the switch.
	Flood []netip.Addr
}

// Binding is one VLAN of one physical port bound to a logical switch.
type Binding struct {
	Port string
	VLAN uint16 // 0: untagged frames
}

func (b Binding) String() string { return fmt.Sprintf("%s vlan %d", b.Port, b.VLAN) }

// Desired computes the configuration of hardware VTEP h of topology t:
// one logical switch per network with a port on h, sorted by VNI. It fails
// when h is not a hardware VTEP of t.
func Desired(t *topology.Topology, h *topology.Host) (Config, error) {
	if t == nil || h == nil || t.Host(h.Name) != h {
		return Config{}, fmt.Errorf("hardware VTEP configuration: host is not one of the topology's")
	}
	if !h.IsHardwareVTEP() {
		return Config{}, fmt.Errorf("hardware VTEP configuration: host %s has no hardware_vtep", h.Name)
	}
	c := Config{Topology: t.Name, Host: h.Name, PhysicalSwitch: h.HardwareVTEP.PhysicalSwitch, VTEP: h.VTEP}
	for _, n := range t.NetworksOn(h) {
		ls := LogicalSwitch{Name: n.Name, Network: n.Name, VNI: n.VNI}
		for _, p := range n.PortsOn(h) {
			ls.Bindings = append(ls.Bindings, Binding{Port: p.Name, VLAN: p.VLAN})
		}
		slices.SortFunc(ls.Bindings, func(a, b Binding) int {
			return cmp.Or(strings.Compare(a.Port, b.Port), cmp.Compare(a.VLAN, b.VLAN))
		})
		for _, peer := range t.FloodPeers(h, n) {
			ls.Flood = append(ls.Flood, peer.VTEP)
		}
		slices.SortFunc(ls.Flood, netip.Addr.Compare)
		ls.Flood = slices.Compact(ls.Flood)
		c.Switches = append(c.Switches, ls)
	}
	return c, nil
}

// Locators are the peer VTEPs of every logical switch of c, sorted, once each.
func (c Config) Locators() []netip.Addr {
	var out []netip.Addr
	for _, ls := range c.Switches {
		out = append(out, ls.Flood...)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

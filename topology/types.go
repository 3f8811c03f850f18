// Package topology holds the declarative description of a VXLAN overlay: the
// file format (raw YAML), its validation, and the resolved, typed values that
// the OVSDB reconciler, the flow compiler and the lab consume.
package topology

import (
	"net"
	"net/netip"
)

// Mode says how a host's br-tun unicast table (table 20) is filled.
type Mode string

const (
	// ModeLearn fills table 20 with learn() from traffic arriving on tunnels.
	ModeLearn Mode = "learn"
	// ModeController lets the ovs-vxctl controller install table 20 entries.
	ModeController Mode = "controller"
)

// Datapath is the OVS datapath type of the bridges ovs-vxctl creates.
type Datapath string

const (
	// DatapathSystem is the kernel datapath (OVS datapath_type "system").
	DatapathSystem Datapath = "system"
	// DatapathNetdev is the userspace datapath (OVS datapath_type "netdev").
	DatapathNetdev Datapath = "netdev"
)

// PortType says what a network port is on its host.
type PortType string

const (
	// PortVM is an existing interface (a VM's tap or a veth) attached to br-int.
	PortVM PortType = "vm"
	// PortInternal is an OVS internal port created on br-int, addressed on the host.
	PortInternal PortType = "internal"
)

// Defaults applied to hosts that do not override them.
const (
	DefaultMode         = ModeLearn
	DefaultDstPort      = 4789
	DefaultDatapath     = DatapathSystem
	DefaultLearnTimeout = 300
)

// Topology is a validated topology file. Slices keep the file's order.
type Topology struct {
	Name       string
	Controller string // "tcp:IP:PORT" or "ssl:IP:PORT"; empty when not set
	// Controllers are every controller target, one per replica, in the
	// file's order; Controller is the first. One target when the file
	// gives a single string, none when it gives no controller.
	Controllers []string
	// Directory are the endpoints ("tcp:IP:PORT" or "ssl:IP:PORT") of the
	// clustered OVSDB the controller replicas share; empty when not set.
	Directory []string
	Hosts     []*Host
	Networks  []*Network
}

// Host is one VTEP of the overlay.
type Host struct {
	Name         string
	VTEP         netip.Addr
	Managed      bool
	Mode         Mode
	DstPort      uint16 // the host's own port (explicit or inherited from defaults)
	DstPortSet   bool   // true when the host itself declared dst_port
	Datapath     Datapath
	LearnTimeout uint16 // seconds
	Routes       []Route
	// HardwareVTEP is set on a hardware VTEP (managed: false), whose
	// switch apply configures through the hardware_vtep schema; nil
	// elsewhere.
	HardwareVTEP *HardwareVTEP
}

// Route is a kernel route that apply installs on a host.
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

// Network is one virtual L2 network (one VNI).
type Network struct {
	Name string
	VNI  uint32
	// MTU is the network's declared MTU; 0 when not declared: apply then
	// uses EffectiveMTU of the host's underlay.
	MTU   int
	Ports []*Port
}

// Port is one attachment of a network on a host.
type Port struct {
	Network *Network
	Host    *Host
	Name    string
	Type    PortType
	MAC     net.HardwareAddr // nil when not declared
	IP      netip.Prefix     // !IsValid() when not declared
	Gateway netip.Addr       // !IsValid() when not declared
	// IfaceID, when not empty, binds the port to whichever interface on
	// br-int carries external_ids:iface-id=IfaceID (as libvirt, Nova and
	// OVN plug VMs) instead of the interface called Name.
	IfaceID string
	// VLAN is, on a hardware VTEP, the VLAN of physical port Name bound to
	// the network (0: untagged frames); always 0 elsewhere.
	VLAN uint16
}

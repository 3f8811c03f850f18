package ovsdb

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Kinds of port ovs-vxctl creates; they only shape change descriptions.
const (
	kindLocal    = "local"
	kindPatch    = "patch"
	kindTunnel   = "vxlan"
	kindVM       = "vm"
	kindInternal = "internal"
)

// bridgeOtherConfigKeys are the other_config keys ovs-vxctl manages on its
// bridges: it sets them when wanted and removes them otherwise.
var bridgeOtherConfigKeys = []string{"disable-in-band", "datapath-id"}

// ifaceOptionKeys are the options keys ovs-vxctl manages on its interfaces.
var ifaceOptionKeys = []string{"peer", "remote_ip", "key", "dst_port"}

// wantBridge is the desired state of one bridge of ours.
type wantBridge struct {
	name         string
	datapathType string
	failMode     string
	protocols    []string
	otherConfig  map[string]string
	externalIDs  map[string]string
	controllers  []*wantController // one per controller target; none in learn mode
	ports        []*wantPort       // the bridge's local port first
	bindings     []*wantBinding    // br-int: the ports bound by iface_id
}

// Connection settings of every Controller row ovs-vxctl creates.
const (
	// ControllerRateLimit is controller_rate_limit: at most this many
	// packet-ins per second go to the controller (OVS queues and then drops
	// the excess), so that a flood of new source MACs cannot overload it.
	ControllerRateLimit = 1000
	// ControllerBurstLimit is controller_burst_limit: how many packet-ins
	// beyond the rate OVS may send in a burst.
	ControllerBurstLimit = 250
	// ControllerInactivityProbe is inactivity_probe in milliseconds: after
	// this long without a message OVS sends an echo request and, without a
	// reply, reconnects. It also bounds how long a dead controller goes
	// unnoticed.
	ControllerInactivityProbe = 5000
)

// wantController is one desired Controller row of br-int or of br-tun.
type wantController struct {
	target          string
	connectionMode  string
	rateLimit       int
	burstLimit      int
	inactivityProbe int
	externalIDs     map[string]string
}

// summary is the detail shown on a "+ controller" line.
func (k *wantController) summary() string {
	return fmt.Sprintf("(controller_rate_limit=%d/s controller_burst_limit=%d inactivity_probe=%dms)",
		k.rateLimit, k.burstLimit, k.inactivityProbe)
}

// wantPort is the desired state of one Port row of ours and of its only
// Interface, which has the same name.
type wantPort struct {
	bridge      string
	name        string
	kind        string
	tag         *int              // access VLAN; nil for untagged ports
	externalIDs map[string]string // of the Port and of its Interface

	ifType        string
	options       map[string]string
	ofportRequest *int
	mac           *string // Interface.mac: an internal port's declared MAC
	mtuRequest    *int    // Interface.mtu_request: an internal port's network MTU
}

// summary is the detail shown on a "+ port" line.
func (p *wantPort) summary() string {
	var parts []string
	switch p.kind {
	case kindLocal:
		return "(internal, bridge local port)"
	case kindPatch:
		parts = append(parts, "patch", "peer="+p.options["peer"])
	case kindTunnel:
		parts = append(parts, "vxlan", "remote_ip="+p.options["remote_ip"],
			"dst_port="+p.options["dst_port"], "key="+p.options["key"])
	case kindVM, kindInternal:
		parts = append(parts, p.kind, "network="+p.externalIDs[KeyNetwork], "vni="+p.externalIDs[KeyVNI])
	}
	if p.tag != nil {
		parts = append(parts, fmt.Sprintf("tag=%d", *p.tag))
	}
	if p.ofportRequest != nil {
		parts = append(parts, fmt.Sprintf("ofport=%d", *p.ofportRequest))
	}
	if p.mtuRequest != nil {
		parts = append(parts, fmt.Sprintf("mtu=%d", *p.mtuRequest))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

// desired computes what host h of topology t must look like in OVSDB, given
// its allocation. It is a pure function: the same inputs give the same
// bridges and ports in the same order. Like the flow compiler it is built of
// one step per part (bridges, controllers, patch pair, tunnels, network
// ports); the allocation's problems are collected and reported together.
func desired(t *topology.Topology, h *topology.Host, alloc topology.Allocation) ([]*wantBridge, error) {
	if err := checkNames(t, h); err != nil {
		return nil, err
	}
	if h.Datapath == "" {
		return nil, fmt.Errorf("host %s: no datapath type", h.Name)
	}
	d := &desiredHost{t: t, h: h, alloc: alloc, m: marks{owner: t.Name, host: h.Name}}
	brInt, brTun := d.bridge(topology.BridgeInt), d.bridge(topology.BridgeTun)
	if err := d.controllers(brInt, brTun); err != nil {
		return nil, err
	}
	d.patchPair(brInt, brTun)
	brTun.ports = append(brTun.ports, d.tunnelPorts()...)
	d.checkLocalVLANs()
	brInt.ports = append(brInt.ports, d.networkPorts()...)
	brInt.bindings = d.boundPorts()
	if vlans := formatLocalVLANs(alloc.LocalVLAN); vlans != "" {
		brInt.externalIDs[KeyLocalVLANs] = vlans
	}
	d.placePorts(brInt, brTun)
	if len(d.errs) > 0 {
		return nil, fmt.Errorf("host %s of topology %s: %w", h.Name, t.Name, errors.Join(d.errs...))
	}
	return []*wantBridge{brInt, brTun}, nil
}

// desiredHost is what desired's steps share: the host, its allocation, the
// ownership marks of every row, and the problems found so far, so that one
// run reports all of them.
type desiredHost struct {
	t     *topology.Topology
	h     *topology.Host
	alloc topology.Allocation
	m     marks
	errs  []error
}

// bridge is a bridge of ours as ovs-vsctl add-br makes it, with what keeps
// its flows ours alone: fail_mode secure, OpenFlow 1.3, no in-band control,
// and the datapath ID the controller identifies it by.
func (d *desiredHost) bridge(name string) *wantBridge {
	return &wantBridge{
		name:         name,
		datapathType: string(d.h.Datapath),
		failMode:     vswitch.BridgeFailModeSecure,
		// 1.0 too, as Neutron does, so that plain ovs-ofctl works;
		// ovs-vxctl itself speaks 1.3.
		protocols: []string{vswitch.BridgeProtocolsOpenflow10, vswitch.BridgeProtocolsOpenflow13},
		otherConfig: map[string]string{
			// In-band control would add hidden flows to our tables.
			"disable-in-band": "true",
			"datapath-id":     datapathIDString(d.t.Name, d.h.Name, name),
		},
		externalIDs: d.m.ids(),
		ports: []*wantPort{{
			// Like ovs-vsctl add-br: the bridge's own internal port.
			name: name, kind: kindLocal, ifType: "internal", externalIDs: d.m.ids(),
		}},
	}
}

// controllers gives both bridges one Controller row per controller target
// in controller mode: every replica gets a connection, and OpenFlow roles
// decide which one programs the switch. Both bridges: OVS forgets flows
// when ovs-vswitchd restarts, and the controller restores br-int's as well
// as br-tun's when they reconnect.
func (d *desiredHost) controllers(bridges ...*wantBridge) error {
	if d.h.Mode != topology.ModeController {
		return nil
	}
	targets := d.t.ControllerTargets()
	if len(targets) == 0 {
		return fmt.Errorf("host %s is in controller mode but the topology names no controller", d.h.Name)
	}
	for _, br := range bridges {
		for _, target := range targets {
			br.controllers = append(br.controllers, &wantController{
				target:          target,
				connectionMode:  vswitch.ControllerConnectionModeOutOfBand,
				rateLimit:       ControllerRateLimit,
				burstLimit:      ControllerBurstLimit,
				inactivityProbe: ControllerInactivityProbe,
				externalIDs:     d.m.ids(),
			})
		}
	}
	return nil
}

// patchPair joins br-int and br-tun. br-tun's end gets the fixed ofport the
// compiled flows name.
func (d *desiredHost) patchPair(brInt, brTun *wantBridge) {
	patchOF := topology.PatchOFPort
	brInt.ports = append(brInt.ports, &wantPort{
		name: topology.PatchInt, kind: kindPatch, ifType: "patch",
		options: map[string]string{"peer": topology.PatchTun}, externalIDs: d.m.ids(),
	})
	brTun.ports = append(brTun.ports, &wantPort{
		name: topology.PatchTun, kind: kindPatch, ifType: "patch",
		options: map[string]string{"peer": topology.PatchInt}, ofportRequest: &patchOF, externalIDs: d.m.ids(),
	})
}

// tunnelPorts are br-tun's VXLAN ports, one per peer, at the ofports the
// allocation gives (the compiled flows name them); an allocation that does
// not give each peer its own ofport in range is a problem.
func (d *desiredHost) tunnelPorts() []*wantPort {
	var out []*wantPort
	usedOF := map[uint32]string{}
	for _, peer := range d.t.Peers(d.h) {
		of, ok := d.alloc.TunnelOFPort[peer.Name]
		switch {
		case !ok:
			d.errs = append(d.errs, fmt.Errorf("allocation has no tunnel ofport for peer %s", peer.Name))
			continue
		case of < topology.FirstTunnelOFPort || of > topology.LastTunnelOFPort:
			d.errs = append(d.errs, fmt.Errorf("allocation gives peer %s tunnel ofport %d, outside %d..%d",
				peer.Name, of, topology.FirstTunnelOFPort, topology.LastTunnelOFPort))
			continue
		case usedOF[of] != "":
			d.errs = append(d.errs, fmt.Errorf("allocation gives tunnel ofport %d to both %s and %s", of, usedOF[of], peer.Name))
			continue
		}
		usedOF[of] = peer.Name
		if !peer.VTEP.IsValid() {
			d.errs = append(d.errs, fmt.Errorf("peer %s has no VTEP address", peer.Name))
			continue
		}
		out = append(out, d.tunnelPort(peer, of))
	}
	return out
}

// tunnelPort is the VXLAN port towards peer. key=flow: the flows set the VNI.
func (d *desiredHost) tunnelPort(peer *topology.Host, of uint32) *wantPort {
	ofp := int(of)
	return &wantPort{
		name: topology.TunnelPortName(peer.Name), kind: kindTunnel, ifType: "vxlan",
		options: map[string]string{
			"remote_ip": peer.VTEP.String(),
			"key":       "flow",
			"dst_port":  strconv.Itoa(int(topology.PairDstPort(d.h, peer))),
		},
		ofportRequest: &ofp,
		externalIDs:   d.m.ids(KeyPeer, peer.Name),
	}
}

// checkLocalVLANs reports local VLANs out of range or given to two VNIs:
// tenants sharing a VLAN on br-int would see each other's frames.
func (d *desiredHost) checkLocalVLANs() {
	usedVLAN := map[uint16]uint32{}
	for _, vni := range slices.Sorted(maps.Keys(d.alloc.LocalVLAN)) {
		v := d.alloc.LocalVLAN[vni]
		if v < topology.FirstLocalVLAN || v > topology.LastLocalVLAN {
			d.errs = append(d.errs, fmt.Errorf("allocation gives VNI %d local VLAN %d, outside %d..%d",
				vni, v, topology.FirstLocalVLAN, topology.LastLocalVLAN))
		} else if other, dup := usedVLAN[v]; dup {
			d.errs = append(d.errs, fmt.Errorf("allocation gives local VLAN %d to both VNI %d and VNI %d", v, other, vni))
		}
		usedVLAN[v] = vni
	}
}

// networkPorts are br-int's VM and internal ports, each an access port of
// its network's local VLAN.
func (d *desiredHost) networkPorts() []*wantPort {
	var out []*wantPort
	for _, p := range d.t.PortsOn(d.h) {
		if p.IfaceID != "" {
			continue // bound, not created: see boundPorts
		}
		vlan, ok := d.alloc.LocalVLAN[p.Network.VNI]
		if !ok {
			d.errs = append(d.errs, fmt.Errorf("allocation has no local VLAN for VNI %d (network %s)", p.Network.VNI, p.Network.Name))
			continue
		}
		if wp := d.networkPort(p, int(vlan)); wp != nil {
			out = append(out, wp)
		}
	}
	return out
}

// networkPort is port p tagged with VLAN tag, or nil (a problem recorded)
// for a type ovs-vxctl does not know.
func (d *desiredHost) networkPort(p *topology.Port, tag int) *wantPort {
	wp := &wantPort{
		name: p.Name, tag: &tag,
		externalIDs: d.m.ids(KeyNetwork, p.Network.Name, KeyVNI, strconv.FormatUint(uint64(p.Network.VNI), 10)),
	}
	switch p.Type {
	case topology.PortVM, "":
		// An existing kernel interface: OVS's "system" type is "".
		wp.kind, wp.ifType = kindVM, ""
	case topology.PortInternal:
		wp.kind, wp.ifType = kindInternal, "internal"
		if p.MAC != nil {
			// OVS gives the internal port this MAC; the controller's
			// entries for it then match real frames.
			mac := p.MAC.String()
			wp.mac = &mac
		}
	default:
		d.errs = append(d.errs, fmt.Errorf("port %s: unknown type %q", p.Name, p.Type))
		return nil
	}
	return wp
}

// placePorts records each port's bridge and reports a name used twice: port
// and interface names are unique across all bridges of a switch.
func (d *desiredHost) placePorts(bridges ...*wantBridge) {
	seen := map[string]string{}
	for _, b := range bridges {
		for _, p := range b.ports {
			p.bridge = b.name
			if what, dup := seen[p.name]; dup {
				d.errs = append(d.errs, fmt.Errorf("port name %s is used twice on host %s (%s and %s)", p.name, d.h.Name, what, p.kind))
			}
			seen[p.name] = p.kind
		}
	}
}

// checkNames rejects a topology or host without the names the ownership
// marks are made of.
func checkNames(t *topology.Topology, h *topology.Host) error {
	switch {
	case t == nil || h == nil:
		return errors.New("no topology or host given")
	case t.Name == "":
		return errors.New("topology has no name: ownership marks need one")
	case h.Name == "":
		return errors.New("host has no name: ownership marks need one")
	case t.Host(h.Name) != h:
		return fmt.Errorf("host %s is not a host of topology %s", h.Name, t.Name)
	case !h.Managed:
		return fmt.Errorf("host %s is not managed by ovs-vxctl (managed: false)", h.Name)
	}
	return nil
}

// formatLocalVLANs renders a VNI -> VLAN map as KeyLocalVLANs stores it.
func formatLocalVLANs(m map[uint32]uint16) string {
	vnis := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(vnis))
	for i, vni := range vnis {
		parts[i] = fmt.Sprintf("%d=%d", vni, m[vni])
	}
	return strings.Join(parts, ",")
}

// parseLocalVLANs reads KeyLocalVLANs back.
func parseLocalVLANs(s string) (map[uint32]uint16, error) {
	out := map[uint32]uint16{}
	if s == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%s %q: entry %q is not VNI=VLAN", KeyLocalVLANs, s, pair)
		}
		vni, err := strconv.ParseUint(k, 10, 32)
		if err != nil || vni == 0 || vni > 1<<24-1 {
			return nil, fmt.Errorf("%s %q: bad VNI %q", KeyLocalVLANs, s, k)
		}
		vlan, err := strconv.ParseUint(v, 10, 16)
		if err != nil || vlan < topology.FirstLocalVLAN || vlan > topology.LastLocalVLAN {
			return nil, fmt.Errorf("%s %q: bad local VLAN %q for VNI %d", KeyLocalVLANs, s, v, vni)
		}
		if _, dup := out[uint32(vni)]; dup {
			return nil, fmt.Errorf("%s %q: VNI %d appears twice", KeyLocalVLANs, s, vni)
		}
		out[uint32(vni)] = uint16(vlan)
	}
	return out, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}

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
	controller   *wantController // nil: no controller
	ports        []*wantPort     // the bridge's local port first
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

// wantController is the desired Controller row of br-int and of br-tun.
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
	return "(" + strings.Join(parts, " ") + ")"
}

// desired computes what host h of topology t must look like in OVSDB, given
// its allocation. It is a pure function: the same inputs give the same
// bridges and ports in the same order.
func desired(t *topology.Topology, h *topology.Host, alloc topology.Allocation) ([]*wantBridge, error) {
	if err := checkNames(t, h); err != nil {
		return nil, err
	}
	m := marks{owner: t.Name, host: h.Name}
	if h.Datapath == "" {
		return nil, fmt.Errorf("host %s: no datapath type", h.Name)
	}
	dp := string(h.Datapath)

	newBridge := func(name string) *wantBridge {
		return &wantBridge{
			name:         name,
			datapathType: dp,
			failMode:     vswitch.BridgeFailModeSecure,
			protocols:    []string{vswitch.BridgeProtocolsOpenflow13},
			// In-band control would add hidden flows to our tables.
			otherConfig: map[string]string{"disable-in-band": "true"},
			externalIDs: m.ids(),
			ports: []*wantPort{{
				// Like ovs-vsctl add-br: the bridge's own internal port.
				name: name, kind: kindLocal, ifType: "internal", externalIDs: m.ids(),
			}},
		}
	}
	brInt, brTun := newBridge(BridgeInt), newBridge(BridgeTun)
	brTun.otherConfig["datapath-id"] = datapathIDString(t.Name, h.Name, BridgeTun)
	brInt.otherConfig["datapath-id"] = datapathIDString(t.Name, h.Name, BridgeInt)
	if h.Mode == topology.ModeController {
		if t.Controller == "" {
			return nil, fmt.Errorf("host %s is in controller mode but the topology names no controller", h.Name)
		}
		// Both bridges: OVS forgets flows when ovs-vswitchd restarts, and the
		// controller restores br-int's as well as br-tun's when they reconnect.
		for _, br := range []*wantBridge{brInt, brTun} {
			br.controller = &wantController{
				target:          t.Controller,
				connectionMode:  vswitch.ControllerConnectionModeOutOfBand,
				rateLimit:       ControllerRateLimit,
				burstLimit:      ControllerBurstLimit,
				inactivityProbe: ControllerInactivityProbe,
				externalIDs:     m.ids(),
			}
		}
	}

	patchOF := topology.PatchOFPort
	brInt.ports = append(brInt.ports, &wantPort{
		name: PatchInt, kind: kindPatch, ifType: "patch",
		options: map[string]string{"peer": PatchTun}, externalIDs: m.ids(),
	})
	brTun.ports = append(brTun.ports, &wantPort{
		name: PatchTun, kind: kindPatch, ifType: "patch",
		options: map[string]string{"peer": PatchInt}, ofportRequest: &patchOF, externalIDs: m.ids(),
	})

	var errs []error
	usedOF := map[uint32]string{}
	for _, peer := range t.Peers(h) {
		of, ok := alloc.TunnelOFPort[peer.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("allocation has no tunnel ofport for peer %s", peer.Name))
			continue
		case of < topology.FirstTunnelOFPort || of > topology.LastTunnelOFPort:
			errs = append(errs, fmt.Errorf("allocation gives peer %s tunnel ofport %d, outside %d..%d",
				peer.Name, of, topology.FirstTunnelOFPort, topology.LastTunnelOFPort))
			continue
		case usedOF[of] != "":
			errs = append(errs, fmt.Errorf("allocation gives tunnel ofport %d to both %s and %s", of, usedOF[of], peer.Name))
			continue
		}
		usedOF[of] = peer.Name
		if !peer.VTEP.IsValid() {
			errs = append(errs, fmt.Errorf("peer %s has no VTEP address", peer.Name))
			continue
		}
		ofp := int(of)
		brTun.ports = append(brTun.ports, &wantPort{
			name: TunnelPortName(peer.Name), kind: kindTunnel, ifType: "vxlan",
			options: map[string]string{
				"remote_ip": peer.VTEP.String(),
				"key":       "flow",
				"dst_port":  strconv.Itoa(int(topology.PairDstPort(h, peer))),
			},
			ofportRequest: &ofp,
			externalIDs:   m.ids(KeyPeer, peer.Name),
		})
	}

	usedVLAN := map[uint16]uint32{}
	for _, vni := range slices.Sorted(maps.Keys(alloc.LocalVLAN)) {
		v := alloc.LocalVLAN[vni]
		if v < topology.FirstLocalVLAN || v > topology.LastLocalVLAN {
			errs = append(errs, fmt.Errorf("allocation gives VNI %d local VLAN %d, outside %d..%d",
				vni, v, topology.FirstLocalVLAN, topology.LastLocalVLAN))
		} else if other, dup := usedVLAN[v]; dup {
			errs = append(errs, fmt.Errorf("allocation gives local VLAN %d to both VNI %d and VNI %d", v, other, vni))
		}
		usedVLAN[v] = vni
	}
	for _, p := range t.PortsOn(h) {
		vlan, ok := alloc.LocalVLAN[p.Network.VNI]
		if !ok {
			errs = append(errs, fmt.Errorf("allocation has no local VLAN for VNI %d (network %s)", p.Network.VNI, p.Network.Name))
			continue
		}
		tag := int(vlan)
		wp := &wantPort{
			name: p.Name, tag: &tag,
			externalIDs: m.ids(KeyNetwork, p.Network.Name, KeyVNI, strconv.FormatUint(uint64(p.Network.VNI), 10)),
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
			errs = append(errs, fmt.Errorf("port %s: unknown type %q", p.Name, p.Type))
			continue
		}
		brInt.ports = append(brInt.ports, wp)
	}
	if vlans := formatLocalVLANs(alloc.LocalVLAN); vlans != "" {
		brInt.externalIDs[KeyLocalVLANs] = vlans
	}

	// Port and interface names are unique across all bridges of a switch.
	seen := map[string]string{}
	for _, b := range []*wantBridge{brInt, brTun} {
		for _, p := range b.ports {
			p.bridge = b.name
			if what, dup := seen[p.name]; dup {
				errs = append(errs, fmt.Errorf("port name %s is used twice on host %s (%s and %s)", p.name, h.Name, what, p.kind))
			}
			seen[p.name] = p.kind
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("host %s of topology %s: %w", h.Name, t.Name, errors.Join(errs...))
	}
	return []*wantBridge{brInt, brTun}, nil
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

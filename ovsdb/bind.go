package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Binding ports by iface_id. libvirt, Nova and OVN plug a VM by adding its
// tap to br-int with external_ids:iface-id on the Interface, under a name
// they choose. Such a Port is not ovs-vxctl's: binding changes exactly two
// things on it, the access VLAN tag and ovs-vxctl's own keys in its
// external_ids (the bound marks below, never KeyOwner/KeyHost, so that no
// code path that removes rows of ours can ever remove it). Unbinding puts
// the Port on DeadVLAN and removes those keys; the row itself is never
// deleted.
const (
	// KeyBoundOwner is on a bound Port: the topology that bound it.
	KeyBoundOwner = "ovs-vxctl-bound-owner"
	// KeyBoundHost is on a bound Port: the host within that topology.
	KeyBoundHost = "ovs-vxctl-bound-host"
	// KeyBoundPort is on a bound Port: the port's name in the file.
	KeyBoundPort = "ovs-vxctl-bound-port"

	// IfaceIDKey is the Interface external_ids key VMs are plugged with.
	IfaceIDKey = "iface-id"
	// AttachedMACKey is the Interface external_ids key holding the VM's
	// MAC, as libvirt and Nova set it.
	AttachedMACKey = "attached-mac"

	// DeadVLAN is the VLAN an unbound port is put on: no network uses it,
	// and OVS drops a tag-4095 access port's frames, as Neutron relies on.
	DeadVLAN = 4095
)

// wantBinding is a port of the topology bound by iface_id, as desired.
type wantBinding struct {
	name        string // the port's name in the file
	ifaceID     string
	network     string
	tag         int
	externalIDs map[string]string // our keys on the bound Port
}

// boundPorts are h's ports given by iface_id, each to be bound to its
// network's local VLAN. networkPorts leaves them out: ovs-vxctl creates no
// Port for them.
func (d *desiredHost) boundPorts() []*wantBinding {
	var out []*wantBinding
	for _, p := range d.t.PortsOn(d.h) {
		if p.IfaceID == "" {
			continue
		}
		vlan, ok := d.alloc.LocalVLAN[p.Network.VNI]
		if !ok {
			d.errs = append(d.errs, fmt.Errorf("allocation has no local VLAN for VNI %d (network %s)", p.Network.VNI, p.Network.Name))
			continue
		}
		out = append(out, &wantBinding{
			name: p.Name, ifaceID: p.IfaceID, network: p.Network.Name, tag: int(vlan),
			externalIDs: map[string]string{
				KeyBoundOwner: d.m.owner, KeyBoundHost: d.m.host, KeyBoundPort: p.Name,
				KeyNetwork: p.Network.Name, KeyVNI: strconv.FormatUint(uint64(p.Network.VNI), 10),
			},
		})
	}
	return out
}

// bound reports whether a Port with these external_ids is bound by us.
func (m marks) bound(ext map[string]string) bool {
	return ext[KeyBoundOwner] == m.owner && ext[KeyBoundHost] == m.host
}

// boundElsewhere describes the bound marks of another topology or host on
// a Port, or "" when it carries none or ours.
func (m marks) boundElsewhere(ext map[string]string) string {
	o, ok := ext[KeyBoundOwner]
	if !ok || m.bound(ext) {
		return ""
	}
	return fmt.Sprintf("it is bound by topology %q host %q", o, ext[KeyBoundHost])
}

// reconcileBindings binds every wanted iface_id port to the Ports on br-int
// whose single Interface carries its iface-id, and unbinds every Port bound
// earlier that no wanted port claims now (removed from the file, iface_id
// changed, or the Interface's iface-id changed).
func (p *planner) reconcileBindings(binds []*wantBinding) {
	byID := map[string]*wantBinding{}
	for _, b := range binds {
		byID[b.ifaceID] = b
	}
	kept := map[string]bool{} // Port UUIDs bound by this plan
	plugged := map[string]bool{}
	candidates := map[string][]*vswitch.Port{} // bindable Ports per iface-id, by interface name
	for _, name := range sortedKeys(p.snap.ifacesByName) {
		iface := p.snap.ifacesByName[name]
		b := byID[iface.ExternalIDs[IfaceIDKey]]
		if b == nil {
			continue
		}
		plugged[b.ifaceID] = true
		port := p.snap.portOfIface[iface.UUID]
		if why := p.unbindable(iface, port); why != "" {
			p.warn("port %s (iface-id %s): interface %s not bound: %s", b.name, b.ifaceID, iface.Name, why)
			continue
		}
		candidates[b.ifaceID] = append(candidates[b.ifaceID], port)
	}
	for _, b := range binds {
		if !plugged[b.ifaceID] {
			p.warn("port %s (iface-id %s): no interface carries external_ids:%s=%s yet: it is bound when it is plugged into %s",
				b.name, b.ifaceID, IfaceIDKey, b.ifaceID, topology.BridgeInt)
		}
		if port := p.pickBound(b, candidates[b.ifaceID]); port != nil {
			kept[port.UUID] = true
			p.bind(b, port)
		}
	}
	p.unbindAll(kept)
}

// pickBound chooses which of the Ports carrying b's iface-id to bind. One
// iface-id names one VM, so two interfaces carrying it are a mistake (or a
// replug in progress): the one already bound stays bound and the newcomer
// waits, unbound, until the old one is unplugged; when none is bound yet,
// none is, rather than guessing which tap the VM is behind (two ports
// sending as one declared MAC would defeat its pinning).
func (p *planner) pickBound(b *wantBinding, ports []*vswitch.Port) *vswitch.Port {
	if len(ports) <= 1 {
		if len(ports) == 1 {
			return ports[0]
		}
		return nil
	}
	names := make([]string, len(ports))
	var bound *vswitch.Port
	for i, port := range ports {
		names[i] = port.Name
		if bound == nil && p.m.bound(port.ExternalIDs) {
			bound = port
		}
	}
	if bound != nil {
		p.warn("port %s (iface-id %s): carried by interfaces %s: %s stays bound, the others are not bound until it is unplugged",
			b.name, b.ifaceID, strings.Join(names, ", "), bound.Name)
		return bound
	}
	p.warn("port %s (iface-id %s): carried by interfaces %s: none bound until only one carries it",
		b.name, b.ifaceID, strings.Join(names, ", "))
	return nil
}

// unbindable says why port, the Port of iface, an interface carrying a
// wanted iface-id, cannot be bound, or "".
func (p *planner) unbindable(iface *vswitch.Interface, port *vswitch.Port) string {
	if port == nil {
		return "it is on no port"
	}
	br := p.snap.bridgeOfPort[port.UUID]
	switch {
	case br == nil:
		return "its port " + port.Name + " is on no bridge"
	case br.Name != topology.BridgeInt:
		return fmt.Sprintf("its port %s sits on bridge %s, not %s", port.Name, br.Name, topology.BridgeInt)
	case port.Name == br.Name:
		return fmt.Sprintf("its port %s is the bridge's own local port", port.Name)
	case port.ExternalIDs[KeyOwner] != "" || iface.ExternalIDs[KeyOwner] != "":
		// Ours or another topology's: a row ovs-vxctl created for a port
		// of a file is never rebound to another.
		return fmt.Sprintf("its port %s was created by ovs-vxctl for a port of a file (topology %q host %q)",
			port.Name, port.ExternalIDs[KeyOwner]+iface.ExternalIDs[KeyOwner], port.ExternalIDs[KeyHost]+iface.ExternalIDs[KeyHost])
	case notAVM(iface.Type):
		return fmt.Sprintf("it is a %s interface, which no VM is behind", iface.Type)
	case len(port.Interfaces) != 1:
		return fmt.Sprintf("its port %s has %d interfaces (a bond)", port.Name, len(port.Interfaces))
	case port.VLANMode != nil && *port.VLANMode != vswitch.PortVLANModeAccess:
		// A trunk ignores the tag: binding would seem to isolate the VM
		// and would not.
		return fmt.Sprintf("its port %s has vlan_mode %s, not access", port.Name, *port.VLANMode)
	case port.VLANMode == nil && len(port.Trunks) > 0:
		// Without vlan_mode, a tag would turn this trunk into an access
		// port: a change of the foreign row beyond isolating a VM.
		return fmt.Sprintf("its port %s is a trunk (trunks %v)", port.Name, port.Trunks)
	}
	return p.m.boundElsewhere(port.ExternalIDs)
}

// notAVM reports the Interface types that carry no VM: a tag on their
// Port would cut a bridge or a tunnel off, not isolate a VM.
func notAVM(ifaceType string) bool {
	switch ifaceType {
	case "patch", "vxlan", "geneve", "gre", "ip6gre", "erspan", "ip6erspan", "stt", "lisp", "gtpu", "bareudp", "srv6":
		return true
	}
	return false
}

// bind sets b's local VLAN tag and our keys on port, and nothing else.
func (p *planner) bind(b *wantBinding, port *vswitch.Port) {
	subject := fmt.Sprintf("port %s %s (iface-id %s)", topology.BridgeInt, port.Name, b.ifaceID)
	row := &vswitch.Port{UUID: port.UUID}
	var quiet map[string]bool
	fresh := !p.m.bound(port.ExternalIDs)
	if fresh {
		// One line says it all; the keys would only repeat it.
		p.change("~ %s bound as %s (network %s, tag %s -> %d)", subject, b.name, b.network, showIntPtr(port.Tag), b.tag)
		quiet = map[string]bool{}
		for k := range b.externalIDs {
			quiet[k] = true
		}
	}
	if port.Tag == nil || *port.Tag != b.tag {
		if !fresh {
			p.change("~ %s tag %s -> %d", subject, showIntPtr(port.Tag), b.tag)
		}
		tag := b.tag
		row.Tag = &tag
		p.b.update(row, &row.Tag)
	}
	p.reconcileMap(subject, "external_ids", row, &row.ExternalIDs, port.ExternalIDs, b.externalIDs, isOurKey, quiet)
}

// unbindAll unbinds every Port bound by us but those in kept: on br-int it
// goes to DeadVLAN, so the VM behind it reaches no network; anywhere it
// loses our keys.
func (p *planner) unbindAll(kept map[string]bool) {
	for _, name := range sortedKeys(p.snap.portsByName) {
		port := p.snap.portsByName[name]
		if kept[port.UUID] || !p.m.bound(port.ExternalIDs) {
			continue
		}
		row := &vswitch.Port{UUID: port.UUID}
		subject := "port " + port.Name
		if br := p.snap.bridgeOfPort[port.UUID]; br != nil {
			subject = fmt.Sprintf("port %s %s", br.Name, port.Name)
			if br.Name == topology.BridgeInt && (port.Tag == nil || *port.Tag != DeadVLAN) {
				tag := DeadVLAN
				row.Tag = &tag
				p.b.update(row, &row.Tag)
			}
		}
		p.change("~ %s unbound from %s (tag %s -> %d)", subject, port.ExternalIDs[KeyBoundPort], showIntPtr(port.Tag), DeadVLAN)
		quiet := map[string]bool{}
		for k := range port.ExternalIDs {
			quiet[k] = true
		}
		p.reconcileMap(subject, "external_ids", row, &row.ExternalIDs, port.ExternalIDs, nil, isOurKey, quiet)
	}
}

// warn records something apply lets pass but someone should know.
func (p *planner) warn(format string, args ...any) {
	p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf(format, args...))
}

// Binding is what OVSDB holds for one port of the topology given by
// iface_id.
type Binding struct {
	Port    string // the port's name in the file
	Network string
	IfaceID string
	// Interface is the name of the interface carrying the iface-id (the
	// first by name if several do); "" while none is plugged.
	Interface string
	// OFPort is the interface's OpenFlow port; 0 while unattached.
	OFPort int
	// AttachedMAC is the interface's external_ids:attached-mac, "" when
	// absent.
	AttachedMAC string
	// Tag is its Port's tag, 0 when it has none.
	Tag int
	// Bound says that its Port carries our marks for this port.
	Bound bool
}

// Bindings reads, for every port of host h given by iface_id, the
// interface it is (or would be) bound to.
func (c *Client) Bindings(ctx context.Context, t *topology.Topology, h *topology.Host) ([]Binding, error) {
	if t == nil || h == nil {
		return nil, errors.New("reading bindings needs a topology and a host")
	}
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	return snap.bindings(marks{owner: t.Name, host: h.Name}, t.PortsOn(h)), nil
}

func (s *snapshot) bindings(m marks, ports []*topology.Port) []Binding {
	var out []Binding
	for _, p := range ports {
		if p.IfaceID == "" {
			continue
		}
		b := Binding{Port: p.Name, Network: p.Network.Name, IfaceID: p.IfaceID}
		for _, name := range sortedKeys(s.ifacesByName) {
			iface := s.ifacesByName[name]
			if iface.ExternalIDs[IfaceIDKey] != p.IfaceID {
				continue
			}
			b.Interface, b.OFPort, b.AttachedMAC = iface.Name, ofport(iface), iface.ExternalIDs[AttachedMACKey]
			if port := s.portOfIface[iface.UUID]; port != nil {
				if port.Tag != nil {
					b.Tag = *port.Tag
				}
				b.Bound = m.bound(port.ExternalIDs) && port.ExternalIDs[KeyBoundPort] == p.Name
			}
			break
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Binding) int { return strings.Compare(a.Port, b.Port) })
	return out
}

// bindingsOf collects the bindings of the desired bridges.
func bindingsOf(want []*wantBridge) []*wantBinding {
	var out []*wantBinding
	for _, w := range want {
		out = append(out, w.bindings...)
	}
	return out
}

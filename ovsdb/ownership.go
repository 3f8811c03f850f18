package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// What a HostInterface is for.
const (
	// IfaceVM is a vm port: an existing kernel interface attached to br-int.
	IfaceVM = "vm"
	// IfaceInternal is an internal port of the topology: OVS creates its
	// kernel interface, apply gives it its address.
	IfaceInternal = "internal"
	// IfaceLocal is a bridge's own internal port, named like the bridge.
	IfaceLocal = "local"
	// IfaceOther is any other interface of ours: patch and tunnel ports,
	// which have no kernel interface of their name.
	IfaceOther = "other"
)

// HostInterface is what OVSDB holds for one interface of a host: whether
// ovs-vxctl's rows for it exist where they belong and what ovs-vswitchd made
// of them. Apply checks the kernel interface of every one it does not own
// yet before creating it, and every one's error after the transaction.
type HostInterface struct {
	Bridge string // the bridge it belongs on
	Name   string // port and interface name
	Kind   string // IfaceVM, IfaceInternal, IfaceLocal or IfaceOther
	// Owned says that ovs-vxctl's Port of that name, with an Interface of
	// that name, both carrying its marks, sit on its bridge (which is ours).
	Owned bool
	Type  string // Interface.type when Owned ("" is a system interface)
	// OFPort is Interface.ofport when Owned: 0 while ovs-vswitchd has not
	// attached it, -1 when it could not.
	OFPort int
	Error  string // Interface.error when Owned: why ovs-vswitchd could not
}

// Attached reports whether the interface is ours and ovs-vswitchd attached
// it without error.
func (i HostInterface) Attached() bool { return i.Owned && i.OFPort > 0 && i.Error == "" }

// settled reports whether ovs-vswitchd has said what became of it.
func (i HostInterface) settled() bool { return !i.Owned || i.OFPort != 0 || i.Error != "" }

// HostInterfaces lists the interfaces host h of topology t needs on its own
// kernel: the bridges' local ports and the topology's vm and internal ports,
// in that order, then every other interface of ours on our bridges.
func (c *Client) HostInterfaces(ctx context.Context, t *topology.Topology, h *topology.Host) ([]HostInterface, error) {
	if t == nil || h == nil {
		return nil, errors.New("listing interfaces needs a topology and a host")
	}
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	return snap.hostInterfaces(marks{owner: t.Name, host: h.Name}, wantedInterfaces(t, h)), nil
}

// wantedInterfaces are the interfaces of h that have a kernel interface of
// their name: the bridges' local ports, the vm and internal ports.
func wantedInterfaces(t *topology.Topology, h *topology.Host) []HostInterface {
	out := []HostInterface{
		{Bridge: topology.BridgeInt, Name: topology.BridgeInt, Kind: IfaceLocal},
		{Bridge: topology.BridgeTun, Name: topology.BridgeTun, Kind: IfaceLocal},
	}
	for _, p := range t.PortsOn(h) {
		if p.IfaceID != "" {
			continue // not an interface of its name: see Bindings
		}
		kind := IfaceVM
		if p.Type == topology.PortInternal {
			kind = IfaceInternal
		}
		out = append(out, HostInterface{Bridge: topology.BridgeInt, Name: p.Name, Kind: kind})
	}
	return out
}

// hostInterfaces fills in want from the snapshot and adds our other
// interfaces on our bridges.
func (s *snapshot) hostInterfaces(m marks, want []HostInterface) []HostInterface {
	listed := map[string]bool{}
	for i := range want {
		w := &want[i]
		listed[w.Name] = true
		br := s.bridges[w.Bridge]
		port := s.portsByName[w.Name]
		if br == nil || port == nil || !m.owns(br.ExternalIDs) || !m.owns(port.ExternalIDs) || s.bridgeOfPort[port.UUID] != br {
			continue
		}
		if iface := s.ifaceOf(port); iface != nil && m.owns(iface.ExternalIDs) {
			w.fill(iface)
		}
	}
	for _, name := range sortedKeys(s.bridges) {
		br := s.bridges[name]
		if !m.owns(br.ExternalIDs) {
			continue
		}
		var others []HostInterface
		for _, u := range br.Ports {
			port := s.ports[u]
			if port == nil || listed[port.Name] || !m.owns(port.ExternalIDs) {
				continue
			}
			if iface := s.ifaceOf(port); iface != nil && m.owns(iface.ExternalIDs) {
				hi := HostInterface{Bridge: br.Name, Name: port.Name, Kind: IfaceOther}
				hi.fill(iface)
				others = append(others, hi)
			}
		}
		slices.SortFunc(others, func(a, b HostInterface) int { return strings.Compare(a.Name, b.Name) })
		want = append(want, others...)
	}
	return want
}

func (i *HostInterface) fill(iface *vswitch.Interface) {
	i.Owned, i.Type, i.OFPort = true, iface.Type, ofport(iface)
	if iface.Error != nil {
		i.Error = *iface.Error
	}
}

// SettledInterfaces is HostInterfaces once ovs-vswitchd has given every
// interface of ours an ofport or an error, waiting at most wait (Apply has
// normally waited for that already: ovs-vswitchd writes them with cur_cfg).
// Past wait it returns what it has; callers treat OFPort 0 as unattached.
func (c *Client) SettledInterfaces(ctx context.Context, t *topology.Topology, h *topology.Host, wait time.Duration) ([]HostInterface, error) {
	deadline := time.Now().Add(wait)
	for {
		ifs, err := c.HostInterfaces(ctx, t, h)
		if err != nil {
			return nil, err
		}
		if allSettled(ifs) || time.Now().After(deadline) {
			return ifs, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for ovs-vswitchd to attach the interfaces: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func allSettled(ifs []HostInterface) bool {
	for _, i := range ifs {
		if !i.settled() {
			return false
		}
	}
	return true
}

package ovsdb

import (
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Interest is what the agent of one host re-applies for: its own rows and
// the Ports it bound edited behind its back, and interfaces carrying the
// iface-id of one of its ports appearing, disappearing or changing ofport.
type Interest struct {
	m        marks
	ifaceIDs map[string]string // iface-id -> the port's name in the file
}

// InterestOf is the interest of the agent of host h of topology t.
func InterestOf(t *topology.Topology, h *topology.Host) *Interest {
	in := &Interest{m: marks{owner: t.Name, host: h.Name}, ifaceIDs: map[string]string{}}
	for _, p := range t.PortsOn(h) {
		if p.IfaceID != "" {
			in.ifaceIDs[p.IfaceID] = p.Name
		}
	}
	return in
}

// Watch calls notify with a reason for every change of the database that
// interest() cares about. interest is read at each change, so a reloaded
// topology counts at once; nil means nothing. Both are called on libovsdb's
// event goroutine: they must be quick and never block (libovsdb drops
// events when its queue is full). Changes made by ovs-vxctl itself are
// reported too: a re-apply after them finds nothing to do. After a
// reconnection the cache is refilled, which reports every row as new.
func (c *Client) Watch(interest func() *Interest, notify func(reason string)) {
	report := func(table string, old, new model.Model) {
		if in := interest(); in != nil {
			if why := in.reason(table, old, new); why != "" {
				notify(why)
			}
		}
	}
	c.ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(table string, row model.Model) { report(table, nil, row) },
		UpdateFunc: func(table string, old, new model.Model) { report(table, old, new) },
		DeleteFunc: func(table string, row model.Model) { report(table, row, nil) },
	})
}

// reason says why a change of a row of table (old nil: added; new nil:
// deleted) matters, or "".
func (in *Interest) reason(table string, old, new model.Model) string {
	switch table {
	case vswitch.InterfaceTable:
		o, _ := old.(*vswitch.Interface)
		n, _ := new.(*vswitch.Interface)
		if why := in.pluggedReason(o, n); why != "" {
			return why
		}
		return ownedReason(in, "interface", o, n, func(i *vswitch.Interface) (string, map[string]string) { return i.Name, i.ExternalIDs },
			func(a, b *vswitch.Interface) bool { return configOfInterface(a).Equals(configOfInterface(b)) })
	case vswitch.PortTable:
		o, _ := old.(*vswitch.Port)
		n, _ := new.(*vswitch.Port)
		return ownedReason(in, "port", o, n, func(p *vswitch.Port) (string, map[string]string) { return p.Name, p.ExternalIDs },
			func(a, b *vswitch.Port) bool { return configOfPort(a).Equals(configOfPort(b)) })
	case vswitch.BridgeTable:
		o, _ := old.(*vswitch.Bridge)
		n, _ := new.(*vswitch.Bridge)
		return ownedReason(in, "bridge", o, n, func(b *vswitch.Bridge) (string, map[string]string) { return b.Name, b.ExternalIDs },
			func(a, b *vswitch.Bridge) bool { return configOfBridge(a).Equals(configOfBridge(b)) })
	case vswitch.ControllerTable:
		o, _ := old.(*vswitch.Controller)
		n, _ := new.(*vswitch.Controller)
		return ownedReason(in, "controller", o, n, func(k *vswitch.Controller) (string, map[string]string) { return k.Target, k.ExternalIDs },
			func(a, b *vswitch.Controller) bool { return configOfController(a).Equals(configOfController(b)) })
	case vswitch.SSLTable:
		o, _ := old.(*vswitch.SSL)
		n, _ := new.(*vswitch.SSL)
		return ownedReason(in, "SSL row", o, n, func(s *vswitch.SSL) (string, map[string]string) { return s.UUID, s.ExternalIDs },
			func(a, b *vswitch.SSL) bool { return a.Equals(b) })
	}
	return ""
}

// pluggedReason reports an interface carrying a watched iface-id that
// appeared, disappeared, changed ofport or attached-mac, or an interface
// whose iface-id changed to or from a watched one.
func (in *Interest) pluggedReason(o, n *vswitch.Interface) string {
	id := func(i *vswitch.Interface) string {
		if i == nil {
			return ""
		}
		return i.ExternalIDs[IfaceIDKey]
	}
	oid, nid := id(o), id(n)
	_, oWatched := in.ifaceIDs[oid]
	_, nWatched := in.ifaceIDs[nid]
	switch {
	case !oWatched && !nWatched:
		return ""
	case o == nil:
		return fmt.Sprintf("interface %s with iface-id %s (port %s) appeared", n.Name, nid, in.ifaceIDs[nid])
	case n == nil:
		return fmt.Sprintf("interface %s with iface-id %s (port %s) disappeared", o.Name, oid, in.ifaceIDs[oid])
	case oid != nid:
		return fmt.Sprintf("interface %s: iface-id %q -> %q", n.Name, oid, nid)
	case ofport(o) != ofport(n):
		return fmt.Sprintf("interface %s with iface-id %s (port %s): ofport %d -> %d", n.Name, nid, in.ifaceIDs[nid], ofport(o), ofport(n))
	case o.ExternalIDs[AttachedMACKey] != n.ExternalIDs[AttachedMACKey]:
		return fmt.Sprintf("interface %s with iface-id %s (port %s): attached-mac %q -> %q", n.Name, nid, in.ifaceIDs[nid],
			o.ExternalIDs[AttachedMACKey], n.ExternalIDs[AttachedMACKey])
	}
	return ""
}

// ownedReason reports a row of ours, or a Port we bound, that was added,
// deleted, or changed in a column that is configuration (same compares
// those), not status that ovs-vswitchd writes.
func ownedReason[R any](in *Interest, what string, o, n *R, ids func(*R) (string, map[string]string), same func(a, b *R) bool) string {
	mine := func(r *R) (string, bool) {
		if r == nil {
			return "", false
		}
		name, ext := ids(r)
		return name, in.m.owns(ext) || in.m.bound(ext)
	}
	oname, oMine := mine(o)
	nname, nMine := mine(n)
	switch {
	case !oMine && !nMine:
		return ""
	case o == nil:
		return fmt.Sprintf("%s %s of ours appeared", what, nname)
	case n == nil:
		return fmt.Sprintf("%s %s of ours was deleted", what, oname)
	case oMine != nMine:
		return fmt.Sprintf("%s %s: ovs-vxctl's marks changed", what, nname)
	case !same(o, n):
		return fmt.Sprintf("%s %s of ours was edited", what, nname)
	}
	return ""
}

// The configuration of a row: a copy without the status columns that
// ovs-vswitchd keeps writing (link state, statistics, ofport of our own
// interfaces, connection state), which are no reason to re-apply.

func configOfInterface(i *vswitch.Interface) *vswitch.Interface {
	c := i.DeepCopy()
	c.AdminState, c.LinkState, c.LinkSpeed, c.LinkResets, c.Duplex, c.Error = nil, nil, nil, nil, nil, nil
	c.MTU, c.MACInUse, c.Ifindex, c.Ofport, c.LACPCurrent = nil, nil, nil, nil, nil
	c.Statistics, c.Status, c.BFDStatus = nil, nil, nil
	c.CFMFault, c.CFMFaultStatus, c.CFMFlapCount, c.CFMHealth, c.CFMRemoteMpids, c.CFMRemoteOpstate = nil, nil, nil, nil, nil, nil
	return c
}

func configOfPort(p *vswitch.Port) *vswitch.Port {
	c := p.DeepCopy()
	c.Statistics, c.Status, c.RSTPStatistics, c.RSTPStatus, c.BondActiveSlave = nil, nil, nil, nil, nil
	return c
}

func configOfBridge(b *vswitch.Bridge) *vswitch.Bridge {
	c := b.DeepCopy()
	c.DatapathID, c.DatapathVersion, c.Status, c.RSTPStatus = nil, "", nil, nil
	return c
}

func configOfController(k *vswitch.Controller) *vswitch.Controller {
	c := k.DeepCopy()
	c.IsConnected, c.Role, c.Status = false, nil, nil
	return c
}

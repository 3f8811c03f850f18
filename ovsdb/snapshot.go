package ovsdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
)

// snapshot is a consistent-enough copy of the monitored tables, indexed the
// ways the planner and Show look rows up.
type snapshot struct {
	root *vswitch.OpenvSwitch

	bridges       map[string]*vswitch.Bridge // by name
	bridgeOfPort  map[string]*vswitch.Bridge // port UUID -> bridge listing it
	ports         map[string]*vswitch.Port   // by UUID
	portsByName   map[string]*vswitch.Port
	portOfIface   map[string]*vswitch.Port // interface UUID -> port listing it
	ifaces        map[string]*vswitch.Interface
	ifacesByName  map[string]*vswitch.Interface
	controllers   map[string]*vswitch.Controller
	ssl           map[string]*vswitch.SSL // by UUID
	rootedBridges map[string]bool
}

// read syncs the cache with the database and copies it.
func (c *Client) read(ctx context.Context) (*snapshot, error) {
	if err := c.sync(ctx); err != nil {
		return nil, err
	}
	var (
		roots  []*vswitch.OpenvSwitch
		brs    []*vswitch.Bridge
		ports  []*vswitch.Port
		ifaces []*vswitch.Interface
		ctrls  []*vswitch.Controller
		ssls   []*vswitch.SSL
	)
	for _, l := range []any{&roots, &brs, &ports, &ifaces, &ctrls, &ssls} {
		if err := c.ovs.List(ctx, l); err != nil {
			return nil, fmt.Errorf("reading the OVSDB cache: %w", err)
		}
	}
	switch len(roots) {
	case 0:
		return nil, errors.New("the Open_vSwitch table is empty: initialise the database (ovs-vsctl init) first")
	case 1:
	default:
		return nil, fmt.Errorf("the Open_vSwitch table has %d rows, want 1", len(roots))
	}
	s := &snapshot{
		root:          roots[0],
		bridges:       map[string]*vswitch.Bridge{},
		bridgeOfPort:  map[string]*vswitch.Bridge{},
		ports:         map[string]*vswitch.Port{},
		portsByName:   map[string]*vswitch.Port{},
		portOfIface:   map[string]*vswitch.Port{},
		ifaces:        map[string]*vswitch.Interface{},
		ifacesByName:  map[string]*vswitch.Interface{},
		controllers:   map[string]*vswitch.Controller{},
		ssl:           map[string]*vswitch.SSL{},
		rootedBridges: map[string]bool{},
	}
	for _, u := range s.root.Bridges {
		s.rootedBridges[u] = true
	}
	for _, b := range brs {
		s.bridges[b.Name] = b
		for _, p := range b.Ports {
			s.bridgeOfPort[p] = b
		}
	}
	for _, p := range ports {
		s.ports[p.UUID] = p
		s.portsByName[p.Name] = p
		for _, i := range p.Interfaces {
			s.portOfIface[i] = p
		}
	}
	for _, i := range ifaces {
		s.ifaces[i.UUID] = i
		s.ifacesByName[i.Name] = i
	}
	for _, k := range ctrls {
		s.controllers[k.UUID] = k
	}
	for _, r := range ssls {
		s.ssl[r.UUID] = r
	}
	return s, nil
}

// ifaceOf returns the interface of port p named like p (the only one of the
// ports ovs-vxctl creates), or nil.
func (s *snapshot) ifaceOf(p *vswitch.Port) *vswitch.Interface {
	for _, u := range p.Interfaces {
		if i := s.ifaces[u]; i != nil && i.Name == p.Name {
			return i
		}
	}
	return nil
}

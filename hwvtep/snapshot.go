package hwvtep

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// snapshot is a copy of the tables the reconcile reads, as lists; index
// builds the lookups.
type snapshot struct {
	switches    []*hwvtep.PhysicalSwitch
	ports       []*hwvtep.PhysicalPort
	lswitches   []*hwvtep.LogicalSwitch
	locators    []*hwvtep.PhysicalLocator
	locatorSets []*hwvtep.PhysicalLocatorSet
	mcastRemote []*hwvtep.McastMacsRemote
	ucastRemote []*hwvtep.UcastMacsRemote
	mcastLocal  []*hwvtep.McastMacsLocal
	ucastLocal  []*hwvtep.UcastMacsLocal
}

// marks are the topology and host whose logical switches are ours.
type marks struct {
	owner, host string
}

// owns reports whether a logical switch carries our marks.
func (m marks) owns(ls *hwvtep.LogicalSwitch) bool {
	return ls.OtherConfig[ovsdb.KeyOwner] == m.owner && ls.OtherConfig[ovsdb.KeyHost] == m.host
}

// ownerOf describes who owns a logical switch, for error messages.
func ownerOf(ls *hwvtep.LogicalSwitch) string {
	o, ok := ls.OtherConfig[ovsdb.KeyOwner]
	if !ok {
		return "it was not created by ovs-vxctl"
	}
	return fmt.Sprintf("it belongs to topology %q host %q", o, ls.OtherConfig[ovsdb.KeyHost])
}

// index is a snapshot's lookups.
type index struct {
	*snapshot
	lsByUUID    map[string]*hwvtep.LogicalSwitch
	lsByName    map[string]*hwvtep.LogicalSwitch
	portByUUID  map[string]*hwvtep.PhysicalPort
	locByUUID   map[string]*hwvtep.PhysicalLocator
	setByUUID   map[string]*hwvtep.PhysicalLocatorSet
	switchNamed map[string]*hwvtep.PhysicalSwitch
}

func (s *snapshot) index() *index {
	x := &index{snapshot: s,
		lsByUUID: map[string]*hwvtep.LogicalSwitch{}, lsByName: map[string]*hwvtep.LogicalSwitch{},
		portByUUID: map[string]*hwvtep.PhysicalPort{}, locByUUID: map[string]*hwvtep.PhysicalLocator{},
		setByUUID: map[string]*hwvtep.PhysicalLocatorSet{}, switchNamed: map[string]*hwvtep.PhysicalSwitch{}}
	for _, ls := range s.lswitches {
		x.lsByUUID[ls.UUID], x.lsByName[ls.Name] = ls, ls
	}
	for _, p := range s.ports {
		x.portByUUID[p.UUID] = p
	}
	for _, l := range s.locators {
		x.locByUUID[l.UUID] = l
	}
	for _, l := range s.locatorSets {
		x.setByUUID[l.UUID] = l
	}
	for _, ps := range s.switches {
		x.switchNamed[ps.Name] = ps
	}
	return x
}

// ours returns our logical switches, sorted by name.
func (x *index) ours(m marks) []*hwvtep.LogicalSwitch {
	var out []*hwvtep.LogicalSwitch
	for _, ls := range x.lswitches {
		if m.owns(ls) {
			out = append(out, ls)
		}
	}
	slices.SortFunc(out, func(a, b *hwvtep.LogicalSwitch) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// switchPorts returns physical switch ps's ports by name.
func (x *index) switchPorts(ps *hwvtep.PhysicalSwitch) map[string]*hwvtep.PhysicalPort {
	out := map[string]*hwvtep.PhysicalPort{}
	for _, u := range ps.Ports {
		if p := x.portByUUID[u]; p != nil {
			out[p.Name] = p
		}
	}
	return out
}

// setAddrs returns the dst_ip of every locator of locator set u, sorted.
func (x *index) setAddrs(u string) []string {
	var out []string
	if set := x.setByUUID[u]; set != nil {
		for _, l := range set.Locators {
			if loc := x.locByUUID[l]; loc != nil {
				out = append(out, loc.DstIP)
			}
		}
	}
	slices.Sort(out)
	return out
}

// locatorAddr is the dst_ip of locator u, or u itself when unknown.
func (x *index) locatorAddr(u string) string {
	if loc := x.locByUUID[u]; loc != nil {
		return loc.DstIP
	}
	return u
}

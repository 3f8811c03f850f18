package hwvtep

import (
	"slices"
	"testing"

	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/hwvtep"
)

// A small executor of the operations the planner emits, over a snapshot,
// so that plans can be committed and re-planned without ovsdb-server (the
// real-database tests check the same against ovsdb-server itself).

// whereOf returns the UUID of a "_uuid ==" condition.
func whereOf(w []libovsdb.Condition) string {
	if len(w) != 1 {
		return ""
	}
	if u, ok := w[0].Value.(libovsdb.UUID); ok {
		return u.GoUUID
	}
	return ""
}

func applyOp(t *testing.T, s *snapshot, op, table, newUUID, where string, row libovsdb.Row, muts []libovsdb.Mutation, ref func(any) string) {
	t.Helper()
	switch op {
	case "insert":
		insertRow(t, s, table, newUUID, row, ref)
	case "update":
		updateRow(t, s, table, where, row, ref)
	case "mutate":
		for _, m := range muts {
			mutateRow(t, s, table, where, m, ref)
		}
	case "delete":
		deleteRow(s, table, where)
	default:
		t.Fatalf("unexpected operation %s on %s", op, table)
	}
}

func insertRow(t *testing.T, s *snapshot, table, u string, row libovsdb.Row, ref func(any) string) {
	switch table {
	case hwvtep.LogicalSwitchTable:
		ls := &hwvtep.LogicalSwitch{UUID: u, OtherConfig: map[string]string{}}
		s.lswitches = append(s.lswitches, ls)
		updateRow(t, s, table, u, row, ref)
	case hwvtep.PhysicalLocatorTable:
		s.locators = append(s.locators, &hwvtep.PhysicalLocator{UUID: u, DstIP: row["dst_ip"].(string), EncapsulationType: row["encapsulation_type"].(string)})
	case hwvtep.PhysicalLocatorSetTable:
		set := &hwvtep.PhysicalLocatorSet{UUID: u}
		for _, l := range row["locators"].(libovsdb.OvsSet).GoSet {
			set.Locators = append(set.Locators, ref(l))
		}
		s.locatorSets = append(s.locatorSets, set)
	case hwvtep.McastMacsRemoteTable:
		s.mcastRemote = append(s.mcastRemote, &hwvtep.McastMacsRemote{UUID: u, MAC: row["MAC"].(string),
			LogicalSwitch: ref(row["logical_switch"]), LocatorSet: ref(row["locator_set"])})
	case hwvtep.UcastMacsRemoteTable:
		s.ucastRemote = append(s.ucastRemote, &hwvtep.UcastMacsRemote{UUID: u, MAC: row["MAC"].(string),
			LogicalSwitch: ref(row["logical_switch"]), Locator: ref(row["locator"]), Ipaddr: row["ipaddr"].(string)})
	default:
		t.Fatalf("unexpected insert into %s", table)
	}
}

func updateRow(t *testing.T, s *snapshot, table, u string, row libovsdb.Row, ref func(any) string) {
	switch table {
	case hwvtep.LogicalSwitchTable:
		i := slices.IndexFunc(s.lswitches, func(ls *hwvtep.LogicalSwitch) bool { return ls.UUID == u })
		ls := s.lswitches[i]
		for col, v := range row {
			switch col {
			case "name":
				ls.Name = v.(string)
			case "description":
				ls.Description = v.(string)
			case "tunnel_key":
				k := v.(int)
				ls.TunnelKey = &k
			case "replication_mode":
				m := v.(string)
				ls.ReplicationMode = &m
			case "other_config":
				for k, v := range v.(libovsdb.OvsMap).GoMap {
					ls.OtherConfig[k.(string)] = v.(string)
				}
			default:
				t.Fatalf("unexpected column %s", col)
			}
		}
	case hwvtep.McastMacsRemoteTable:
		i := slices.IndexFunc(s.mcastRemote, func(r *hwvtep.McastMacsRemote) bool { return r.UUID == u })
		s.mcastRemote[i].LocatorSet = ref(row["locator_set"])
		s.mcastRemote[i].Ipaddr = row["ipaddr"].(string)
	case hwvtep.UcastMacsRemoteTable:
		i := slices.IndexFunc(s.ucastRemote, func(r *hwvtep.UcastMacsRemote) bool { return r.UUID == u })
		r := s.ucastRemote[i]
		r.MAC, r.Locator, r.Ipaddr = row["MAC"].(string), ref(row["locator"]), row["ipaddr"].(string)
	default:
		t.Fatalf("unexpected update of %s", table)
	}
}

func mutateRow(t *testing.T, s *snapshot, table, u string, m libovsdb.Mutation, ref func(any) string) {
	var keys []any
	var ins map[any]any
	if m.Mutator == libovsdb.MutateOperationDelete {
		keys = m.Value.(libovsdb.OvsSet).GoSet
	} else {
		ins = m.Value.(libovsdb.OvsMap).GoMap
	}
	switch table {
	case hwvtep.PhysicalPortTable:
		i := slices.IndexFunc(s.ports, func(p *hwvtep.PhysicalPort) bool { return p.UUID == u })
		b := s.ports[i].VLANBindings
		for _, k := range keys {
			delete(b, k.(int))
		}
		for k, v := range ins {
			if _, ok := b[k.(int)]; !ok { // insert never overwrites
				b[k.(int)] = ref(v)
			}
		}
	case hwvtep.LogicalSwitchTable:
		i := slices.IndexFunc(s.lswitches, func(ls *hwvtep.LogicalSwitch) bool { return ls.UUID == u })
		oc := s.lswitches[i].OtherConfig
		for _, k := range keys {
			delete(oc, k.(string))
		}
		for k, v := range ins {
			if _, ok := oc[k.(string)]; !ok {
				oc[k.(string)] = v.(string)
			}
		}
	default:
		t.Fatalf("unexpected mutate of %s", table)
	}
}

func deleteRow(s *snapshot, table, u string) {
	switch table {
	case hwvtep.LogicalSwitchTable:
		s.lswitches = slices.DeleteFunc(s.lswitches, func(r *hwvtep.LogicalSwitch) bool { return r.UUID == u })
	case hwvtep.McastMacsRemoteTable:
		s.mcastRemote = slices.DeleteFunc(s.mcastRemote, func(r *hwvtep.McastMacsRemote) bool { return r.UUID == u })
	case hwvtep.UcastMacsRemoteTable:
		s.ucastRemote = slices.DeleteFunc(s.ucastRemote, func(r *hwvtep.UcastMacsRemote) bool { return r.UUID == u })
	case hwvtep.McastMacsLocalTable:
		s.mcastLocal = slices.DeleteFunc(s.mcastLocal, func(r *hwvtep.McastMacsLocal) bool { return r.UUID == u })
	case hwvtep.UcastMacsLocalTable:
		s.ucastLocal = slices.DeleteFunc(s.ucastLocal, func(r *hwvtep.UcastMacsLocal) bool { return r.UUID == u })
	}
}

package ovsdb

import (
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
)

// builder collects the operations of one transaction. Its verbs each return
// nothing and record the first error, so callers read as a list of steps.
// Rows inserted in the transaction are named by identifiers (row1, row2...):
// OVSDB rejects named UUIDs that are not.
type builder struct {
	api    client.Client
	ops    []libovsdb.Operation
	guards []libovsdb.Operation
	// guardWhy explains each guard, by index in guards, when it fails.
	guardWhy []string
	n        int
	err      error
}

func (b *builder) add(ops []libovsdb.Operation, err error) {
	if b.err != nil {
		return
	}
	if err != nil {
		b.err = err
		return
	}
	b.ops = append(b.ops, ops...)
}

// newName returns a fresh named UUID.
func (b *builder) newName() string {
	b.n++
	return fmt.Sprintf("row%d", b.n)
}

// guardAbsent makes the transaction fail if a row called name appears in
// table between planning and committing: another client creating br-int at
// the same moment must not end up sharing it with us.
func (b *builder) guardAbsent(table, name string) {
	timeout := 0
	// "Wait until the rows named name differ from [{name}]" is satisfied at
	// once when there is no such row and times out at once when there is.
	b.guards = append(b.guards, libovsdb.Operation{
		Op:      libovsdb.OperationWait,
		Table:   table,
		Where:   []libovsdb.Condition{libovsdb.NewCondition("name", libovsdb.ConditionEqual, name)},
		Columns: []string{"name"},
		Until:   string(libovsdb.WaitConditionNotEqual),
		Rows:    []libovsdb.Row{{"name": name}},
		Timeout: &timeout,
	})
	b.guardWhy = append(b.guardWhy, fmt.Sprintf("%s %s was created by someone else after the plan was made", table, name))
}

// createInterface inserts the Interface of w and returns its named UUID.
func (b *builder) createInterface(w *wantPort) string {
	ref := b.newName()
	i := &vswitch.Interface{
		UUID:          ref,
		Name:          w.name,
		Type:          w.ifType,
		Options:       w.options,
		OfportRequest: w.ofportRequest,
		MAC:           w.mac,
		MTURequest:    w.mtuRequest,
		ExternalIDs:   w.externalIDs,
	}
	b.guardAbsent(vswitch.InterfaceTable, w.name)
	b.add(b.api.Create(i))
	return ref
}

// createPort inserts the Port of w with interface iface and returns its
// named UUID.
func (b *builder) createPort(w *wantPort, iface string) string {
	ref := b.newName()
	p := &vswitch.Port{
		UUID:        ref,
		Name:        w.name,
		Interfaces:  []string{iface},
		Tag:         w.tag,
		ExternalIDs: w.externalIDs,
	}
	if w.tag != nil {
		mode := vswitch.PortVLANModeAccess
		p.VLANMode = &mode
	}
	b.guardAbsent(vswitch.PortTable, w.name)
	b.add(b.api.Create(p))
	return ref
}

// createController inserts the Controller row w and returns its named UUID.
func (b *builder) createController(w *wantController) string {
	ref := b.newName()
	mode := w.connectionMode
	rate, burst, probe := w.rateLimit, w.burstLimit, w.inactivityProbe
	b.add(b.api.Create(&vswitch.Controller{
		UUID:                 ref,
		Target:               w.target,
		ConnectionMode:       &mode,
		ControllerRateLimit:  &rate,
		ControllerBurstLimit: &burst,
		InactivityProbe:      &probe,
		ExternalIDs:          w.externalIDs,
	}))
	return ref
}

// createBridge inserts bridge w with the given ports and controllers. The
// caller guards the name (guardAbsent) before creating the ports, so that a
// racing bridge is reported as such rather than as its local port.
func (b *builder) createBridge(w *wantBridge, ports, controllers []string) string {
	ref := b.newName()
	failMode := w.failMode
	b.add(b.api.Create(&vswitch.Bridge{
		UUID:         ref,
		Name:         w.name,
		DatapathType: w.datapathType,
		FailMode:     &failMode,
		Protocols:    w.protocols,
		OtherConfig:  w.otherConfig,
		ExternalIDs:  w.externalIDs,
		Ports:        ports,
		Controller:   controllers,
	}))
	return ref
}

// mutateSet inserts or deletes UUIDs in a set column of the row m (whose
// UUID is set) designated by field, a pointer into m.
func (b *builder) mutateSet(m model.Model, field *[]string, mutator libovsdb.Mutator, uuids ...string) {
	if len(uuids) == 0 {
		return
	}
	b.add(b.api.Where(m).Mutate(m, model.Mutation{Field: field, Mutator: mutator, Value: uuids}))
}

// addBridgeToRoot lists bridge (a UUID or named UUID) in Open_vSwitch.bridges.
func (b *builder) addBridgeToRoot(root, bridge string) {
	r := &vswitch.OpenvSwitch{UUID: root}
	b.mutateSet(r, &r.Bridges, libovsdb.MutateOperationInsert, bridge)
}

// removeBridgeFromRoot unlists bridge; OVSDB then garbage-collects it with
// its ports, interfaces and controllers.
func (b *builder) removeBridgeFromRoot(root, bridge string) {
	r := &vswitch.OpenvSwitch{UUID: root}
	b.mutateSet(r, &r.Bridges, libovsdb.MutateOperationDelete, bridge)
}

// addPorts lists ports in bridge's ports column.
func (b *builder) addPorts(bridge string, ports ...string) {
	br := &vswitch.Bridge{UUID: bridge}
	b.mutateSet(br, &br.Ports, libovsdb.MutateOperationInsert, ports...)
}

// removePorts unlists ports from bridge; OVSDB garbage-collects them.
func (b *builder) removePorts(bridge string, ports ...string) {
	br := &vswitch.Bridge{UUID: bridge}
	b.mutateSet(br, &br.Ports, libovsdb.MutateOperationDelete, ports...)
}

// addControllers lists controllers in bridge's controller column.
func (b *builder) addControllers(bridge string, ctrls ...string) {
	br := &vswitch.Bridge{UUID: bridge}
	b.mutateSet(br, &br.Controller, libovsdb.MutateOperationInsert, ctrls...)
}

// removeControllers unlists controllers from bridge.
func (b *builder) removeControllers(bridge string, ctrls ...string) {
	br := &vswitch.Bridge{UUID: bridge}
	b.mutateSet(br, &br.Controller, libovsdb.MutateOperationDelete, ctrls...)
}

// update writes the given fields (pointers into m) of the row m.
func (b *builder) update(m model.Model, fields ...any) {
	if len(fields) == 0 {
		return
	}
	b.add(b.api.Where(m).Update(m, fields...))
}

// setMapKeys deletes keys del and then inserts ins in a map column of row
// m, in one atomic mutate that leaves every other key as it is. (An insert
// mutation never overwrites a key, hence the delete first.)
func (b *builder) setMapKeys(m model.Model, field *map[string]string, del []string, ins map[string]string) {
	var muts []model.Mutation
	if len(del) > 0 {
		muts = append(muts, model.Mutation{Field: field, Mutator: libovsdb.MutateOperationDelete, Value: del})
	}
	if len(ins) > 0 {
		muts = append(muts, model.Mutation{Field: field, Mutator: libovsdb.MutateOperationInsert, Value: ins})
	}
	if len(muts) == 0 {
		return
	}
	b.add(b.api.Where(m).Mutate(m, muts...))
}

// bumpNextCfg increments Open_vSwitch.next_cfg and reads it back, like
// ovs-vsctl does to learn which cur_cfg means "ovs-vswitchd has applied
// this transaction".
func (b *builder) bumpNextCfg(root string) {
	r := &vswitch.OpenvSwitch{UUID: root}
	b.add(b.api.Where(r).Mutate(r, model.Mutation{Field: &r.NextCfg, Mutator: libovsdb.MutateOperationAdd, Value: 1}))
	b.add([]libovsdb.Operation{{
		Op:      libovsdb.OperationSelect,
		Table:   vswitch.OpenvSwitchTable,
		Where:   []libovsdb.Condition{libovsdb.NewCondition("_uuid", libovsdb.ConditionEqual, libovsdb.UUID{GoUUID: root})},
		Columns: []string{"next_cfg"},
	}}, nil)
}

package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	libovsdb "github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/ovsdb/vswitch"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Plan is one reconciliation of a host: the operations of one OVSDB
// transaction and what they change, for people.
type Plan struct {
	// Changes describes every change, one per line: "+ " adds, "- "
	// removes, "~ " changes in place. Empty when there is nothing to do.
	Changes []string
	// Ops is the transaction. Apply adds the next_cfg bump to it.
	Ops []libovsdb.Operation
	// Notes are things deliberately left as they are (e.g. a bridge kept
	// because it holds ports ovs-vxctl did not create). They change nothing.
	Notes []string
	// Warnings are things the plan lets pass but someone should know,
	// such as a port given by iface_id whose VM is not plugged yet.
	Warnings []string
	// NewBridges are the bridges the plan creates: they have no
	// management socket until ovs-vswitchd has made them.
	NewBridges []string

	root     string   // Open_vSwitch row UUID
	guardWhy []string // why Ops[i] failed, for the leading guard ops
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Ops) == 0 }

// planner computes a Plan from a snapshot.
type planner struct {
	b    builder
	snap *snapshot
	m    marks
	log  *zap.Logger
	plan *Plan
}

func (c *Client) newPlanner(snap *snapshot, t *topology.Topology, h *topology.Host) *planner {
	return &planner{
		b:    builder{api: c.ovs},
		snap: snap,
		m:    marks{owner: t.Name, host: h.Name},
		log:  c.log.With(zap.String("topology", t.Name), zap.String("host", h.Name)),
		plan: &Plan{root: snap.root.UUID},
	}
}

func (p *planner) change(format string, args ...any) {
	p.plan.Changes = append(p.plan.Changes, fmt.Sprintf(format, args...))
}

func (p *planner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.log.Info(msg)
	p.plan.Notes = append(p.plan.Notes, msg)
}

// finish assembles the plan: the guards first, so that a failed guard
// aborts the transaction before anything is written.
func (p *planner) finish() (*Plan, error) {
	if p.b.err != nil {
		return nil, fmt.Errorf("building OVSDB operations: %w", p.b.err)
	}
	if len(p.b.ops) == 0 {
		p.plan.Changes = nil
		return p.plan, nil
	}
	if len(p.plan.Changes) == 0 {
		return nil, errors.New("internal error: operations without a described change")
	}
	p.plan.Ops = append(slices.Clone(p.b.guards), p.b.ops...)
	p.plan.guardWhy = p.b.guardWhy
	return p.plan, nil
}

// Plan computes the transaction that makes host h of topology t match the
// topology, with allocation alloc (from t.Allocate(h, CurrentAllocation)).
// It fails, changing nothing, when a bridge or port it needs exists and is
// not ours. The plan is made from the database as it is now; Apply it soon.
// Plan is PlanWith with no options: it fails for a controller-mode host
// whose controller target is ssl:, which needs PlanOptions.SSL.
func (c *Client) Plan(ctx context.Context, t *topology.Topology, h *topology.Host, alloc topology.Allocation) (*Plan, error) {
	return c.PlanWith(ctx, t, h, alloc, PlanOptions{})
}

// PlanWith is Plan with options: opts.SSL gives the TLS files an ssl:
// controller target needs (see PlanOptions). It also fails, changing
// nothing, when the host needs an SSL row and Open_vSwitch.ssl already
// points at one that is not ours.
func (c *Client) PlanWith(ctx context.Context, t *topology.Topology, h *topology.Host, alloc topology.Allocation, opts PlanOptions) (*Plan, error) {
	want, err := desired(t, h, alloc)
	if err != nil {
		return nil, err
	}
	applyMTU(want, opts.MTU)
	wantSSL, err := desiredSSL(t, h, opts.SSL)
	if err != nil {
		return nil, err
	}
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	p := c.newPlanner(snap, t, h)
	if err := errors.Join(p.conflicts(want), p.sslConflict(wantSSL)); err != nil {
		return nil, fmt.Errorf("host %s of topology %s: %w", h.Name, t.Name, err)
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.name] = true
		if cur := snap.bridges[w.name]; cur != nil {
			p.reconcileBridge(w, cur)
		} else {
			p.addBridge(w)
		}
	}
	for _, name := range sortedKeys(snap.bridges) {
		br := snap.bridges[name]
		if !wanted[name] && p.m.owns(br.ExternalIDs) {
			p.removeBridge(br)
		}
	}
	p.reconcileSSL(wantSSL)
	p.reconcileBindings(bindingsOf(want))
	if wantSSL == nil && opts.SSL != nil {
		p.note("TLS files given but not used: host %s does not connect to an ssl: controller", h.Name)
	}
	p.strayPorts()
	return p.finish()
}

// PlanDestroy computes the transaction that removes every row ovs-vxctl
// created for host h of topology t, and nothing else: our bridges, ports,
// controllers and SSL row (Open_vSwitch.ssl is cleared if it points at it).
// A bridge of ours that also holds ports we did not create is kept (with a
// note) and only our ports are removed from it.
func (c *Client) PlanDestroy(ctx context.Context, t *topology.Topology, h *topology.Host) (*Plan, error) {
	if t == nil || h == nil || t.Name == "" || h.Name == "" {
		return nil, errors.New("destroy needs a named topology and host")
	}
	snap, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	p := c.newPlanner(snap, t, h)
	for _, name := range sortedKeys(snap.bridges) {
		if br := snap.bridges[name]; p.m.owns(br.ExternalIDs) {
			p.removeBridge(br)
		}
	}
	p.reconcileSSL(nil)
	p.unbindAll(nil)
	p.strayPorts()
	return p.finish()
}

// conflicts reports every bridge, port or interface name we need that is
// taken by a row that is not ours.
func (p *planner) conflicts(want []*wantBridge) error {
	var errs []error
	for _, w := range want {
		if br := p.snap.bridges[w.name]; br != nil && !p.m.owns(br.ExternalIDs) {
			errs = append(errs, fmt.Errorf("bridge %s already exists and %s", w.name, ownerOf(br.ExternalIDs)))
			continue // its ports would only repeat the message
		}
		for _, wp := range w.ports {
			if port := p.snap.portsByName[wp.name]; port != nil {
				br := p.snap.bridgeOfPort[port.UUID]
				where := "on no bridge"
				if br != nil {
					where = "on bridge " + br.Name
				}
				switch {
				case !p.m.owns(port.ExternalIDs):
					errs = append(errs, fmt.Errorf("port %s already exists %s and %s", wp.name, where, ownerOf(port.ExternalIDs)))
					continue
				case br != nil && !p.m.owns(br.ExternalIDs):
					errs = append(errs, fmt.Errorf("port %s is ours but sits on bridge %s, which is not (%s)", wp.name, br.Name, ownerOf(br.ExternalIDs)))
					continue
				}
			}
			if iface := p.snap.ifacesByName[wp.name]; iface != nil && !p.m.owns(iface.ExternalIDs) {
				owner := "no port"
				if port := p.snap.portOfIface[iface.UUID]; port != nil {
					owner = "port " + port.Name
				}
				errs = append(errs, fmt.Errorf("interface %s already exists (on %s) and %s", wp.name, owner, ownerOf(iface.ExternalIDs)))
			}
		}
	}
	return errors.Join(errs...)
}

// addBridge creates bridge w with all its ports and its controller.
func (p *planner) addBridge(w *wantBridge) {
	var ports, ctrls []string
	detail := "datapath_type=" + w.datapathType
	if id := w.otherConfig["datapath-id"]; id != "" {
		detail += " datapath-id=" + id
	}
	p.change("+ bridge %s (%s)", w.name, detail)
	p.plan.NewBridges = append(p.plan.NewBridges, w.name)
	p.b.guardAbsent(vswitch.BridgeTable, w.name)
	for _, wp := range w.ports {
		ports = append(ports, p.b.createPort(wp, p.b.createInterface(wp)))
		if wp.kind != kindLocal {
			p.change("+ port %s %s %s", w.name, wp.name, wp.summary())
		}
	}
	for _, wc := range w.controllers {
		ctrls = append(ctrls, p.b.createController(wc))
		p.change("+ controller %s %s %s", w.name, wc.target, wc.summary())
	}
	p.b.addBridgeToRoot(p.snap.root.UUID, p.b.createBridge(w, ports, ctrls))
}

// reconcileBridge updates bridge cur (ours) in place to match w.
func (p *planner) reconcileBridge(w *wantBridge, cur *vswitch.Bridge) {
	subject := "bridge " + w.name
	if !p.snap.rootedBridges[cur.UUID] {
		// Unreachable in practice: OVSDB collects unlisted bridges.
		p.b.addBridgeToRoot(p.snap.root.UUID, cur.UUID)
		p.change("~ %s listed in Open_vSwitch", subject)
	}
	row := &vswitch.Bridge{UUID: cur.UUID}
	var fields []any
	if cur.DatapathType != w.datapathType {
		p.change("~ %s datapath_type %s -> %s", subject, show(cur.DatapathType), w.datapathType)
		row.DatapathType = w.datapathType
		fields = append(fields, &row.DatapathType)
	}
	if cur.FailMode == nil || *cur.FailMode != w.failMode {
		p.change("~ %s fail_mode %s -> %s", subject, showPtr(cur.FailMode), w.failMode)
		fm := w.failMode
		row.FailMode = &fm
		fields = append(fields, &row.FailMode)
	}
	if !sameSet(cur.Protocols, w.protocols) {
		p.change("~ %s protocols %s -> %s", subject, showList(cur.Protocols), showList(w.protocols))
		row.Protocols = w.protocols
		fields = append(fields, &row.Protocols)
	}
	p.b.update(row, fields...)
	p.reconcileMap(subject, "other_config", row, &row.OtherConfig, cur.OtherConfig, w.otherConfig, keyIn(bridgeOtherConfigKeys), nil)
	p.reconcileMap(subject, "external_ids", row, &row.ExternalIDs, cur.ExternalIDs, w.externalIDs, isOurKey, nil)
	p.reconcileController(w, cur)

	// Ports: update ours in place, add missing ones, remove unwanted ones.
	wanted := map[string]bool{}
	for _, wp := range w.ports {
		wanted[wp.name] = true
		if port := p.snap.portsByName[wp.name]; port != nil {
			p.reconcilePort(wp, port, cur)
			continue
		}
		p.b.addPorts(cur.UUID, p.b.createPort(wp, p.b.createInterface(wp)))
		p.change("+ port %s %s %s", w.name, wp.name, wp.summary())
	}
	var gone []*vswitch.Port
	for _, u := range cur.Ports {
		if port := p.snap.ports[u]; port != nil && p.m.owns(port.ExternalIDs) && !wanted[port.Name] {
			gone = append(gone, port)
		}
	}
	p.removePorts(cur, gone)
}

// reconcileController makes a bridge's controllers of ours match
// w.controllers, one row per target; controllers someone else put on our
// bridge stay. A row already pointing at a wanted target is updated in
// place; a wanted target without one takes over a leftover row of ours
// (so a moved controller is a change of target, not a new row), or else
// gets a new row; leftovers beyond that go.
func (p *planner) reconcileController(w *wantBridge, cur *vswitch.Bridge) {
	var ours []*vswitch.Controller
	for _, u := range cur.Controller {
		k := p.snap.controllers[u]
		if k == nil {
			continue
		}
		if p.m.owns(k.ExternalIDs) {
			ours = append(ours, k)
		} else {
			p.note("bridge %s has a controller ovs-vxctl did not set (%s): left as it is", w.name, k.Target)
		}
	}
	slices.SortFunc(ours, func(a, b *vswitch.Controller) int { return strings.Compare(a.Target, b.Target) })
	used := map[*vswitch.Controller]bool{}
	var missing []*wantController
	for _, wc := range w.controllers {
		i := slices.IndexFunc(ours, func(k *vswitch.Controller) bool { return !used[k] && k.Target == wc.target })
		if i < 0 {
			missing = append(missing, wc)
			continue
		}
		used[ours[i]] = true
		p.updateController(w.name, wc, ours[i])
	}
	var leftovers []*vswitch.Controller
	for _, k := range ours {
		if !used[k] {
			leftovers = append(leftovers, k)
		}
	}
	for _, wc := range missing {
		if len(leftovers) > 0 {
			p.updateController(w.name, wc, leftovers[0])
			leftovers = leftovers[1:]
			continue
		}
		p.b.addControllers(cur.UUID, p.b.createController(wc))
		p.change("+ controller %s %s %s", w.name, wc.target, wc.summary())
	}
	var drop []string
	for _, k := range leftovers {
		drop = append(drop, k.UUID)
		p.change("- controller %s %s", w.name, k.Target)
	}
	p.b.removeControllers(cur.UUID, drop...)
}

// updateController updates Controller row k of bridge br in place to match
// wc, column by column.
func (p *planner) updateController(br string, wc *wantController, k *vswitch.Controller) {
	subject := "controller " + br
	row := &vswitch.Controller{UUID: k.UUID}
	var fields []any
	if k.Target != wc.target {
		p.change("~ %s target %s -> %s", subject, k.Target, wc.target)
		row.Target = wc.target
		fields = append(fields, &row.Target)
	}
	if k.ConnectionMode == nil || *k.ConnectionMode != wc.connectionMode {
		p.change("~ %s connection_mode %s -> %s", subject, showPtr(k.ConnectionMode), wc.connectionMode)
		mode := wc.connectionMode
		row.ConnectionMode = &mode
		fields = append(fields, &row.ConnectionMode)
	}
	for _, c := range []struct {
		column   string
		cur      *int
		want     int
		rowField **int
	}{
		{"controller_rate_limit", k.ControllerRateLimit, wc.rateLimit, &row.ControllerRateLimit},
		{"controller_burst_limit", k.ControllerBurstLimit, wc.burstLimit, &row.ControllerBurstLimit},
		{"inactivity_probe", k.InactivityProbe, wc.inactivityProbe, &row.InactivityProbe},
	} {
		if c.cur == nil || *c.cur != c.want {
			p.change("~ %s %s %s -> %d", subject, c.column, showIntPtr(c.cur), c.want)
			v := c.want
			*c.rowField = &v
			fields = append(fields, c.rowField)
		}
	}
	p.b.update(row, fields...)
	p.reconcileMap(subject, "external_ids", row, &row.ExternalIDs, k.ExternalIDs, wc.externalIDs, isOurKey, nil)
}

// reconcilePort updates port cur (ours) and its interface in place to match
// wp, moving it to bridge br if it sits on another bridge of ours.
func (p *planner) reconcilePort(wp *wantPort, cur *vswitch.Port, br *vswitch.Bridge) {
	subject := fmt.Sprintf("port %s %s", wp.bridge, wp.name)
	if old := p.snap.bridgeOfPort[cur.UUID]; old == nil || old.UUID != br.UUID {
		from := "no bridge"
		if old != nil {
			// conflicts() made sure old is ours.
			p.b.removePorts(old.UUID, cur.UUID)
			from = old.Name
		}
		p.b.addPorts(br.UUID, cur.UUID)
		p.change("~ %s moved from %s", subject, from)
	}

	row := &vswitch.Port{UUID: cur.UUID}
	var fields []any
	if !sameIntPtr(cur.Tag, wp.tag) {
		p.change("~ %s tag %s -> %s", subject, showIntPtr(cur.Tag), showIntPtr(wp.tag))
		row.Tag = wp.tag
		fields = append(fields, &row.Tag)
	}
	var mode *string
	if wp.tag != nil {
		m := vswitch.PortVLANModeAccess
		mode = &m
	}
	if !sameStrPtr(cur.VLANMode, mode) {
		p.change("~ %s vlan_mode %s -> %s", subject, showPtr(cur.VLANMode), showPtr(mode))
		row.VLANMode = mode
		fields = append(fields, &row.VLANMode)
	}

	iface := p.snap.ifaceOf(cur)
	if iface == nil {
		// Someone emptied or replaced our port's interface: give it a
		// fresh one (the old ones are collected).
		row.Interfaces = []string{p.b.createInterface(wp)}
		fields = append(fields, &row.Interfaces)
		p.change("~ %s interface recreated %s", subject, wp.summary())
	} else if len(cur.Interfaces) != 1 {
		row.Interfaces = []string{iface.UUID}
		fields = append(fields, &row.Interfaces)
		p.change("~ %s interfaces %d -> 1", subject, len(cur.Interfaces))
	}
	p.b.update(row, fields...)
	changed := p.reconcileMap(subject, "external_ids", row, &row.ExternalIDs, cur.ExternalIDs, wp.externalIDs, isOurKey, nil)
	if iface != nil {
		p.reconcileInterface(subject, wp, iface, changed)
	}
}

// reconcileInterface updates interface cur (ours) in place to match wp.
// Marks that changed on the port too (portChanged) are not described twice.
func (p *planner) reconcileInterface(subject string, wp *wantPort, cur *vswitch.Interface, portChanged map[string]bool) {
	row := &vswitch.Interface{UUID: cur.UUID}
	var fields []any
	if cur.Type != wp.ifType {
		p.change("~ %s type %s -> %s", subject, show(cur.Type), show(wp.ifType))
		row.Type = wp.ifType
		fields = append(fields, &row.Type)
	}
	if !sameIntPtr(cur.OfportRequest, wp.ofportRequest) {
		p.change("~ %s ofport_request %s -> %s", subject, showIntPtr(cur.OfportRequest), showIntPtr(wp.ofportRequest))
		row.OfportRequest = wp.ofportRequest
		fields = append(fields, &row.OfportRequest)
	}
	if !sameIntPtr(cur.MTURequest, wp.mtuRequest) {
		p.change("~ %s mtu_request %s -> %s", subject, showIntPtr(cur.MTURequest), showIntPtr(wp.mtuRequest))
		row.MTURequest = wp.mtuRequest
		fields = append(fields, &row.MTURequest)
	}
	if !sameStrPtr(cur.MAC, wp.mac) {
		p.change("~ %s mac %s -> %s", subject, showStrPtr(cur.MAC), showStrPtr(wp.mac))
		row.MAC = wp.mac
		fields = append(fields, &row.MAC)
	}
	p.b.update(row, fields...)
	p.reconcileMap(subject, "options", row, &row.Options, cur.Options, wp.options, keyIn(ifaceOptionKeys), nil)
	p.reconcileMap(subject+" interface", "external_ids", row, &row.ExternalIDs, cur.ExternalIDs, wp.externalIDs, isOurKey, portChanged)
}

// reconcileMap makes the keys of a map column that we manage (managed(key),
// or wanted) equal to want in the row m, leaving every other key alone. It
// describes each changed key but those in quiet, and returns the changed keys.
func (p *planner) reconcileMap(subject, column string, m model.Model, field *map[string]string, cur, want map[string]string, managed func(string) bool, quiet map[string]bool) map[string]bool {
	var del []string
	ins := map[string]string{}
	keys := map[string]bool{}
	for k := range cur {
		if managed(k) {
			keys[k] = true
		}
	}
	for k := range want {
		keys[k] = true
	}
	changed := map[string]bool{}
	for _, k := range sortedKeys(keys) {
		cv, has := cur[k]
		wv, wanted := want[k]
		switch {
		case wanted && has && cv == wv:
			continue
		case wanted:
			if has {
				del = append(del, k)
			}
			ins[k] = wv
		default:
			del = append(del, k)
		}
		changed[k] = true
		if !quiet[k] {
			p.change("~ %s %s:%s %s -> %s", subject, column, k, showMapVal(cv, has), showMapVal(wv, wanted))
		}
	}
	p.b.setMapKeys(m, field, del, ins)
	return changed
}

// removePorts removes ports (ours) from bridge br (ours).
func (p *planner) removePorts(br *vswitch.Bridge, ports []*vswitch.Port) {
	slices.SortFunc(ports, func(a, b *vswitch.Port) int { return strings.Compare(a.Name, b.Name) })
	var uuids []string
	for _, port := range ports {
		uuids = append(uuids, port.UUID)
		p.change("- port %s %s", br.Name, port.Name)
	}
	p.b.removePorts(br.UUID, uuids...)
}

// foreignAttachments describes the rows of bridge br (ours) other than
// ports that ovs-vxctl did not create: controllers not ours, and any
// mirror, NetFlow, sFlow or IPFIX (ovs-vxctl creates none). Deleting the
// bridge would delete them.
func (p *planner) foreignAttachments(br *vswitch.Bridge) []string {
	var out []string
	for _, u := range br.Controller {
		if k := p.snap.controllers[u]; k != nil && !p.m.owns(k.ExternalIDs) {
			out = append(out, "controller "+k.Target)
		}
	}
	if len(br.Mirrors) > 0 {
		out = append(out, fmt.Sprintf("%d mirrors", len(br.Mirrors)))
	}
	for what, set := range map[string]bool{"netflow": br.Netflow != nil, "sflow": br.Sflow != nil, "ipfix": br.IPFIX != nil} {
		if set {
			out = append(out, what)
		}
	}
	slices.Sort(out)
	return out
}

// removeBridge removes bridge br (ours) with its ports, unless it holds
// ports that are not ours: then only our ports and controllers go.
func (p *planner) removeBridge(br *vswitch.Bridge) {
	var ours []*vswitch.Port
	var foreign []string
	for _, u := range br.Ports {
		port := p.snap.ports[u]
		switch {
		case port == nil:
		case p.m.owns(port.ExternalIDs):
			ours = append(ours, port)
		default:
			foreign = append(foreign, port.Name)
		}
	}
	// Rows hanging off the bridge go with it: someone else's keep it.
	foreign = append(foreign, p.foreignAttachments(br)...)
	if len(foreign) == 0 {
		p.b.removeBridgeFromRoot(p.snap.root.UUID, br.UUID)
		p.change("- bridge %s", br.Name)
		slices.SortFunc(ours, func(a, b *vswitch.Port) int { return strings.Compare(a.Name, b.Name) })
		for _, port := range ours {
			if port.Name != br.Name {
				p.change("- port %s %s", br.Name, port.Name)
			}
		}
		for _, u := range br.Controller {
			if k := p.snap.controllers[u]; k != nil && p.m.owns(k.ExternalIDs) {
				p.change("- controller %s %s", br.Name, k.Target)
			}
		}
		return
	}
	slices.Sort(foreign)
	p.note("bridge %s kept: it holds ports or rows ovs-vxctl did not create (%s)", br.Name, strings.Join(foreign, ", "))
	// Keep the bridge's local port with the bridge.
	ours = slices.DeleteFunc(ours, func(port *vswitch.Port) bool { return port.Name == br.Name })
	p.removePorts(br, ours)
	var drop []string
	for _, u := range br.Controller {
		if k := p.snap.controllers[u]; k != nil && p.m.owns(k.ExternalIDs) {
			drop = append(drop, k.UUID)
			p.change("- controller %s %s", br.Name, k.Target)
		}
	}
	p.b.removeControllers(br.UUID, drop...)
}

// strayPorts notes ports of ours that sit where we may not touch them.
func (p *planner) strayPorts() {
	for _, name := range sortedKeys(p.snap.portsByName) {
		port := p.snap.portsByName[name]
		if !p.m.owns(port.ExternalIDs) {
			continue
		}
		if br := p.snap.bridgeOfPort[port.UUID]; br != nil && !p.m.owns(br.ExternalIDs) {
			p.note("port %s carries our marks but sits on bridge %s, which is not ours: left as it is", name, br.Name)
		}
	}
}

// Value formatting for change lines.

func show(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func showPtr(s *string) string {
	if s == nil {
		return "(none)"
	}
	return show(*s)
}

func showIntPtr(i *int) string {
	if i == nil {
		return "(none)"
	}
	return strconv.Itoa(*i)
}

func showList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	return "[" + strings.Join(l, ",") + "]"
}

func showMapVal(v string, ok bool) string {
	if !ok {
		return "(none)"
	}
	return strconv.Quote(v)
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func sameIntPtr(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func sameStrPtr(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func keyIn(keys []string) func(string) bool {
	return func(k string) bool { return slices.Contains(keys, k) }
}

func showStrPtr(a *string) string {
	if a == nil {
		return "(none)"
	}
	return *a
}

// Package agent makes one host match its topology: the OVSDB side (bridges,
// patch pair, tunnels, ports) in one transaction, the flows of br-int and
// br-tun by diff over their management sockets, and the kernel side
// (internal port addresses, routes). It is what `ovs-vxctl apply`, `destroy`,
// `diff-flows`, `show` and `fdb` run; the lab runs it in every host.
package agent

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/hostnet"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/ovsdb"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// Options says which host to act on and where its OVS is.
type Options struct {
	Topology *topology.Topology
	Host     *topology.Host
	DB       string // OVSDB endpoint
	RunDir   string // OVS_RUNDIR: where <bridge>.mgmt sockets are
	DryRun   bool
	Log      *zap.Logger
	// SSL are the switch's TLS files for an ssl: controller target.
	SSL *ovsdb.SSLFiles
	// DBTLS are this client's TLS files for an ssl: DB endpoint.
	DBTLS *ovsdb.SSLFiles
}

func (o Options) mgmt(bridge string) string {
	return "unix:" + filepath.Join(o.RunDir, bridge+".mgmt")
}

// BridgeFlows is what a reconcile did (or, dry, would do) to one bridge.
type BridgeFlows struct {
	Bridge string
	Diff   openflow.Diff
	// Foreign are flows on the bridge that neither ovs-vxctl nor its
	// controller installed, nor learn() made: apply removes them.
	Foreign  []flows.Flow
	FlowMods int
}

// Empty reports whether the bridge's flows are (or were) as compiled.
func (b BridgeFlows) Empty() bool { return b.Diff.Empty() && len(b.Foreign) == 0 }

// Report says what Apply or Destroy changed, or would change.
type Report struct {
	OVSDB  []string
	Flows  []BridgeFlows
	Kernel []string
	// Warnings are things apply let pass but someone should know, such as
	// a vm interface that does not exist yet.
	Warnings []string
	Timings  map[string]time.Duration
	Duration time.Duration
}

// warn logs each warning once and records it.
func (r *Report) warn(log *zap.Logger, warnings ...string) {
	for _, w := range warnings {
		if slices.Contains(r.Warnings, w) {
			continue
		}
		r.Warnings = append(r.Warnings, w)
		if log != nil {
			log.Warn(w)
		}
	}
}

// Changed reports whether anything was (or would be) changed.
func (r *Report) Changed() bool {
	if len(r.OVSDB) > 0 || len(r.Kernel) > 0 {
		return true
	}
	for _, f := range r.Flows {
		if !f.Empty() {
			return true
		}
	}
	return false
}

// Apply makes the host match the topology. Everything that can fail on the
// input or on the host before the first change (allocation, compilation,
// OVSDB planning, the interfaces apply would take, the sockets it will
// need) runs before the first change, so a refusal changes nothing.
func Apply(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	db, err := ovsdb.Connect(ctx, o.DB, o.Log, ovsdb.WithTLSFiles(o.DBTLS))
	if err != nil {
		return nil, err // ovsdb.Connect names the endpoint
	}
	defer db.Close()
	a, err := o.prepare(ctx, db)
	if err != nil {
		return nil, err
	}
	rep := &Report{OVSDB: a.plan.Changes, Timings: map[string]time.Duration{}}
	rep.Timings["plan"] = time.Since(start)
	rep.warn(o.Log, a.plan.Warnings...)
	rep.warn(o.Log, a.warnings...)
	if o.DryRun {
		err = o.dryRun(ctx, a, rep)
	} else {
		err = o.commit(ctx, db, a, rep)
	}
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// applyRun is what prepare worked out for one apply.
type applyRun struct {
	alloc topology.Allocation // what OVSDB requests
	// flowAlloc is alloc with the ofports OVS gave the tunnel ports
	// that exist: what the flows name.
	flowAlloc topology.Allocation
	plan      *ovsdb.Plan
	wanted    []bridgeFlows
	ifs       []ovsdb.HostInterface // before the transaction
	warnings  []string
}

// prepare computes everything apply will do and checks, changing nothing,
// that it may and can: the OVSDB plan refuses rows that are not ours,
// checkInterfaces kernel interfaces that are not what they should be, and
// preflight the sockets the flows will need.
func (o Options) prepare(ctx context.Context, db *ovsdb.Client) (*applyRun, error) {
	t, h := o.Topology, o.Host
	a := &applyRun{}
	var err error
	if a.alloc, a.flowAlloc, err = allocation(ctx, db, t, h); err != nil {
		return nil, err
	}
	if a.wanted, err = wantedFlows(t, h, a.flowAlloc); err != nil {
		return nil, err
	}
	links, err := hostnet.Links(ctx)
	if err != nil {
		return nil, err
	}
	mtu := networkMTUs(t, h, links)
	if mtu.unknown != "" && o.Log != nil {
		// Logged, not a warning of the report: nothing is wrong, and a
		// network without mtu keeps the MTU OVS gives its ports.
		o.Log.Warn(mtu.unknown)
	}
	if a.plan, err = db.PlanWith(ctx, t, h, a.alloc, ovsdb.PlanOptions{SSL: o.SSL, MTU: mtu.byVNI}); err != nil {
		return nil, fmt.Errorf("planning OVSDB changes: %w", err)
	}
	var bridges []string
	for _, w := range a.wanted {
		bridges = append(bridges, w.bridge)
	}
	if err := o.preflight(a.plan.NewBridges, bridges); err != nil {
		return nil, fmt.Errorf("checking what apply needs: %w", err)
	}
	if err := a.checkInterfaces(ctx, db, t, h, links); err != nil {
		return nil, err
	}
	// The kernel step runs last: its refusals (an address on an interface
	// not ours, a route over one not ours) must come now, before OVSDB.
	if _, err := hostnet.PlanPending(ctx, t, h, ownedInternalPorts(a.ifs), pendingInternalPorts(a.ifs)); err != nil {
		return nil, fmt.Errorf("planning addresses and routes, nothing was changed: %w", err)
	}
	a.warnings = append(a.warnings, mtu.warnings...)
	return a, nil
}

// checkInterfaces reads the host's interfaces from OVSDB and refuses
// (checkInterfaces) those apply must not take.
func (a *applyRun) checkInterfaces(ctx context.Context, db *ovsdb.Client, t *topology.Topology, h *topology.Host, links map[string]hostnet.Link) error {
	var err error
	if a.ifs, err = db.HostInterfaces(ctx, t, h); err != nil {
		return fmt.Errorf("reading the interfaces of host %s: %w", h.Name, err)
	}
	var vteps map[string]string
	a.warnings, err = checkInterfaces(a.ifs, links, func() map[string]string {
		if vteps == nil {
			vteps = vtepDevices(ctx, t, h, links)
		}
		return vteps
	})
	if err != nil {
		return fmt.Errorf("checking the interfaces of host %s, nothing was changed: %w", h.Name, err)
	}
	return nil
}

// allocation is host h's allocation: alloc, what OVSDB requests, where a
// new tunnel port never asks for a number a port on br-tun holds now (OVS
// would give it another, see topology.AllocateAvoiding); and flowAlloc,
// alloc with the ofports OVS really gave the tunnel ports that exist.
func allocation(ctx context.Context, db *ovsdb.Client, t *topology.Topology, h *topology.Host) (alloc, flowAlloc topology.Allocation, err error) {
	prev, err := db.CurrentAllocation(t, h)
	if err != nil {
		return alloc, flowAlloc, fmt.Errorf("reading the allocation of host %s: %w", h.Name, err)
	}
	held, err := db.HeldOFPorts(ctx, topology.BridgeTun)
	if err != nil {
		return alloc, flowAlloc, fmt.Errorf("reading the port numbers of %s: %w", topology.BridgeTun, err)
	}
	if alloc, err = t.AllocateAvoiding(h, prev, held); err != nil {
		return alloc, flowAlloc, err
	}
	real, err := db.TunnelOFPorts(ctx, t, h)
	if err != nil {
		return alloc, flowAlloc, fmt.Errorf("reading the ofports of host %s's tunnel ports: %w", h.Name, err)
	}
	return alloc, withOFPorts(alloc, real), nil
}

// withOFPorts is alloc with the tunnel ofports of real, where it has one.
func withOFPorts(alloc topology.Allocation, real map[string]uint32) topology.Allocation {
	out := topology.Allocation{LocalVLAN: alloc.LocalVLAN, TunnelOFPort: maps.Clone(alloc.TunnelOFPort)}
	for peer := range out.TunnelOFPort {
		if n, ok := real[peer]; ok {
			out.TunnelOFPort[peer] = n
		}
	}
	return out
}

// mismatched lists, sorted, the peers whose tunnel port has an ofport other
// than the one alloc requests.
func mismatched(alloc topology.Allocation, real map[string]uint32) []string {
	var out []string
	for peer, want := range alloc.TunnelOFPort {
		if n, ok := real[peer]; ok && n != want {
			out = append(out, peer)
		}
	}
	slices.Sort(out)
	return out
}

// wantedFlows compiles what apply installs on each bridge with alloc.
func wantedFlows(t *topology.Topology, h *topology.Host, alloc topology.Allocation) ([]bridgeFlows, error) {
	prog, err := flows.Compile(t, h, alloc)
	if err != nil {
		return nil, err
	}
	return programmed(h, prog, alloc), nil
}

// dryRun fills rep with what commit would change.
func (o Options) dryRun(ctx context.Context, a *applyRun, rep *Report) error {
	for _, w := range a.wanted {
		bf, err := o.diffBridge(ctx, w)
		if err != nil {
			return err
		}
		rep.Flows = append(rep.Flows, bf)
	}
	// Internal ports apply would create have no kernel interface yet:
	// planned as the real run will find them.
	kc, err := hostnet.PlanPending(ctx, o.Topology, o.Host, ownedInternalPorts(a.ifs), pendingInternalPorts(a.ifs))
	if err != nil {
		return fmt.Errorf("planning addresses and routes: %w", err)
	}
	for _, c := range kc {
		rep.Kernel = append(rep.Kernel, c.Text)
	}
	return nil
}

// commit makes the changes: OVSDB in one transaction, checked interface by
// interface, then the flows, then addresses and routes of our own
// internal ports.
func (o Options) commit(ctx context.Context, db *ovsdb.Client, a *applyRun, rep *Report) error {
	step := time.Now()
	if err := db.Apply(ctx, a.plan); err != nil {
		return fmt.Errorf("applying OVSDB changes: %w", err)
	}
	ifs, err := o.checkAttached(ctx, db, rep)
	if err != nil {
		return err
	}
	if err := o.settleOFPorts(ctx, db, a, rep); err != nil {
		return err
	}
	rep.Timings["ovsdb"] = time.Since(step)

	step = time.Now()
	for _, w := range a.wanted {
		bf, err := o.reconcileBridge(ctx, w)
		if err != nil {
			return err
		}
		rep.Flows = append(rep.Flows, bf)
	}
	rep.Timings["flows"] = time.Since(step)

	step = time.Now()
	kc, err := hostnet.Plan(ctx, o.Topology, o.Host, ownedInternalPorts(ifs))
	if err != nil {
		return fmt.Errorf("planning addresses and routes: %w", err)
	}
	if err := hostnet.Apply(ctx, kc); err != nil {
		return err
	}
	for _, c := range kc {
		rep.Kernel = append(rep.Kernel, c.Text)
	}
	rep.Timings["kernel"] = time.Since(step)
	return nil
}

// attachWait bounds how long apply waits, after the transaction, for
// ovs-vswitchd to say what became of each interface (it normally has by
// the time it acknowledges the transaction).
const attachWait = 2 * time.Second

// checkAttached waits for ovs-vswitchd to attach our interfaces and fails on
// any it could not; it returns them.
func (o Options) checkAttached(ctx context.Context, db *ovsdb.Client, rep *Report) ([]ovsdb.HostInterface, error) {
	ifs, err := db.SettledInterfaces(ctx, o.Topology, o.Host, attachWait)
	if err != nil {
		return nil, err
	}
	links, err := hostnet.Links(ctx)
	if err != nil {
		return nil, err
	}
	warnings, err := checkAttached(ifs, links)
	rep.warn(o.Log, warnings...)
	return ifs, err
}

// settleOFPorts makes the flows name the tunnel ofports OVS gave. A port
// that did not get its requested number (a port removed in the same
// transaction held it) gets it once ovs-vswitchd reconfigures; one that
// still has another number keeps it, with a warning, and its flows follow.
func (o Options) settleOFPorts(ctx context.Context, db *ovsdb.Client, a *applyRun, rep *Report) error {
	t, h := o.Topology, o.Host
	real, err := db.TunnelOFPorts(ctx, t, h)
	if err != nil {
		return fmt.Errorf("reading the ofports of host %s's tunnel ports: %w", h.Name, err)
	}
	if len(mismatched(a.alloc, real)) > 0 {
		if err := db.Reconfigure(ctx); err != nil {
			return err
		}
		if real, err = db.TunnelOFPorts(ctx, t, h); err != nil {
			return fmt.Errorf("reading the ofports of host %s's tunnel ports: %w", h.Name, err)
		}
		for _, peer := range mismatched(a.alloc, real) {
			rep.warn(o.Log, fmt.Sprintf("tunnel port %s has ofport %d, not the requested %d (does another port on %s hold it?): its flows use %d",
				topology.TunnelPortName(peer), real[peer], a.alloc.TunnelOFPort[peer], topology.BridgeTun, real[peer]))
		}
	}
	flowAlloc := withOFPorts(a.alloc, real)
	if flowAlloc.Equal(a.flowAlloc) {
		return nil
	}
	wanted, err := wantedFlows(t, h, flowAlloc)
	if err != nil {
		return err
	}
	a.flowAlloc, a.wanted = flowAlloc, wanted
	return nil
}

// bridgeFlows is a set of flows apply owns on one bridge: those whose cookie
// matches cookie under mask.
type bridgeFlows struct {
	bridge       string
	flows        []flows.Flow
	cookie, mask uint64
}

// programmed lists what apply installs over the management sockets: br-int's
// NORMAL flow always (the controller, in controller mode, installs the same
// flow, so both agree); br-tun's pipeline in learn mode; in controller mode
// only the advertisement of the host's local VLANs, the controller does the
// rest.
func programmed(h *topology.Host, prog flows.Program, alloc topology.Allocation) []bridgeFlows {
	out := []bridgeFlows{{topology.BridgeInt, prog.Int, flows.CookieOwned, flows.CookieOwnerMask}}
	if h.Mode == topology.ModeLearn {
		return append(out, bridgeFlows{topology.BridgeTun, prog.Tun, flows.CookieOwned, flows.CookieOwnerMask})
	}
	return append(out, bridgeFlows{topology.BridgeTun, flows.CompileAllocation(alloc), flows.CookieAllocation, flows.CookieOwnerMask})
}

// vxctlCookies are the cookie owners of every flow ovs-vxctl, its
// controller or learn() put on its bridges; any other flow there is foreign,
// and apply removes it, as OVN and Neutron do on theirs.
func vxctlCookies() openflow.Owned {
	return openflow.Owned{Mask: flows.CookieOwnerMask, Owners: []uint64{
		flows.CookieOwned, flows.CookieLearned, flows.CookieController, flows.CookieAllocation}}
}

// reconcileBridge removes the bridge's foreign flows (first: one may hold
// the Key of a flow to add), then installs w's flows.
func (o Options) reconcileBridge(ctx context.Context, w bridgeFlows) (BridgeFlows, error) {
	conn, err := openflow.Dial(ctx, o.mgmt(w.bridge), o.Log)
	if err != nil {
		return BridgeFlows{}, fmt.Errorf("connecting to %s's management socket: %w", w.bridge, err)
	}
	defer conn.Close()
	foreign, err := conn.RemoveForeign(ctx, vxctlCookies())
	if err != nil {
		return BridgeFlows{}, fmt.Errorf("removing foreign flows from %s: %w", w.bridge, err)
	}
	res, err := conn.Reconcile(ctx, w.flows, w.cookie, w.mask)
	if err != nil {
		return BridgeFlows{}, fmt.Errorf("installing the flows of %s: %w", w.bridge, err)
	}
	return BridgeFlows{Bridge: w.bridge, Diff: res.Diff, Foreign: foreign, FlowMods: res.FlowMods + len(foreign)}, nil
}

// diffBridge compares compiled with installed flows and lists the foreign
// ones; a bridge that does not exist yet has none installed.
func (o Options) diffBridge(ctx context.Context, w bridgeFlows) (BridgeFlows, error) {
	all, err := o.installedDecoded(ctx, w.bridge, 0, 0)
	if err != nil {
		return BridgeFlows{}, err
	}
	installed, foreign := vxctlCookies().Split(all, w.cookie, w.mask)
	return BridgeFlows{Bridge: w.bridge, Diff: openflow.ComputeDiff(w.flows, flowsOf(installed)), Foreign: flowsOf(foreign)}, nil
}

// Installed dumps the flows on a local bridge whose cookie matches cookie
// under mask; none when the bridge does not exist.
func (o Options) Installed(ctx context.Context, bridge string, cookie, mask uint64) ([]flows.Flow, error) {
	d, err := o.installedDecoded(ctx, bridge, cookie, mask)
	return flowsOf(d), err
}

func (o Options) installedDecoded(ctx context.Context, bridge string, cookie, mask uint64) ([]ofcodec.Decoded, error) {
	sock := filepath.Join(o.RunDir, bridge+".mgmt")
	if _, err := os.Stat(sock); os.IsNotExist(err) {
		return nil, nil
	}
	conn, err := openflow.Dial(ctx, o.mgmt(bridge), o.Log)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s's management socket: %w", bridge, err)
	}
	defer conn.Close()
	fl, err := conn.DumpDecoded(ctx, cookie, mask)
	if err != nil {
		return nil, fmt.Errorf("dumping the flows of %s: %w", bridge, err)
	}
	return fl, nil
}

func flowsOf(d []ofcodec.Decoded) []flows.Flow {
	out := make([]flows.Flow, len(d))
	for i := range d {
		out[i] = d[i].Flow
	}
	return out
}

// Destroy removes everything Apply created on the host, and nothing else.
func Destroy(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	db, err := ovsdb.Connect(ctx, o.DB, o.Log, ovsdb.WithTLSFiles(o.DBTLS))
	if err != nil {
		return nil, err // ovsdb.Connect names the endpoint
	}
	defer db.Close()
	plan, err := db.PlanDestroy(ctx, o.Topology, o.Host)
	if err != nil {
		return nil, fmt.Errorf("planning removal: %w", err)
	}
	kc, err := hostnet.PlanDestroy(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{OVSDB: plan.Changes, Timings: map[string]time.Duration{}}
	for _, c := range kc {
		rep.Kernel = append(rep.Kernel, c.Text)
	}
	if o.DryRun {
		return rep, nil
	}
	if err := db.Apply(ctx, plan); err != nil {
		return nil, fmt.Errorf("removing OVSDB rows: %w", err)
	}
	if err := hostnet.Apply(ctx, kc); err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// DiffFlows compares the compiled flows of every bridge ovs-vxctl programs on
// this host with what is installed, using the host's persisted allocation
// and its tunnel ports' real numbers, and lists the foreign flows there.
func DiffFlows(ctx context.Context, o Options) ([]BridgeFlows, error) {
	db, err := ovsdb.Connect(ctx, o.DB, o.Log, ovsdb.WithTLSFiles(o.DBTLS))
	if err != nil {
		return nil, err // ovsdb.Connect names the endpoint
	}
	defer db.Close()
	// The ports' real numbers: the flows must name them.
	_, alloc, err := allocation(ctx, db, o.Topology, o.Host)
	if err != nil {
		return nil, err
	}
	prog, err := flows.Compile(o.Topology, o.Host, alloc)
	if err != nil {
		return nil, err
	}
	// The whole pipeline, whoever installs it: apply (learn mode) or the
	// controller (controller mode, where the controller's own table 20 and
	// ARP entries come on top and are not compared).
	var out []BridgeFlows
	for _, w := range []bridgeFlows{
		{topology.BridgeInt, prog.Int, flows.CookieOwned, flows.CookieOwnerMask},
		{topology.BridgeTun, prog.Tun, flows.CookieOwned, flows.CookieOwnerMask},
	} {
		bf, err := o.diffBridge(ctx, w)
		if err != nil {
			return nil, err
		}
		out = append(out, bf)
	}
	return out, nil
}

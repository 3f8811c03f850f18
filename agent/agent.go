// Package agent makes one host match its topology: the OVSDB side (bridges,
// patch pair, tunnels, ports) in one transaction, the flows of br-int and
// br-tun by diff over their management sockets, and the kernel side
// (internal port addresses, routes). It is what `ovs-vxctl apply`, `destroy`,
// `diff-flows`, `show` and `fdb` run; the lab runs it in every host.
package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/hostnet"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
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
}

func (o Options) mgmt(bridge string) string {
	return "unix:" + filepath.Join(o.RunDir, bridge+".mgmt")
}

// BridgeFlows is what a reconcile did (or, dry, would do) to one bridge.
type BridgeFlows struct {
	Bridge   string
	Diff     openflow.Diff
	FlowMods int
}

// Report says what Apply or Destroy changed, or would change.
type Report struct {
	OVSDB    []string
	Flows    []BridgeFlows
	Kernel   []string
	Timings  map[string]time.Duration
	Duration time.Duration
}

// Changed reports whether anything was (or would be) changed.
func (r *Report) Changed() bool {
	if len(r.OVSDB) > 0 || len(r.Kernel) > 0 {
		return true
	}
	for _, f := range r.Flows {
		if !f.Diff.Empty() {
			return true
		}
	}
	return false
}

// Apply makes the host match the topology. Everything that can fail on the
// input (allocation, compilation, OVSDB planning) runs before the first
// change, so a bad input changes nothing.
func Apply(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	rep := &Report{Timings: map[string]time.Duration{}}
	t, h := o.Topology, o.Host
	db, err := ovsdb.Connect(ctx, o.DB, o.Log)
	if err != nil {
		return nil, fmt.Errorf("connecting to OVSDB at %s: %w", o.DB, err)
	}
	defer db.Close()

	prev, err := db.CurrentAllocation(t, h)
	if err != nil {
		return nil, fmt.Errorf("reading the allocation of host %s: %w", h.Name, err)
	}
	alloc, err := t.Allocate(h, prev)
	if err != nil {
		return nil, err
	}
	prog, err := flows.Compile(t, h, alloc)
	if err != nil {
		return nil, err
	}
	plan, err := db.PlanWith(ctx, t, h, alloc, ovsdb.PlanOptions{SSL: o.SSL})
	if err != nil {
		return nil, fmt.Errorf("planning OVSDB changes: %w", err)
	}
	rep.OVSDB = plan.Changes
	rep.Timings["plan"] = time.Since(start)

	wanted := programmed(h, prog, alloc)

	if o.DryRun {
		for _, w := range wanted {
			d, err := o.diffBridge(ctx, w)
			if err != nil {
				return nil, err
			}
			rep.Flows = append(rep.Flows, BridgeFlows{Bridge: w.bridge, Diff: d})
		}
		kc, err := hostnet.Plan(ctx, t, h)
		if err != nil {
			// Internal ports that apply would create do not exist yet.
			o.Log.Debug("kernel plan incomplete in dry run", zap.Error(err))
		}
		for _, c := range kc {
			rep.Kernel = append(rep.Kernel, c.Text)
		}
		rep.Duration = time.Since(start)
		return rep, nil
	}

	step := time.Now()
	if err := db.Apply(ctx, plan); err != nil {
		return nil, fmt.Errorf("applying OVSDB changes: %w", err)
	}
	if err := checkOFPorts(ctx, db, alloc); err != nil {
		return nil, err
	}
	rep.Timings["ovsdb"] = time.Since(step)

	step = time.Now()
	for _, w := range wanted {
		bf, err := o.reconcileBridge(ctx, w)
		if err != nil {
			return nil, err
		}
		rep.Flows = append(rep.Flows, bf)
	}
	rep.Timings["flows"] = time.Since(step)

	step = time.Now()
	kc, err := hostnet.Plan(ctx, t, h)
	if err != nil {
		return nil, fmt.Errorf("planning addresses and routes: %w", err)
	}
	if err := hostnet.Apply(ctx, kc); err != nil {
		return nil, err
	}
	for _, c := range kc {
		rep.Kernel = append(rep.Kernel, c.Text)
	}
	rep.Timings["kernel"] = time.Since(step)
	rep.Duration = time.Since(start)
	return rep, nil
}

// checkOFPorts makes sure OVS honoured every requested tunnel ofport: the
// flows name them, so a port that got another number would silently break
// forwarding.
func checkOFPorts(ctx context.Context, db *ovsdb.Client, alloc topology.Allocation) error {
	for peer, want := range alloc.TunnelOFPort {
		got, err := db.OFPort(ctx, flows.BridgeTun, ovsdb.TunnelPortName(peer))
		if err != nil {
			return fmt.Errorf("reading the ofport of the tunnel to %s: %w", peer, err)
		}
		if got != int(want) {
			return fmt.Errorf("tunnel port %s got ofport %d, not the requested %d (is the number taken by another port on br-tun?)",
				ovsdb.TunnelPortName(peer), got, want)
		}
	}
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
	out := []bridgeFlows{{flows.BridgeInt, prog.Int, flows.CookieOwned, flows.CookieOwnerMask}}
	if h.Mode == topology.ModeLearn {
		return append(out, bridgeFlows{flows.BridgeTun, prog.Tun, flows.CookieOwned, flows.CookieOwnerMask})
	}
	return append(out, bridgeFlows{flows.BridgeTun, flows.CompileAllocation(alloc), flows.CookieAllocation, flows.CookieOwnerMask})
}

func (o Options) reconcileBridge(ctx context.Context, w bridgeFlows) (BridgeFlows, error) {
	conn, err := openflow.Dial(ctx, o.mgmt(w.bridge), o.Log)
	if err != nil {
		return BridgeFlows{}, fmt.Errorf("connecting to %s's management socket: %w", w.bridge, err)
	}
	defer conn.Close()
	res, err := conn.Reconcile(ctx, w.flows, w.cookie, w.mask)
	if err != nil {
		return BridgeFlows{}, fmt.Errorf("installing the flows of %s: %w", w.bridge, err)
	}
	return BridgeFlows{Bridge: w.bridge, Diff: res.Diff, FlowMods: res.FlowMods}, nil
}

// diffBridge compares compiled with installed flows; a bridge that does not
// exist yet has none installed.
func (o Options) diffBridge(ctx context.Context, w bridgeFlows) (openflow.Diff, error) {
	installed, err := o.Installed(ctx, w.bridge, w.cookie, w.mask)
	if err != nil {
		return openflow.Diff{}, err
	}
	return openflow.ComputeDiff(w.flows, installed), nil
}

// Installed dumps the flows on a local bridge whose cookie matches cookie
// under mask; none when the bridge does not exist.
func (o Options) Installed(ctx context.Context, bridge string, cookie, mask uint64) ([]flows.Flow, error) {
	sock := filepath.Join(o.RunDir, bridge+".mgmt")
	if _, err := os.Stat(sock); os.IsNotExist(err) {
		return nil, nil
	}
	conn, err := openflow.Dial(ctx, o.mgmt(bridge), o.Log)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s's management socket: %w", bridge, err)
	}
	defer conn.Close()
	fl, err := conn.Dump(ctx, cookie, mask)
	if err != nil {
		return nil, fmt.Errorf("dumping the flows of %s: %w", bridge, err)
	}
	return fl, nil
}

// Destroy removes everything Apply created on the host, and nothing else.
func Destroy(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	db, err := ovsdb.Connect(ctx, o.DB, o.Log)
	if err != nil {
		return nil, fmt.Errorf("connecting to OVSDB at %s: %w", o.DB, err)
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
// this host with what is installed, using the host's persisted allocation.
func DiffFlows(ctx context.Context, o Options) ([]BridgeFlows, error) {
	db, err := ovsdb.Connect(ctx, o.DB, o.Log)
	if err != nil {
		return nil, fmt.Errorf("connecting to OVSDB at %s: %w", o.DB, err)
	}
	defer db.Close()
	prev, err := db.CurrentAllocation(o.Topology, o.Host)
	if err != nil {
		return nil, err
	}
	alloc, err := o.Topology.Allocate(o.Host, prev)
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
		{flows.BridgeInt, prog.Int, flows.CookieOwned, flows.CookieOwnerMask},
		{flows.BridgeTun, prog.Tun, flows.CookieOwned, flows.CookieOwnerMask},
	} {
		d, err := o.diffBridge(ctx, w)
		if err != nil {
			return nil, err
		}
		out = append(out, BridgeFlows{Bridge: w.bridge, Diff: d})
	}
	return out, nil
}

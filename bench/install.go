package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofcodec"
	"github.com/ovs-vxctl/ovs-vxctl/openflow/ofconn"
)

// reconcileRange is what the controller reconciles on br-tun: its compiled
// pipeline (CookieOwned) and its endpoint entries (CookieController).
const (
	reconcileCookie = flows.CookieOwned
	reconcileMask   = flows.ControllerReconcileMask
)

// writeFlowsFile writes fl as `ovs-ofctl add-flows` reads them: one flow a
// line, in the text Flow.String renders (ovs-ofctl's own syntax).
func writeFlowsFile(path string, fl []flows.Flow) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the flows file: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, fl := range fl {
		w.WriteString(fl.String())
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing the flows file: %w", err)
	}
	return f.Close()
}

// nativeReconcile connects to br-tun, reconciles it to fl and disconnects:
// what `ovs-vxctl apply` and the controller do (dump, diff, one bundle).
func nativeReconcile(ctx context.Context, env *ovsEnv, fl []flows.Flow) (openflow.Result, time.Duration, error) {
	start := time.Now()
	sw, err := openflow.Dial(ctx, env.target(), nil)
	if err != nil {
		return openflow.Result{}, 0, err
	}
	res, err := sw.Reconcile(ctx, fl, reconcileCookie, reconcileMask)
	sw.Close()
	return res, time.Since(start), err
}

// nativeInstall connects, sends fl as plain flow-mods and a barrier (no
// bundle, no dump) and disconnects.
func nativeInstall(ctx context.Context, env *ovsEnv, fl []flows.Flow) (time.Duration, error) {
	start := time.Now()
	sw, err := openflow.Dial(ctx, env.target(), nil)
	if err != nil {
		return 0, err
	}
	err = sw.Install(ctx, fl)
	sw.Close()
	return time.Since(start), err
}

// expectFlows fails unless br-tun holds exactly n flows.
func expectFlows(ctx context.Context, env *ovsEnv, n int, after string) error {
	got, err := env.flowCount(ctx)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("after %s br-tun holds %d flows, want %d", after, got, n)
	}
	return nil
}

// benchInstall is figure 1: the same flows into a fresh br-tun, by
// ovs-vxctl (reconcile: dump + one bundle; and plain flow-mods + barrier),
// by `ovs-ofctl --bundle add-flows` of the same flows as text, and as one
// bundle encoded beforehand and written in one go: what ovs-vswitchd itself
// needs, the limit the others are measured against.
func benchInstall(ctx context.Context, b *bench, sec *Section, sets []*flowSet) error {
	env := b.ovs
	var plot []installPoint
	for _, fs := range sets {
		n := len(fs.flows)
		file := filepath.Join(env.inst.Dir, fmt.Sprintf("flows-%d.txt", n))
		if err := writeFlowsFile(file, fs.flows); err != nil {
			return err
		}
		progress("install: %d flows (%s), %d+ runs of ovs-ofctl --bundle / ovs-vxctl reconcile / ovs-vxctl install / pre-encoded bundle", n, fs.size, b.runs)
		res, err := alternateSampled(ctx, b.runs, installSides(ctx, env, fs, file)...)
		os.Remove(file)
		if err != nil {
			return fmt.Errorf("installing %d flows: %w", n, err)
		}
		tag := sizeTag(n)
		o := b.r.addSample(sec, "install_ofctl_ms_"+tag, res[0], nil, "ovs-ofctl -O OpenFlow13 --bundle add-flows: process wall time and CPU")
		r := b.r.addSample(sec, "install_reconcile_ms_"+tag, res[1], nil, "connect + dump + diff + one atomic bundle + close")
		p := b.r.addSample(sec, "install_plain_ms_"+tag, res[2], nil, "connect + flow-mods + barrier, not atomic")
		l := b.r.addSample(sec, "install_limit_ms_"+tag, res[3], nil, "LIMIT: connect + one bundle, encoded beforehand, written in one go + commit + close")
		b.r.add(sec, "install_speedup_"+tag, o.wall/r.wall, "x", &Target{">=", 1.5},
			fmt.Sprintf("ovs-ofctl --bundle %.0f ms / ovs-vxctl reconcile %.0f ms (the limit allows %.2fx)", o.wall, r.wall, o.wall/l.wall))
		b.r.add(sec, "install_over_limit_"+tag, r.wall/l.wall, "x", &Target{"<=", 1.3},
			fmt.Sprintf("reconcile %.0f ms / limit %.0f ms; ovs-vswitchd CPU %.0f / %.0f ms", r.wall, l.wall, r.ovs, l.ovs))
		b.r.add(sec, "install_speedup_plain_"+tag, o.wall/p.wall, "x", nil, "ovs-ofctl --bundle / ovs-vxctl plain flow-mods")
		b.r.add(sec, "install_flows_per_s_"+tag, float64(n)/(r.wall/1000), "flows/s", nil, "ovs-vxctl reconcile")
		b.r.add(sec, "install_ofctl_flows_per_s_"+tag, float64(n)/(o.wall/1000), "flows/s", nil, "ovs-ofctl --bundle")
		sec.Details["install_"+tag] = map[string]any{
			"flows": n, "topology": fs.size.String(), "compiled_flows": fs.compiled,
			"endpoint_flows": n - fs.compiled, "learned_macs": len(fs.learned),
			"ofctl": samplesDetail(res[0]), "reconcile": samplesDetail(res[1]), "plain": samplesDetail(res[2]), "limit": samplesDetail(res[3]),
		}
		plot = append(plot, installPoint{n, o.wall, r.wall, p.wall})
	}
	b.install = plot
	return nil
}

// installSides are figure 1's four ways to install fs into a fresh br-tun:
// ovs-ofctl, reconcile, plain flow-mods and the pre-encoded bundle.
func installSides(ctx context.Context, env *ovsEnv, fs *flowSet, file string) []sampled {
	n := len(fs.flows)
	fresh := func(what string, f func() (sample, error)) sampled {
		return func() (sample, error) {
			if err := env.freshBridge(ctx); err != nil {
				return sample{}, err
			}
			s, err := f()
			if err != nil {
				return s, err
			}
			return s, expectFlows(ctx, env, n, what)
		}
	}
	reconcile := func() (sample, error) {
		var res openflow.Result
		s, err := env.measure(func() (time.Duration, error) {
			var err error
			res, _, err = nativeReconcile(ctx, env, fs.flows)
			return 0, err
		})
		if err == nil && res.FlowMods != n {
			err = fmt.Errorf("reconcile into an empty bridge sent %d flow-mods, want %d", res.FlowMods, n)
		}
		return s, err
	}
	install := func() (sample, error) {
		return env.measure(func() (time.Duration, error) {
			_, err := nativeInstall(ctx, env, fs.flows)
			return 0, err
		})
	}
	return []sampled{
		fresh("ovs-ofctl", ofctlSide(ctx, env, fs, file)),
		fresh("ovs-vxctl reconcile", reconcile),
		fresh("ovs-vxctl install", install),
		fresh("the pre-encoded bundle", func() (sample, error) { return rawBundle(ctx, env, fs.flows) }),
	}
}

// ofctlSide runs `ovs-ofctl --bundle add-flows` of file. The first run is
// checked: the C tool installed exactly what ovs-vxctl would, so a reconcile
// against it finds nothing to change.
func ofctlSide(ctx context.Context, env *ovsEnv, fs *flowSet, file string) func() (sample, error) {
	checked := false
	return func() (sample, error) {
		s, err := env.measure(func() (time.Duration, error) {
			_, cpu, err := env.ofctlBundle(ctx, file)
			return cpu, err
		})
		if err != nil || checked {
			return s, err
		}
		if err := expectFlows(ctx, env, len(fs.flows), "ovs-ofctl"); err != nil {
			return s, err
		}
		res, _, err := nativeReconcile(ctx, env, fs.flows)
		if err != nil {
			return s, fmt.Errorf("reconciling over ovs-ofctl's flows: %w", err)
		}
		if res.FlowMods != 0 {
			return s, fmt.Errorf("ovs-ofctl installed other flows than ovs-vxctl would: a reconcile sent %d flow-mods (%s)", res.FlowMods, firstLine(res.Diff.String()))
		}
		checked = true
		return s, nil
	}
}

// rawBundle installs fl as one atomic bundle whose bundle-adds are encoded
// before the clock starts and written in one go: what ovs-vswitchd itself
// needs to take in and commit them. Connecting and closing are timed, as
// for the others; encoding (which needs the connection's xids) is not.
func rawBundle(ctx context.Context, env *ovsEnv, fl []flows.Flow) (sample, error) {
	var sw *openflow.Switch
	dial, err := env.measure(func() (time.Duration, error) {
		var err error
		sw, err = openflow.Dial(ctx, env.target(), nil)
		return 0, err
	})
	if err != nil {
		return sample{}, err
	}
	defer sw.Close()
	c := sw.Conn()
	const id = 1
	first := c.ReserveXids(len(fl))
	buf := make([]byte, 0, 160*len(fl))
	for i, f := range fl {
		if buf, err = ofcodec.AppendBundleAdd(buf, first+uint32(i), id, ofcodec.BundleAtomic, f, ofcodec.CommandAdd); err != nil {
			return sample{}, err
		}
	}
	send, err := env.measure(func() (time.Duration, error) {
		if err := bundleControl(ctx, c, id, openflow13.OFPBCT_OPEN_REQUEST); err != nil {
			return 0, err
		}
		failed, err := c.SendPreEncoded(ctx, first, len(fl), buf)
		if err != nil {
			return 0, err
		}
		if len(failed) > 0 {
			return 0, fmt.Errorf("the switch rejected %d flow-mods of the pre-encoded bundle, the first: %w", len(failed), failed[0].Err)
		}
		if err := bundleControl(ctx, c, id, openflow13.OFPBCT_COMMIT_REQUEST); err != nil {
			return 0, err
		}
		return 0, sw.Close()
	})
	return sample{wall: dial.wall + send.wall, client: dial.client + send.client, ovs: dial.ovs + send.ovs}, err
}

// bundleControl sends one bundle control request and waits for its reply.
func bundleControl(ctx context.Context, c *ofconn.Conn, id uint32, typ uint16) error {
	_, err := c.Request(ctx, openflow13.NewBundleControl(&openflow13.BundleControl{BundleID: id, Type: typ, Flags: openflow13.OFPBCT_ATOMIC}))
	if err != nil {
		return fmt.Errorf("bundle control %d: %w", typ, err)
	}
	return nil
}

// samplesDetail is every run of a side, for the JSON details.
func samplesDetail(s []sample) map[string][]float64 {
	out := map[string][]float64{}
	for _, x := range s {
		out["wall_ms"] = append(out["wall_ms"], x.wall)
		out["client_cpu_ms"] = append(out["client_cpu_ms"], x.client)
		out["ovs_cpu_ms"] = append(out["ovs_cpu_ms"], x.ovs)
	}
	return out
}

// installPoint is one size of figure 1, for the plot.
type installPoint struct {
	flows                 int
	ofctl, reconcile, raw float64 // median ms
}

// benchNoop is figure 2: with the set installed and nothing changed, apply
// again, alternating with OVS's own dump (the request until the last reply,
// nothing decoded): the limit of a no-op. Then, apart, a dump of the same
// flows decoded as Dump does.
func benchNoop(ctx context.Context, b *bench, sec *Section, fs *flowSet) error {
	env := b.ovs
	n := len(fs.flows)
	progress("noop-reconcile: installing %d flows, then %d+ runs of reconcile-with-no-change, of a decoded dump and of a raw dump", n, b.runs)
	if err := env.freshBridge(ctx); err != nil {
		return err
	}
	if _, _, err := nativeReconcile(ctx, env, fs.flows); err != nil {
		return err
	}
	var mods []float64
	noop := func() (sample, error) {
		return env.measure(func() (time.Duration, error) {
			res, _, err := nativeReconcile(ctx, env, fs.flows)
			mods = append(mods, float64(res.FlowMods))
			return 0, err
		})
	}
	dump := func() (sample, error) {
		return env.measure(func() (time.Duration, error) {
			sw, err := openflow.Dial(ctx, env.target(), nil)
			if err != nil {
				return 0, err
			}
			got, err := sw.Dump(ctx, reconcileCookie, reconcileMask)
			sw.Close()
			if err == nil && len(got) != n {
				err = fmt.Errorf("dumped %d flows, want %d", len(got), n)
			}
			return 0, err
		})
	}
	res, err := alternateSampled(ctx, b.runs, noop, func() (sample, error) { return rawDump(ctx, env) })
	if err != nil {
		return fmt.Errorf("no-op reconcile: %w", err)
	}
	// The decoded dump leaves 100 MB of garbage that slows whatever runs
	// next in this process (a no-op's wall time doubled): it runs apart.
	dres, err := alternateSampled(ctx, b.runs, dump)
	if err != nil {
		return fmt.Errorf("decoded dump: %w", err)
	}
	res = [][]sample{res[0], dres[0], res[1]}
	worst := 0.0
	for _, m := range mods {
		worst = max(worst, m)
	}
	b.r.add(sec, "noop_reconcile_flowmods", worst, "count", &Target{"==", 0}, fmt.Sprintf("most flow-mods sent in any of %d re-applies of %d flows", len(mods), n))
	r := b.r.addSample(sec, "noop_reconcile_ms", res[0], &Target{"<=", 300}, fmt.Sprintf("connect + dump + diff of %d flows", n))
	b.r.addSample(sec, "noop_dump_ms", res[1], nil, "connect + flow-stats dump, every flow decoded (Switch.Dump)")
	l := b.r.addSample(sec, "noop_limit_ms", res[2], nil, "LIMIT: connect + the flow-stats request until its last reply part, nothing decoded + close")
	b.r.add(sec, "noop_over_limit", r.wall/l.wall, "x", nil, fmt.Sprintf("no-op reconcile %.0f ms / OVS's dump %.0f ms", r.wall, l.wall))
	sec.Details["noop"] = map[string]any{"flows": n, "reconcile": samplesDetail(res[0]), "dump": samplesDetail(res[1]),
		"limit": samplesDetail(res[2]), "flowmods": mods}
	return nil
}

// rawDump times OVS's dump of the reconciled range: connect, the request
// until its last reply part with nothing decoded, close.
func rawDump(ctx context.Context, env *ovsEnv) (sample, error) {
	req := openflow13.NewFlowStatsRequest()
	req.TableId = openflow13.OFPTT_ALL
	req.Cookie, req.CookieMask = reconcileCookie&reconcileMask, reconcileMask
	mp := &openflow13.MultipartRequest{Header: openflow13.NewOfp13Header(), Type: openflow13.MultipartType_Flow, Body: req}
	mp.Header.Type = openflow13.Type_MultiPartRequest
	return env.measure(func() (time.Duration, error) {
		sw, err := openflow.Dial(ctx, env.target(), nil)
		if err != nil {
			return 0, err
		}
		defer sw.Close()
		_, err = sw.Conn().RequestMultipart(ctx, mp)
		return 0, err
	})
}

// benchSmallChange is figure 3: one port added to the topology (on a host
// that had none in one of the bench host's networks), end to end as a
// controller converges: the changed topology compiled (Compile +
// CompileEndpoints) and reconciled, in one timed run; then the port removed
// again (the old topology compiled and reconciled), alternately.
func benchSmallChange(ctx context.Context, b *bench, sec *Section, fs *flowSet) error {
	env := b.ovs
	progress("small-change: compiling the topology with one more port")
	start := time.Now()
	changed, err := fs.withExtraPort()
	if err != nil {
		return err
	}
	progress("small-change: compiled in %v (%d flows); %d+ runs of add-port / remove-port compile + reconcile", time.Since(start).Round(time.Millisecond), len(changed.flows), b.runs)
	if err := env.freshBridge(ctx); err != nil {
		return err
	}
	if _, _, err := nativeReconcile(ctx, env, fs.flows); err != nil {
		return err
	}
	add, del := &smallChangeSide{from: fs, to: changed}, &smallChangeSide{from: changed, to: fs}
	res, err := alternateSampled(ctx, b.runs, add.run(ctx, env), del.run(ctx, env))
	if err != nil {
		return fmt.Errorf("adding and removing the port: %w", err)
	}
	b.reportSmallChange(sec, len(fs.flows), len(changed.flows), res, add, del)
	sec.Details["small_change"] = map[string]any{"flows": len(fs.flows), "diff": add.diff, "add": samplesDetail(res[0]), "remove": samplesDetail(res[1]),
		"add_flowmods": add.mods, "remove_flowmods": del.mods, "add_compile_ms": add.compileMs, "add_reconcile_ms": add.reconcileMs,
		"remove_compile_ms": del.compileMs, "remove_reconcile_ms": del.reconcileMs}
	return nil
}

// smallChangeSide is one side of figure 3, with what each run took apart.
type smallChangeSide struct {
	from, to               *flowSet
	mods                   []float64
	compileMs, reconcileMs []float64
	diff                   string
}

// run compiles the side's topology and reconciles br-tun to it, timed
// together, from the other side's flows: rounds alternate in both orders
// (AB BA), so the switch is first put back where the change starts, off
// the clock (else every other run was a no-op).
func (sc *smallChangeSide) run(ctx context.Context, env *ovsEnv) sampled {
	return func() (sample, error) {
		if _, _, err := nativeReconcile(ctx, env, sc.from.flows); err != nil {
			return sample{}, fmt.Errorf("setting up the change: %w", err)
		}
		var res openflow.Result
		var compiled, reconciled time.Duration
		s, err := env.measure(func() (time.Duration, error) {
			start := time.Now()
			if err := sc.to.compile(); err != nil {
				return 0, err
			}
			compiled = time.Since(start)
			var err error
			res, reconciled, err = nativeReconcile(ctx, env, sc.to.flows)
			return 0, err
		})
		if err != nil {
			return s, err
		}
		sc.mods = append(sc.mods, float64(res.FlowMods))
		sc.compileMs, sc.reconcileMs = append(sc.compileMs, ms(compiled)), append(sc.reconcileMs, ms(reconciled))
		if res.FlowMods > 0 {
			sc.diff = res.Diff.String()
		}
		return s, nil
	}
}

// reportSmallChange records figure 3: res are the add and remove sides.
func (b *bench) reportSmallChange(sec *Section, n, changed int, res [][]sample, add, del *smallChangeSide) {
	b.r.add(sec, "small_change_flowmods", median(add.mods), "count", &Target{"<=", 10}, fmt.Sprintf("one port added to a switch holding %d flows (target: a handful)", n))
	b.r.addSample(sec, "small_change_ms", res[0], &Target{"<=", 400},
		fmt.Sprintf("end to end: Compile + CompileEndpoints of the changed topology (%d flows), connect + dump + diff + bundle + commit + close (the limit of the reconcile: noop_limit_ms)", changed))
	b.r.add(sec, "small_change_compile_ms", median(add.compileMs), "ms", nil, "of which compiling")
	b.r.add(sec, "small_change_reconcile_ms", median(add.reconcileMs), "ms", nil, "of which reconciling")
	b.r.add(sec, "small_change_remove_flowmods", median(del.mods), "count", nil, "the port removed again")
	b.r.addSample(sec, "small_change_remove_ms", res[1], nil, "end to end, as small_change_ms")
}

func sizeTag(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

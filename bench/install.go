package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/openflow"
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
// ovs-vxctl (reconcile: dump + one bundle; and plain flow-mods + barrier)
// and by `ovs-ofctl --bundle add-flows` of the same flows as text.
func benchInstall(ctx context.Context, b *bench, sec *Section, sets []*flowSet) error {
	env := b.ovs
	var plot []installPoint
	for _, fs := range sets {
		n := len(fs.flows)
		file := filepath.Join(env.inst.Dir, fmt.Sprintf("flows-%d.txt", n))
		if err := writeFlowsFile(file, fs.flows); err != nil {
			return err
		}
		checked := false
		ofctl := func() (float64, error) {
			if err := env.freshBridge(ctx); err != nil {
				return 0, err
			}
			d, err := env.ofctlBundle(ctx, file)
			if err != nil {
				return 0, err
			}
			if err := expectFlows(ctx, env, n, "ovs-ofctl"); err != nil {
				return 0, err
			}
			if !checked {
				// The C tool installed exactly what ovs-vxctl would: a
				// reconcile against it finds nothing to change.
				res, _, err := nativeReconcile(ctx, env, fs.flows)
				if err != nil {
					return 0, fmt.Errorf("reconciling over ovs-ofctl's flows: %w", err)
				}
				if res.FlowMods != 0 {
					return 0, fmt.Errorf("ovs-ofctl installed other flows than ovs-vxctl would: a reconcile sent %d flow-mods (%s)", res.FlowMods, firstLine(res.Diff.String()))
				}
				checked = true
			}
			return ms(d), nil
		}
		reconcile := func() (float64, error) {
			if err := env.freshBridge(ctx); err != nil {
				return 0, err
			}
			res, d, err := nativeReconcile(ctx, env, fs.flows)
			if err != nil {
				return 0, err
			}
			if res.FlowMods != n {
				return 0, fmt.Errorf("reconcile into an empty bridge sent %d flow-mods, want %d", res.FlowMods, n)
			}
			return ms(d), expectFlows(ctx, env, n, "ovs-vxctl reconcile")
		}
		install := func() (float64, error) {
			if err := env.freshBridge(ctx); err != nil {
				return 0, err
			}
			d, err := nativeInstall(ctx, env, fs.flows)
			if err != nil {
				return 0, err
			}
			return ms(d), expectFlows(ctx, env, n, "ovs-vxctl install")
		}
		progress("install: %d flows (%s), %d runs of ovs-ofctl --bundle / ovs-vxctl reconcile / ovs-vxctl install", n, fs.size, b.runs)
		res, err := alternate(ctx, b.runs, ofctl, reconcile, install)
		if err != nil {
			return fmt.Errorf("installing %d flows: %w", n, err)
		}
		mo, mr, mi := median(res[0]), median(res[1]), median(res[2])
		tag := sizeTag(n)
		b.r.add(sec, "install_speedup_"+tag, mo/mr, "x", &Target{">=", 1.5},
			fmt.Sprintf("ovs-ofctl --bundle %.0f ms / ovs-vxctl reconcile (dump+bundle) %.0f ms", mo, mr))
		b.r.add(sec, "install_ofctl_ms_"+tag, mo, "ms", nil, "ovs-ofctl -O OpenFlow13 --bundle add-flows, process wall time")
		b.r.add(sec, "install_reconcile_ms_"+tag, mr, "ms", nil, "connect + dump + diff + one atomic bundle + close")
		b.r.add(sec, "install_plain_ms_"+tag, mi, "ms", nil, "connect + flow-mods + barrier, not atomic")
		b.r.add(sec, "install_speedup_plain_"+tag, mo/mi, "x", nil, "ovs-ofctl --bundle / ovs-vxctl plain flow-mods")
		b.r.add(sec, "install_flows_per_s_"+tag, float64(n)/(mr/1000), "flows/s", nil, "ovs-vxctl reconcile")
		b.r.add(sec, "install_ofctl_flows_per_s_"+tag, float64(n)/(mo/1000), "flows/s", nil, "ovs-ofctl --bundle")
		sec.Details["install_"+tag] = map[string]any{
			"flows": n, "topology": fs.size.String(), "compiled_flows": fs.compiled,
			"endpoint_flows": n - fs.compiled, "learned_macs": len(fs.learned),
			"ofctl_ms": res[0], "reconcile_ms": res[1], "plain_ms": res[2],
		}
		plot = append(plot, installPoint{n, mo, mr, mi})
		os.Remove(file)
	}
	b.install = plot
	return nil
}

// installPoint is one size of figure 1, for the plot.
type installPoint struct {
	flows                 int
	ofctl, reconcile, raw float64 // median ms
}

// benchNoop is figure 2: with the set installed and nothing changed, apply
// again. Each run also times a bare dump of the same flows, to show what
// share of a no-op is reading the switch.
func benchNoop(ctx context.Context, b *bench, sec *Section, fs *flowSet) error {
	env := b.ovs
	n := len(fs.flows)
	progress("noop-reconcile: installing %d flows, then %d runs of reconcile-with-no-change and of a bare dump", n, b.runs)
	if err := env.freshBridge(ctx); err != nil {
		return err
	}
	if _, _, err := nativeReconcile(ctx, env, fs.flows); err != nil {
		return err
	}
	var mods []float64
	noop := func() (float64, error) {
		res, d, err := nativeReconcile(ctx, env, fs.flows)
		if err != nil {
			return 0, err
		}
		mods = append(mods, float64(res.FlowMods))
		return ms(d), nil
	}
	dump := func() (float64, error) {
		start := time.Now()
		sw, err := openflow.Dial(ctx, env.target(), nil)
		if err != nil {
			return 0, err
		}
		got, err := sw.Dump(ctx, reconcileCookie, reconcileMask)
		sw.Close()
		if err != nil {
			return 0, err
		}
		if len(got) != n {
			return 0, fmt.Errorf("dumped %d flows, want %d", len(got), n)
		}
		return ms(time.Since(start)), nil
	}
	res, err := alternate(ctx, b.runs, noop, dump)
	if err != nil {
		return fmt.Errorf("no-op reconcile: %w", err)
	}
	worst := 0.0
	for _, m := range mods {
		worst = max(worst, m)
	}
	b.r.add(sec, "noop_reconcile_flowmods", worst, "count", &Target{"==", 0}, fmt.Sprintf("most flow-mods sent in any of %d re-applies of %d flows", len(mods), n))
	b.r.add(sec, "noop_reconcile_ms", median(res[0]), "ms", &Target{"<", 1000}, fmt.Sprintf("connect + dump + diff of %d flows", n))
	b.r.add(sec, "noop_dump_ms", median(res[1]), "ms", nil, "of which reading the flows (connect + flow-stats dump + decode)")
	sec.Details["noop"] = map[string]any{"flows": n, "reconcile_ms": res[0], "dump_ms": res[1], "flowmods": mods}
	return nil
}

// benchSmallChange is figure 3: one port added to the topology (on a host
// that had none in one of the bench host's networks), the flows compiled
// again and reconciled; then the port removed again, alternately.
func benchSmallChange(ctx context.Context, b *bench, sec *Section, fs *flowSet) error {
	env := b.ovs
	progress("small-change: compiling the topology with one more port")
	start := time.Now()
	changed, err := fs.withExtraPort()
	if err != nil {
		return err
	}
	progress("small-change: compiled in %v (%d flows); %d runs of add-port / remove-port reconciles", time.Since(start).Round(time.Millisecond), len(changed.flows), b.runs)
	if err := env.freshBridge(ctx); err != nil {
		return err
	}
	if _, _, err := nativeReconcile(ctx, env, fs.flows); err != nil {
		return err
	}
	var addMs, delMs, addMods, delMods []float64
	var diff string
	for round := -1; round < b.runs; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, d, err := nativeReconcile(ctx, env, changed.flows)
		if err != nil {
			return fmt.Errorf("adding the port: %w", err)
		}
		diff = res.Diff.String()
		res2, d2, err := nativeReconcile(ctx, env, fs.flows)
		if err != nil {
			return fmt.Errorf("removing the port: %w", err)
		}
		if round >= 0 {
			addMs, addMods = append(addMs, ms(d)), append(addMods, float64(res.FlowMods))
			delMs, delMods = append(delMs, ms(d2)), append(delMods, float64(res2.FlowMods))
		}
	}
	// Converging also means compiling the new topology: time that too, on
	// its own (the controller compiles before it reconciles).
	var compileMs []float64
	for round := -1; round < min(b.runs, 3); round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := changed.compile(); err != nil {
			return err
		}
		if round >= 0 {
			compileMs = append(compileMs, ms(time.Since(start)))
		}
	}
	n := len(fs.flows)
	b.r.add(sec, "small_change_flowmods", median(addMods), "count", &Target{"<=", 10}, fmt.Sprintf("one port added to a switch holding %d flows (target: a handful)", n))
	b.r.add(sec, "small_change_ms", median(addMs), "ms", nil, "reconcile to the new flows: connect + dump + diff + bundle")
	b.r.add(sec, "small_change_remove_flowmods", median(delMods), "count", nil, "the port removed again")
	b.r.add(sec, "small_change_remove_ms", median(delMs), "ms", nil, "")
	b.r.add(sec, "small_change_compile_ms", median(compileMs), "ms", nil,
		fmt.Sprintf("Compile + CompileEndpoints of the changed topology (%d flows), median of %d", len(changed.flows), len(compileMs)))
	b.r.add(sec, "small_change_total_ms", median(compileMs)+median(addMs), "ms", nil, "compile + reconcile")
	sec.Details["small_change"] = map[string]any{"flows": n, "diff": diff, "add_ms": addMs, "remove_ms": delMs,
		"add_flowmods": addMods, "remove_flowmods": delMods, "compile_ms": compileMs}
	return nil
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

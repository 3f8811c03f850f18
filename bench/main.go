// Command bench measures how fast and how cheaply ovs-vxctl converges, on
// this machine, in one run: installing flows (against ovs-ofctl), re-applying
// with nothing or one port changed, compiling growing topologies, the
// controller's fan-out to many switches, and the lab's data plane and
// flooding. It prints a table and one `BENCH <name> <value> <unit>` line per
// figure, and writes the same to a JSON file and a plot of compile and
// install time against size to an SVG file.
//
// Every time is a median of -runs runs after a warm-up run; every comparison
// is measured in the same run with the two sides alternating. It needs root,
// Open vSwitch and (for the lab figures) the ovs-vxctl binary.
//
//	go run ./bench [-runs 5] [-only install,noop,...] [-out bench/results.json]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench is one run of the benchmark: its options, its report and what the
// sections share.
type bench struct {
	r            *Report
	runs         int
	bin          string // the ovs-vxctl binary
	ovs          *ovsEnv
	installSizes []int
	compileSizes []compileSize
	fanoutSizes  []int
	replicaSizes []int // figure 9: switches of the replicas' fan-out
	// fanoutSyncLimit bounds how long the switches of a fan-out may take
	// to get their flows before the fan-out is declared unmeasurable.
	fanoutSyncLimit time.Duration
	iperfSeconds    int

	install []installPoint // for the plot
	compile []compilePoint
}

// sections in the order they run; names are what -only takes.
var sectionOrder = []struct{ name, title string }{
	{"install", "1. install N flows into a fresh userspace br-tun: ovs-vxctl vs ovs-ofctl --bundle"},
	{"noop", "2. noop-reconcile: re-apply 100,000 installed flows with nothing changed"},
	{"small-change", "3. small-change: one port added to a topology whose switch holds 100,000 flows"},
	{"compile", "4. compile: Compile for growing topologies"},
	{"fanout", "5. fanout (controller mode): a new MAC on one switch reaches S switches"},
	{"dataplane", "6. dataplane: VM-to-VM TCP throughput in the lab vs br-tun on NORMAL"},
	{"flooding", "7. flooding: underlay frames of an all-pairs ARP+ping round, learn vs controller mode"},
	{"attacks", "8. attacks: hostile peers against the controller (RSS < 256 MB, real switches unaffected)"},
	{"replicas", "9. replicas: the fan-out with 2 controller replicas and a 3-member directory cluster"},
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		out     = flag.String("out", "bench/results.json", "where to write the results (JSON)")
		plot    = flag.String("plot", "", "where to write the plot (SVG); default: next to -out, results.svg")
		runs    = flag.Int("runs", 5, "timed runs of each measurement (after one warm-up run)")
		only    = flag.String("only", "", "comma-separated sections to run (default all): "+sectionNames())
		bin     = flag.String("bin", "bin/ovs-vxctl", "the ovs-vxctl binary (for the lab)")
		install = flag.String("install-sizes", "10000,30000,100000", "flow counts of figure 1 (the largest is also figures 2 and 3)")
		fanout  = flag.String("fanout-sizes", "10,100,300,1000", "switch counts of figure 5")
		repl    = flag.String("replicas-sizes", "100,1000", "switch counts of figure 9 (replicas)")
		iperf   = flag.Int("iperf-seconds", 10, "length of each iperf3 run of figure 6")
		sync    = flag.Duration("fanout-sync-limit", 90*time.Second, "how long the controller may take to program every switch of a fan-out")
		maxSize = flag.Int("compile-max-ports", 100000, "largest topology of figure 4, in ports")
		cpuProf = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (diagnosis)")
	)
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		return 2
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.ContainsFunc(sectionOrder, func(x struct{ name, title string }) bool { return x.name == s }) {
			fmt.Fprintf(os.Stderr, "bench: -only: no section %q (have %s)\n", s, sectionNames())
			return 2
		}
		want[s] = true
	}
	sizes, err := intList(*install)
	if err != nil || len(sizes) == 0 {
		fmt.Fprintf(os.Stderr, "bench: -install-sizes: want comma-separated flow counts, got %q\n", *install)
		return 2
	}
	fsizes, err := intList(*fanout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: -fanout-sizes: want comma-separated switch counts, got %q\n", *fanout)
		return 2
	}
	rsizes, err := intList(*repl)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: -replicas-sizes: want comma-separated switch counts, got %q\n", *repl)
		return 2
	}
	if *plot == "" {
		*plot = filepath.Join(filepath.Dir(*out), "results.svg")
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (network namespaces, Open vSwitch)")
		return 1
	}

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	b := &bench{
		r:            &Report{Started: time.Now(), Machine: describeMachine(), Runs: *runs},
		runs:         *runs,
		bin:          *bin,
		installSizes: sizes,
		fanoutSizes:  fsizes,
		replicaSizes: rsizes,
		iperfSeconds: *iperf,

		fanoutSyncLimit: *sync,
	}
	for _, s := range compileSizes {
		if s.Ports <= *maxSize {
			b.compileSizes = append(b.compileSizes, s)
		}
	}
	failed := b.runSections(ctx, want)
	b.r.Took = time.Since(b.r.Started).Seconds()
	b.r.printTable(os.Stdout)
	if err := b.r.writeJSON(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	wrote := "results: " + *out
	if len(b.install) > 0 || len(b.compile) > 0 {
		if err := os.WriteFile(*plot, []byte(renderPlot(b.compile, b.install)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench: writing the plot:", err)
			return 1
		}
		wrote += ", plot: " + *plot
	}
	fmt.Printf("\n%s\n", wrote)
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d section(s) failed\n", failed)
		return 1
	}
	return 0
}

// runSections runs every wanted section, recording failures in the report
// rather than stopping: one broken figure must not hide the others. It
// returns how many failed.
func (b *bench) runSections(ctx context.Context, want map[string]bool) int {
	failed := 0
	sec := map[string]*Section{}
	for _, s := range sectionOrder {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		sec[s.name] = &Section{Name: s.name, Title: s.title, Details: map[string]any{}}
		b.r.Sections = append(b.r.Sections, sec[s.name])
	}
	do := func(name string, f func(*Section) error) {
		s := sec[name]
		if s == nil {
			return
		}
		start := time.Now()
		err := ctx.Err()
		if err == nil {
			err = f(s)
		}
		s.Took = time.Since(start).Seconds()
		var sk skipError
		switch {
		case errors.As(err, &sk):
			s.Skipped = sk.why
			progress("%s: skipped: %s", name, sk.why)
		case err != nil:
			s.Error = err.Error()
			if ctx.Err() != nil {
				s.Error = "interrupted: " + s.Error
			}
			failed++
			progress("%s: FAILED: %v", name, err)
		default:
			progress("%s: done in %.0f s", name, s.Took)
		}
	}

	// Figures 1-3 share one private OVS and the flow sets.
	if sec["install"] != nil || sec["noop"] != nil || sec["small-change"] != nil {
		var sets []*flowSet
		err := func() error {
			for _, n := range b.installSizes {
				start := time.Now()
				fs, err := flowSetOf(n)
				if err != nil {
					return err
				}
				progress("flow set of %d flows from %s compiled in %v", n, fs.size, time.Since(start).Round(time.Millisecond))
				sets = append(sets, fs)
			}
			env, err := startOVS(ctx, "ovs")
			if err != nil {
				return err
			}
			b.ovs = env
			return nil
		}()
		if b.ovs != nil {
			defer b.ovs.stop()
		}
		if err != nil {
			for _, n := range []string{"install", "noop", "small-change"} {
				do(n, func(*Section) error { return err })
			}
		} else {
			largest := sets[len(sets)-1]
			do("install", func(s *Section) error { return benchInstall(ctx, b, s, sets) })
			do("noop", func(s *Section) error { return benchNoop(ctx, b, s, largest) })
			do("small-change", func(s *Section) error { return benchSmallChange(ctx, b, s, largest) })
		}
	}
	do("compile", func(s *Section) error { return benchCompile(ctx, b, s) })
	do("fanout", func(s *Section) error { return benchFanout(ctx, b, s) })
	do("dataplane", func(s *Section) error { return benchDataplane(ctx, b, s) })
	do("flooding", func(s *Section) error { return benchFlooding(ctx, b, s) })
	do("attacks", func(s *Section) error { return benchAttacks(ctx, b, s) })
	do("replicas", func(s *Section) error { return benchReplicas(ctx, b, s) })
	return failed
}

// skipError marks a section that could not run on this machine or tree
// (not a failure of what it measures).
type skipError struct{ why string }

func (e skipError) Error() string { return "skipped: " + e.why }

func sectionNames() string {
	var n []string
	for _, s := range sectionOrder {
		n = append(n, s.name)
	}
	return strings.Join(n, ",")
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

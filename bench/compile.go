package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/ovs-vxctl/ovs-vxctl/flows"
	"github.com/ovs-vxctl/ovs-vxctl/topology"
)

// compileSizes grow hosts, networks and ports together, up to 1,000 ×
// 1,000 × 100,000. From 100 hosts on, every host looks the same at every
// size (100 ports in 100 networks of 100 ports each: about 10,000 br-tun
// flows), so the growth of Compile's time there is growth with the
// topology alone: the exponent is fitted over those sizes (steady). Below
// 100 hosts every network spans every host and a host's share grows with
// the topology.
var compileSizes = []compileSize{
	{Size{10, 10, 100}, false},
	{Size{32, 32, 1024}, false},
	{Size{100, 100, 10000}, true},
	{Size{178, 178, 17800}, true},
	{Size{316, 316, 31600}, true},
	{Size{562, 562, 56200}, true},
	{Size{1000, 1000, 100000}, true},
}

// compileSize is one topology of figure 4; steady says whether the bench
// host's share of it is the same as at the largest size.
type compileSize struct {
	Size
	steady bool
}

// compilePoint is one size of figure 4.
type compilePoint struct {
	Size        string    `json:"size"`
	Hosts       int       `json:"hosts"`
	Networks    int       `json:"networks"`
	Ports       int       `json:"ports"`
	ParseMs     float64   `json:"parse_ms"`
	CompileMs   float64   `json:"compile_ms"`
	Runs        []float64 `json:"compile_runs_ms"`
	Allocs      uint64    `json:"allocs"`
	AllocBytes  uint64    `json:"alloc_bytes"`
	PeakBytes   uint64    `json:"peak_heap_bytes"`
	Flows       int       `json:"flows"`
	Steady      bool      `json:"steady"`
	EndpointsMs float64   `json:"endpoints_ms,omitempty"`
	EndpointFl  int       `json:"endpoint_flows,omitempty"`
}

// benchCompile is figure 4: Compile of host h0000 for growing topologies.
func benchCompile(ctx context.Context, b *bench, sec *Section) error {
	var pts []compilePoint
	for i, cs := range b.compileSizes {
		s := cs.Size
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		t, err := genTopology(s)
		if err != nil {
			return err
		}
		parse := time.Since(start)
		h := t.Hosts[benchHost]
		alloc, err := t.Allocate(h, topology.Allocation{})
		if err != nil {
			return err
		}
		p := compilePoint{Size: s.String(), Hosts: s.Hosts, Networks: s.Networks, Ports: s.Ports, ParseMs: ms(parse), Steady: cs.steady}
		var prog flows.Program
		compile := func() (float64, error) {
			start := time.Now()
			prog, err = flows.Compile(t, h, alloc)
			return ms(time.Since(start)), err
		}
		runs, err := alternate(ctx, b.runs, compile)
		if err != nil {
			return fmt.Errorf("compiling %s: %w", s, err)
		}
		p.Runs, p.CompileMs = runs[0], median(runs[0])
		p.Flows = len(prog.Int) + len(prog.Tun)

		// Allocations and peak heap, in a run of their own (the sampler
		// would disturb the timed runs).
		var peak uint64
		p.Allocs, p.AllocBytes, peak, err = measureMemory(func() error {
			_, err := flows.Compile(t, h, alloc)
			return err
		})
		if err != nil {
			return err
		}
		p.PeakBytes = peak

		// What a controller-mode host gets on top, for its declared ports
		// (at the largest size only: it is the slow part).
		if i == len(b.compileSizes)-1 {
			eps := flows.DeclaredEndpoints(t)
			var ctl []flows.Flow
			eruns, err := alternate(ctx, b.runs, func() (float64, error) {
				start := time.Now()
				ctl = flows.CompileEndpoints(t, h, alloc, eps)
				return ms(time.Since(start)), nil
			})
			if err != nil {
				return err
			}
			p.EndpointsMs, p.EndpointFl = median(eruns[0]), len(ctl)
		}
		progress("compile: %s: parse %.0f ms, Compile %.1f ms (%d flows, %d allocs, peak %.1f MB)",
			s, p.ParseMs, p.CompileMs, p.Flows, p.Allocs, float64(p.PeakBytes)/1e6)
		pts = append(pts, p)
	}
	b.compile = pts
	sec.Details["sizes"] = pts
	if len(pts) == 0 {
		return nil
	}
	last := pts[len(pts)-1]
	b.r.add(sec, "compile_largest_ms", last.CompileMs, "ms", &Target{"<", 200}, "Compile of one host at "+last.Size)
	var n, tm []float64
	var from string
	for _, p := range pts {
		if p.Steady {
			if from == "" {
				from = p.Size
			}
			n, tm = append(n, float64(p.Ports)), append(tm, p.CompileMs)
		}
	}
	if len(pts) >= 2 {
		// The headline is the last step: growth where it matters most, and
		// where a term worse than linear shows first.
		a := pts[len(pts)-2]
		b.r.add(sec, "compile_growth_exponent", growthExponent(float64(a.Ports), a.CompileMs, float64(last.Ports), last.CompileMs), "exp", &Target{"<=", 1.15},
			fmt.Sprintf("t ∝ size^x from %s to %s, the host's share held at ~%d flows (1 = linear)", a.Size, last.Size, last.Flows))
	}
	if len(n) >= 2 {
		b.r.add(sec, "compile_growth_exponent_fit", fitExponent(n, tm), "exp", nil,
			fmt.Sprintf("log-log least-squares slope from %s to %s", from, last.Size))
	}
	for i := 1; i < len(pts); i++ {
		a, c := pts[i-1], pts[i]
		b.r.add(sec, fmt.Sprintf("compile_growth_exponent_%dp", c.Ports), growthExponent(float64(a.Ports), a.CompileMs, float64(c.Ports), c.CompileMs), "exp", nil,
			fmt.Sprintf("from %d to %d ports (%d to %d flows)", a.Ports, c.Ports, a.Flows, c.Flows))
	}
	for _, p := range pts {
		b.r.add(sec, fmt.Sprintf("compile_ms_%dp", p.Ports), p.CompileMs, "ms", nil, fmt.Sprintf("%s -> %d flows", p.Size, p.Flows))
	}
	b.r.add(sec, "compile_allocs_largest", float64(last.Allocs), "count", nil, "heap allocations of one Compile at "+last.Size)
	b.r.add(sec, "compile_alloc_mb_largest", float64(last.AllocBytes)/1e6, "MB", nil, "bytes allocated by one Compile")
	b.r.add(sec, "compile_peak_heap_mb_largest", float64(last.PeakBytes)/1e6, "MB", nil, "peak heap above the pre-compile baseline (sampled every ms)")
	b.r.add(sec, "compile_endpoints_largest_ms", last.EndpointsMs, "ms", nil,
		fmt.Sprintf("CompileEndpoints of the declared ports at %s (%d flows): the controller-mode share", last.Size, last.EndpointFl))
	return nil
}

// measureMemory runs f once after a GC and returns the heap allocations it
// made, the bytes they took, and the peak of the heap's object bytes above
// where they stood before f (sampled every millisecond).
func measureMemory(f func() error) (allocs, bytes, peak uint64, err error) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	base := read()
	var top uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > top {
				top = v
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = f()
	runtime.ReadMemStats(&after)
	close(stop)
	wg.Wait()
	if v := read(); v > top {
		top = v
	}
	if top > base {
		peak = top - base
	}
	return after.Mallocs - before.Mallocs, after.TotalAlloc - before.TotalAlloc, peak, err
}

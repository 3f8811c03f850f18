package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Target is what a figure should reach: Op is "<", "<=", ">", ">=" or "==".
type Target struct {
	Op    string  `json:"op"`
	Value float64 `json:"value"`
}

func (t *Target) String() string {
	if t == nil {
		return ""
	}
	return t.Op + " " + num(t.Value)
}

// met reports whether v reaches the target.
func (t *Target) met(v float64) bool {
	switch t.Op {
	case "<":
		return v < t.Value
	case "<=":
		return v <= t.Value
	case ">":
		return v > t.Value
	case ">=":
		return v >= t.Value
	case "==":
		return v == t.Value
	}
	return false
}

// Figure is one measured number: it becomes one BENCH line.
type Figure struct {
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Target  *Target `json:"target,omitempty"`
	Verdict string  `json:"verdict,omitempty"` // PASS or MISS when there is a target
	Note    string  `json:"note,omitempty"`
	// CPU a timed figure cost, medians in ms: the client's (ovs-vxctl,
	// or ovs-ofctl on its side) and ovs-vswitchd's; nil when not measured.
	CPU *FigureCPU `json:"cpu,omitempty"`
}

// FigureCPU is the CPU time beside a figure's wall time.
type FigureCPU struct {
	Client float64 `json:"client_ms"`
	OVS    float64 `json:"ovs_vswitchd_ms"`
}

// addSample records the median wall time of runs as a figure, with the
// median CPU of the client and of ovs-vswitchd beside it.
func (r *Report) addSample(sec *Section, name string, runs []sample, t *Target, note string) sample {
	m := medianSample(runs)
	f := r.add(sec, name, m.wall, "ms", t, note)
	f.CPU = &FigureCPU{Client: m.client, OVS: m.ovs}
	progress("    (CPU: client %s ms, ovs-vswitchd %s ms, %d runs)", num(m.client), num(m.ovs), len(runs))
	return m
}

// Section is one of the seven measurements, with its details.
type Section struct {
	Name    string         `json:"name"`
	Title   string         `json:"title"`
	Error   string         `json:"error,omitempty"`
	Skipped string         `json:"skipped,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	Took    float64        `json:"took_s"`
}

// Report is everything one run of the benchmark measured.
type Report struct {
	Started  time.Time  `json:"started"`
	Took     float64    `json:"took_s"`
	Machine  Machine    `json:"machine"`
	Runs     int        `json:"runs"`
	Figures  []*Figure  `json:"figures"`
	Sections []*Section `json:"sections"`
}

// Machine describes where the numbers were measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPU       string `json:"cpu"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	OVS       string `json:"ovs"`
}

// add records a figure under sec; with a target it gets a verdict.
func (r *Report) add(sec *Section, name string, v float64, unit string, t *Target, note string) *Figure {
	f := &Figure{Section: sec.Name, Name: name, Value: v, Unit: unit, Target: t, Note: note}
	if t != nil {
		f.Verdict = "MISS"
		if !math.IsNaN(v) && t.met(v) {
			f.Verdict = "PASS"
		}
	}
	r.Figures = append(r.Figures, f)
	progress("  %s = %s %s %s", name, num(v), unit, f.Verdict)
	return f
}

// MarshalJSON writes a value JSON cannot hold (NaN, from a failed
// measurement) as null.
func (f *Figure) MarshalJSON() ([]byte, error) {
	type plain Figure
	out := struct {
		*plain
		Value *float64 `json:"value"`
	}{plain: (*plain)(f)}
	if !math.IsNaN(f.Value) && !math.IsInf(f.Value, 0) {
		out.Value = &f.Value
	}
	return json.Marshal(out)
}

// benchLines are the figure's BENCH lines: its value, and its CPU when
// measured.
func (f *Figure) benchLines() []string {
	out := []string{fmt.Sprintf("BENCH %s %s %s", f.Name, num(f.Value), f.Unit)}
	if f.CPU != nil {
		out = append(out, fmt.Sprintf("BENCH %s_client_cpu %s ms", f.Name, num(f.CPU.Client)),
			fmt.Sprintf("BENCH %s_ovs_cpu %s ms", f.Name, num(f.CPU.OVS)))
	}
	return out
}

// cpuColumns renders a figure's CPU for the table ("" when not measured).
func (f *Figure) cpuColumns() (client, ovs string) {
	if f.CPU == nil {
		return "", ""
	}
	return num(f.CPU.Client), num(f.CPU.OVS)
}

// num renders a value with sensible precision for a table.
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%d", int64(v))
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.3g", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// printTable writes every figure, section by section, with its target and
// verdict, then every BENCH line again so they sit together at the end.
func (r *Report) printTable(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", strings.Repeat("=", 100))
	fmt.Fprintf(w, "ovs-vxctl benchmark, %s, %d CPUs (%s), %s, medians of %d runs after a warm-up, took %.0f s\n",
		r.Started.Format(time.RFC3339), r.Machine.CPUs, r.Machine.CPU, r.Machine.OVS, r.Runs, r.Took)
	fmt.Fprintf(w, "%s\n", strings.Repeat("=", 100))
	fmt.Fprintf(w, "%-34s %14s %-8s %10s %10s %-12s %-7s %s\n", "FIGURE", "VALUE", "UNIT", "CLIENT-CPU", "OVS-CPU", "TARGET", "RESULT", "NOTE")
	for _, s := range r.Sections {
		fmt.Fprintf(w, "-- %s: %s", s.Name, s.Title)
		switch {
		case s.Error != "":
			fmt.Fprintf(w, "  [FAILED: %s]", s.Error)
		case s.Skipped != "":
			fmt.Fprintf(w, "  [SKIPPED: %s]", s.Skipped)
		}
		fmt.Fprintln(w)
		for _, f := range r.Figures {
			if f.Section == s.Name {
				client, ovs := f.cpuColumns()
				fmt.Fprintf(w, "%-34s %14s %-8s %10s %10s %-12s %-7s %s\n", f.Name, num(f.Value), f.Unit, client, ovs, f.Target.String(), f.Verdict, f.Note)
			}
		}
	}
	fmt.Fprintln(w)
	for _, f := range r.Figures {
		for _, l := range f.benchLines() {
			fmt.Fprintln(w, l)
		}
	}
}

// writeJSON writes the report to path.
func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	return nil
}

// describeMachine fills Machine from /proc and the tools' versions.
func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := runOut("ovs-vswitchd", "--version"); err == nil {
		m.OVS = strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	}
	return m
}

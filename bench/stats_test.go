package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestMedianAndPercentile(t *testing.T) {
	if got := median([]float64{5, 1, 3}); got != 3 {
		t.Errorf("median of 5,1,3 = %v, want 3", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4,1,3,2 = %v, want 2.5", got)
	}
	xs := make([]float64, 101)
	for i := range xs {
		xs[i] = float64(100 - i)
	}
	if got := percentile(xs, 99); got != 99 {
		t.Errorf("p99 of 0..100 = %v, want 99", got)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing should be NaN")
	}
	in := []float64{3, 1, 2}
	median(in)
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Error("median sorted its input in place")
	}
}

func TestAlternateWarmsUpAndAlternates(t *testing.T) {
	var order []string
	mk := func(name string, v float64) side {
		return func() (float64, error) {
			order = append(order, name)
			return v, nil
		}
	}
	res, err := alternate(context.Background(), 3, mk("a", 1), mk("b", 2))
	if err != nil {
		t.Fatal(err)
	}
	// Warm-up backwards, then a,b / b,a / a,b.
	if want := []string{"b", "a", "a", "b", "b", "a", "a", "b"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if len(res[0]) != 3 || len(res[1]) != 3 || res[0][0] != 1 || res[1][0] != 2 {
		t.Errorf("results %v: want 3 runs each, warm-up discarded", res)
	}
	boom := errors.New("boom")
	n := 0
	_, err = alternate(context.Background(), 2, func() (float64, error) {
		if n++; n == 2 {
			return 0, boom
		}
		return 0, nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "run 1") {
		t.Errorf("error %v, want boom in run 1", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := alternate(ctx, 2, mk("a", 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("with ctx cancelled: %v, want context.Canceled", err)
	}
}

func TestGrowthExponents(t *testing.T) {
	if got := growthExponent(10, 5, 100, 50); math.Abs(got-1) > 1e-9 {
		t.Errorf("linear growth exponent %v, want 1", got)
	}
	if got := growthExponent(10, 1, 100, 100); math.Abs(got-2) > 1e-9 {
		t.Errorf("quadratic growth exponent %v, want 2", got)
	}
	n := []float64{1e3, 1e4, 1e5}
	tm := []float64{2, 200, 20000}
	if got := fitExponent(n, tm); math.Abs(got-2) > 1e-9 {
		t.Errorf("fitted exponent %v, want 2", got)
	}
}

func TestTargetsAndVerdicts(t *testing.T) {
	r := &Report{}
	sec := &Section{Name: "s"}
	cases := []struct {
		v    float64
		t    Target
		want string
	}{
		{1.6, Target{">=", 1.5}, "PASS"},
		{1.4, Target{">=", 1.5}, "MISS"},
		{0, Target{"==", 0}, "PASS"},
		{3, Target{"==", 0}, "MISS"},
		{49, Target{"<", 50}, "PASS"},
		{50, Target{"<", 50}, "MISS"},
		{math.NaN(), Target{"<", 50}, "MISS"},
	}
	for _, c := range cases {
		if f := r.add(sec, "x", c.v, "ms", &c.t, ""); f.Verdict != c.want {
			t.Errorf("%v against %s: %s, want %s", c.v, c.t.String(), f.Verdict, c.want)
		}
	}
	if f := r.add(sec, "y", 1, "ms", nil, ""); f.Verdict != "" {
		t.Errorf("a figure without target got verdict %q", f.Verdict)
	}
}

func TestReportOutput(t *testing.T) {
	r := &Report{Sections: []*Section{{Name: "install", Title: "1. install"}}}
	r.add(r.Sections[0], "install_speedup_10k", 1.234, "x", &Target{">=", 1.5}, "note")
	r.add(r.Sections[0], "broken", math.NaN(), "ms", nil, "")
	var b strings.Builder
	r.printTable(&b)
	out := b.String()
	if !strings.Contains(out, "\nBENCH install_speedup_10k 1.23 x\n") {
		t.Errorf("no BENCH line for the figure in:\n%s", out)
	}
	if strings.Count(out, "BENCH install_speedup_10k") != 1 {
		t.Errorf("the BENCH line is printed more than once:\n%s", out)
	}
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("a NaN figure must still encode: %v", err)
	}
	var back struct {
		Figures []struct {
			Name    string   `json:"name"`
			Value   *float64 `json:"value"`
			Verdict string   `json:"verdict"`
		} `json:"figures"`
	}
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Figures) != 2 || back.Figures[0].Value == nil || *back.Figures[0].Value != 1.234 ||
		back.Figures[0].Verdict != "MISS" || back.Figures[1].Value != nil {
		t.Errorf("figures read back as %+v", back.Figures)
	}
}

func TestPlotIsWellFormedSVG(t *testing.T) {
	svg := renderPlot(
		[]compilePoint{{Ports: 100, CompileMs: 2}, {Ports: 10000, CompileMs: 150}, {Ports: 100000, CompileMs: 1200}},
		[]installPoint{{10000, 250, 240, 150}, {100000, 2500, 3000, 1900}})
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"flows.Compile", "ovs-ofctl --bundle add-flows", "ovs-vxctl reconcile (bundle)", "linear growth", "<polyline"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot lacks %q", want)
		}
	}
	if lo, hi := decades([]series{{x: []float64{120, 95000}}}, func(s series) []float64 { return s.x }); lo != 2 || hi != 5 {
		t.Errorf("decades of 120..95000 = %v..%v, want 2..5", lo, hi)
	}
}

package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// series is one line of a plot.
type series struct {
	name   string
	color  string
	dashed bool
	x, y   []float64
}

// panel is one log-log chart.
type panel struct {
	title, xlabel, ylabel string
	series                []series
}

// renderPlot draws figure 4's compile times and figure 1's install times
// against size, each on log-log axes, as one SVG document. A dashed grey
// line of slope 1 through each panel's first point shows linear growth.
func renderPlot(compile []compilePoint, install []installPoint) string {
	var panels []panel
	if len(compile) > 0 {
		p := panel{title: "Compile (one host) vs topology size", xlabel: "ports in the topology (hosts and networks grow alike)", ylabel: "ms"}
		s := series{name: "flows.Compile", color: "#1f77b4"}
		for _, c := range compile {
			s.x, s.y = append(s.x, float64(c.Ports)), append(s.y, c.CompileMs)
		}
		p.series = append(p.series, s, linear(s))
		panels = append(panels, p)
	}
	if len(install) > 0 {
		p := panel{title: "Install into a fresh br-tun vs flows", xlabel: "flows", ylabel: "ms"}
		of := series{name: "ovs-ofctl --bundle add-flows", color: "#d62728"}
		rc := series{name: "ovs-vxctl reconcile (bundle)", color: "#2ca02c"}
		pl := series{name: "ovs-vxctl flow-mods + barrier", color: "#9467bd"}
		for _, i := range install {
			x := float64(i.flows)
			of.x, of.y = append(of.x, x), append(of.y, i.ofctl)
			rc.x, rc.y = append(rc.x, x), append(rc.y, i.reconcile)
			pl.x, pl.y = append(pl.x, x), append(pl.y, i.raw)
		}
		p.series = append(p.series, of, rc, pl, linear(of))
		panels = append(panels, p)
	}
	const pw, ph = 520, 440
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", pw*max(len(panels), 1), ph)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, p := range panels {
		p.draw(&b, float64(i*pw), pw, ph)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// linear is a dashed line of slope 1 (on log-log axes) through s's first point.
func linear(s series) series {
	out := series{name: "linear growth", color: "#999999", dashed: true}
	if len(s.x) == 0 {
		return out
	}
	for _, x := range s.x {
		out.x, out.y = append(out.x, x), append(out.y, s.y[0]*x/s.x[0])
	}
	return out
}

func (p panel) draw(b *strings.Builder, ox float64, w, h int) {
	const left, right, top, bottom = 70.0, 20.0, 40.0, 110.0
	pw, ph := float64(w)-left-right, float64(h)-top-bottom
	x0, x1 := decades(p.series, func(s series) []float64 { return s.x })
	y0, y1 := decades(p.series, func(s series) []float64 { return s.y })
	px := func(x float64) float64 { return ox + left + (math.Log10(x)-x0)/(x1-x0)*pw }
	py := func(y float64) float64 { return top + ph - (math.Log10(y)-y0)/(y1-y0)*ph }

	fmt.Fprintf(b, `<text x="%.1f" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", ox+left, html.EscapeString(p.title))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", ox+left, top, pw, ph)
	for d := x0; d <= x1; d++ {
		x := px(math.Pow(10, d))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, top, x, top+ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+ph+16, tick(d))
	}
	for d := y0; d <= y1; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", ox+left, y, ox+left+pw, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", ox+left-6, y+4, tick(d))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", ox+left+pw/2, top+ph+34, html.EscapeString(p.xlabel))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		ox+20, top+ph/2, ox+20, top+ph/2, html.EscapeString(p.ylabel))
	for i, s := range p.series {
		var pts []string
		for j := range s.x {
			if s.x[j] > 0 && s.y[j] > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.x[j]), py(s.y[j])))
			}
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash)
		if !s.dashed {
			for _, pt := range pts {
				xy := strings.Split(pt, ",")
				fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], s.color)
			}
		}
		ly := top + ph + 52 + float64(i)*15
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", ox+left, ly-4, ox+left+24, ly-4, s.color, dash)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", ox+left+30, ly, html.EscapeString(s.name))
	}
}

// decades returns the powers of ten (as exponents) that enclose every
// positive value the series hold.
func decades(ss []series, vals func(series) []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range vals(s) {
			if v > 0 {
				lo, hi = math.Min(lo, math.Log10(v)), math.Max(hi, math.Log10(v))
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 0, 1
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// tick labels the power of ten 10^d.
func tick(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	default:
		return fmt.Sprintf("%g", v)
	}
}

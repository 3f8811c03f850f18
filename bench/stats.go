package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// median of xs (the mean of the middle two for an even count); NaN when empty.
func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile p (0..100) of xs by linear interpolation between the closest
// ranks; NaN when empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	r := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(r))
	hi := int(math.Ceil(r))
	return s[lo] + (s[hi]-s[lo])*(r-float64(lo))
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// side is one of the things a comparison measures: it runs once and returns
// what it measured.
type side func() (float64, error)

// alternate runs every side once as a warm-up (discarded), then runs rounds
// in which each side runs once, the order reversed every other round so
// neither side always follows the other. It returns runs measurements per
// side, or ctx's error as soon as ctx is done.
func alternate(ctx context.Context, runs int, sides ...side) ([][]float64, error) {
	out := make([][]float64, len(sides))
	if err := runRounds(ctx, -1, runs, sides, out); err != nil {
		return nil, err
	}
	return out, nil
}

// alternateRounds runs n more rounds of alternate (no warm-up), starting
// with a forward one.
func alternateRounds(ctx context.Context, n int, sides ...side) ([][]float64, error) {
	out := make([][]float64, len(sides))
	if err := runRounds(ctx, 0, n, sides, out); err != nil {
		return nil, err
	}
	return out, nil
}

// runRounds runs rounds from..to-1 (round -1 is the warm-up, not
// recorded), appending each side's measurements to out.
func runRounds(ctx context.Context, from, to int, sides []side, out [][]float64) error {
	order := make([]int, len(sides))
	for i := range order {
		order[i] = i
	}
	for round := from; round < to; round++ {
		seq := slices.Clone(order)
		if round%2 != 0 { // warm-up (-1) and odd rounds go backwards
			slices.Reverse(seq)
		}
		for _, i := range seq {
			if err := ctx.Err(); err != nil {
				return err
			}
			v, err := sides[i]()
			if err != nil {
				if round < 0 {
					return fmt.Errorf("warm-up: %w", err)
				}
				return fmt.Errorf("run %d: %w", round+1, err)
			}
			if round >= 0 {
				out[i] = append(out[i], v)
			}
		}
	}
	return nil
}

// growthExponent is b in t = a * n^b between two sizes.
func growthExponent(n1, t1, n2, t2 float64) float64 {
	return math.Log(t2/t1) / math.Log(n2/n1)
}

// fitExponent is the least-squares slope of log t against log n.
func fitExponent(n, t []float64) float64 {
	var sx, sy, sxx, sxy float64
	k := float64(len(n))
	for i := range n {
		x, y := math.Log(n[i]), math.Log(t[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (k*sxy - sx*sy) / (k*sxx - sx*sx)
}

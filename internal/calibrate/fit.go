// Package calibrate fits the simulator's profile to a real engine: it runs
// a short probe set against the engine (a few prompt lengths at concurrency
// 1, a few concurrencies at each parallel setting), fits the profile's step
// costs by least squares, and checks the fitted simulator against the
// engine on scenarios the fit did not use. See docs/simulator.md.
package calibrate

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Point is one observation of y at x.
type Point struct{ X, Y float64 }

// Line is y = Intercept + Slope·x, fitted by ordinary least squares.
type Line struct {
	Intercept, Slope float64
	// R2 is the share of y's variance the line explains (1 when every
	// point is on it); N the points it was fitted to.
	R2 float64
	N  int
	// Clamped is true when the free fit gave a negative intercept (a
	// negative fixed cost means noise, not a faster machine) and the line
	// was refitted through the origin.
	Clamped bool
}

// At is the line's value at x.
func (l Line) At(x float64) float64 { return l.Intercept + l.Slope*x }

// FitLine fits y = a + b·x to the points, with a ≥ 0: when the free fit's
// intercept is negative it refits through the origin. It needs two distinct
// x values.
func FitLine(pts []Point) (Line, error) {
	n := float64(len(pts))
	if len(pts) < 2 {
		return Line{}, fmt.Errorf("fit a line: %d points, need at least 2", len(pts))
	}
	var sx, sy float64
	for _, p := range pts {
		if math.IsNaN(p.X) || math.IsNaN(p.Y) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) {
			return Line{}, errors.New("fit a line: a point is not a finite number")
		}
		sx += p.X
		sy += p.Y
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for _, p := range pts {
		sxx += (p.X - mx) * (p.X - mx)
		sxy += (p.X - mx) * (p.Y - my)
	}
	if sxx == 0 {
		return Line{}, fmt.Errorf("fit a line: every point has x = %g, need two different x", mx)
	}
	l := Line{Slope: sxy / sxx, N: len(pts)}
	l.Intercept = my - l.Slope*mx
	if l.Intercept < 0 {
		var xx, xy float64
		for _, p := range pts {
			xx += p.X * p.X
			xy += p.X * p.Y
		}
		l = Line{Slope: xy / xx, N: len(pts), Clamped: true}
	}
	var ssRes, ssTot float64
	for _, p := range pts {
		ssRes += (p.Y - l.At(p.X)) * (p.Y - l.At(p.X))
		ssTot += (p.Y - my) * (p.Y - my)
	}
	l.R2 = 1
	if ssTot > 0 {
		l.R2 = 1 - ssRes/ssTot
	}
	return l, nil
}

// Curve is y = Intercept + Slope·x + PerPair·x²/2: a prompt of x tokens
// read in one step, each token also attending to the ones before it (x²/2
// pairs), as the simulator computes it.
type Curve struct {
	Intercept, Slope, PerPair float64
	// R2 and N as for Line; Clamped when a negative coefficient was refitted
	// as zero (a negative cost is noise).
	R2      float64
	N       int
	Clamped bool
}

// At is the curve's value at x.
func (c Curve) At(x float64) float64 { return c.Intercept + c.Slope*x + c.PerPair*x*x/2 }

// FitPrefill fits the curve by least squares with every coefficient ≥ 0.
// With fewer than three distinct x, or a negative pair cost, it is a line
// (FitLine); a negative intercept is refitted through the origin.
func FitPrefill(pts []Point) (Curve, error) {
	line, err := FitLine(pts)
	if err != nil {
		return Curve{}, err
	}
	asCurve := Curve{Intercept: line.Intercept, Slope: line.Slope, R2: line.R2, N: line.N, Clamped: line.Clamped}
	xs := map[float64]bool{}
	for _, p := range pts {
		xs[p.X] = true
	}
	if len(xs) < 3 {
		return asCurve, nil
	}
	fit := func(intercept bool) (Curve, bool) {
		var cols []func(x float64) float64
		if intercept {
			cols = append(cols, func(float64) float64 { return 1 })
		}
		cols = append(cols, func(x float64) float64 { return x }, func(x float64) float64 { return x * x / 2 })
		beta, ok := leastSquares(pts, cols)
		if !ok {
			return Curve{}, false
		}
		if !intercept {
			beta = append([]float64{0}, beta...)
		}
		return Curve{Intercept: beta[0], Slope: beta[1], PerPair: beta[2], N: len(pts), Clamped: !intercept}, true
	}
	c, ok := fit(true)
	if ok && c.Intercept < 0 {
		c, ok = fit(false)
	}
	if !ok || c.PerPair < 0 || c.Slope < 0 {
		asCurve.Clamped = asCurve.Clamped || ok
		return asCurve, nil
	}
	var my, ssRes, ssTot float64
	for _, p := range pts {
		my += p.Y / float64(len(pts))
	}
	for _, p := range pts {
		ssRes += (p.Y - c.At(p.X)) * (p.Y - c.At(p.X))
		ssTot += (p.Y - my) * (p.Y - my)
	}
	c.R2 = 1
	if ssTot > 0 {
		c.R2 = 1 - ssRes/ssTot
	}
	return c, nil
}

// leastSquares solves the normal equations of y ≈ Σ βᵢ·colᵢ(x) by Gaussian
// elimination with partial pivoting; false when they are singular.
func leastSquares(pts []Point, cols []func(float64) float64) ([]float64, bool) {
	n := len(cols)
	a := make([][]float64, n)
	for i := range a {
		a[i] = make([]float64, n+1)
	}
	for _, p := range pts {
		for i, ci := range cols {
			for j, cj := range cols {
				a[i][j] += ci(p.X) * cj(p.X)
			}
			a[i][n] += ci(p.X) * p.Y
		}
	}
	for k := range n {
		pivot := k
		for i := k + 1; i < n; i++ {
			if math.Abs(a[i][k]) > math.Abs(a[pivot][k]) {
				pivot = i
			}
		}
		if math.Abs(a[pivot][k]) < 1e-300 {
			return nil, false
		}
		a[k], a[pivot] = a[pivot], a[k]
		for i := k + 1; i < n; i++ {
			f := a[i][k] / a[k][k]
			for j := k; j <= n; j++ {
				a[i][j] -= f * a[k][j]
			}
		}
	}
	beta := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		sum := a[i][n]
		for j := i + 1; j < n; j++ {
			sum -= a[i][j] * beta[j]
		}
		beta[i] = sum / a[i][i]
	}
	return beta, true
}

// DecodeSample is one request's decode: the slots decoding together, the
// tokens all of them attend to per step on average (each slot's prompt and
// half its answer), and its time per output token in seconds.
type DecodeSample struct{ Busy, Context, TPOT float64 }

// Samples are the measurements a fit is made from.
type Samples struct {
	// Prefill: x = prompt tokens the engine evaluated (none cached), y =
	// time to first token in seconds, one request at a time. The simulator
	// gives TTFT = overhead + StepBase + StepPerSeq + x·PrefillPerToken +
	// x²/2·AttentionPerPair.
	Prefill []Point
	// Decode: the simulator gives TPOT = StepBase + Busy·StepPerSeq +
	// Context·AttentionPerPair.
	Decode []DecodeSample
	// Loads are the engine's own model load times (load_duration), seconds.
	Loads []float64
	// Memory: x = KV cells (slots × context per slot), y = the engine's
	// memory in bytes after the load; the slope is the KV bytes per token.
	Memory []Point
}

// Params are the fitted profile parameters.
type Params struct {
	StepBase, StepPerSeq, PrefillPerToken, AttentionPerPair, RequestOverhead, LoadTime time.Duration
	// KVBytesPerToken is one token of one slot's KV cache; 0 when there
	// were no memory samples.
	KVBytesPerToken int64
	// Loads is how many load times LoadTime is the mean of.
	Loads int
	// The fitted curve and lines, for the report.
	PrefillCurve           Curve
	DecodeLine, MemoryLine Line
}

// Fit fits the profile parameters to the samples. The prefill curve gives
// the cost of a token pair; the decode line is fitted to the TPOTs less
// what their context costs at that rate.
func Fit(s Samples) (Params, error) {
	var p Params
	pre, err := FitPrefill(s.Prefill)
	if err != nil {
		return p, fmt.Errorf("prefill (TTFT by prompt tokens): %w", err)
	}
	decode := make([]Point, len(s.Decode))
	for i, d := range s.Decode {
		decode[i] = Point{d.Busy, d.TPOT - d.Context*pre.PerPair}
	}
	dec, err := FitLine(decode)
	if err != nil {
		return p, fmt.Errorf("decode step (TPOT by busy slots): %w", err)
	}
	p.PrefillCurve, p.DecodeLine = pre, dec
	p.StepBase, p.StepPerSeq = seconds(dec.Intercept), seconds(max(dec.Slope, 0))
	p.PrefillPerToken, p.AttentionPerPair = seconds(max(pre.Slope, 0)), seconds(max(pre.PerPair, 0))
	// TTFT at x = 0 is the request's own overhead plus one step of one
	// sequence; what is left beyond the step is the overhead.
	p.RequestOverhead = seconds(max(pre.Intercept-dec.At(1), 0))
	if len(s.Loads) > 0 {
		var sum float64
		for _, l := range s.Loads {
			sum += l
		}
		p.LoadTime, p.Loads = seconds(sum/float64(len(s.Loads))), len(s.Loads)
	}
	if len(s.Memory) > 0 {
		mem, err := FitLine(s.Memory)
		if err != nil {
			return p, fmt.Errorf("KV cache (memory by KV cells): %w", err)
		}
		p.MemoryLine = mem
		p.KVBytesPerToken = int64(math.Round(max(mem.Slope, 0)))
	}
	return p, nil
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

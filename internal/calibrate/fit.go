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
	"slices"
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

// TokenMap is how many of the engine's tokens a prompt of x of the
// simulator's tokens is: Offset + Ratio·x. The offset may be negative: the
// engine's chat template may add fewer tokens than the simulator's.
type TokenMap struct {
	Ratio, Offset float64
	// R2 and N are the line's fit to the prompts; Proportional is true when
	// they could not give a line (one prompt length, or a slope ≤ 0) and
	// Ratio is the ratio of the totals, with no offset.
	R2           float64
	N            int
	Proportional bool
}

// FitTokenMap fits the map to the prompts (x = the simulator's prompt
// tokens, y = the engine's) by ordinary least squares, the intercept free.
func FitTokenMap(pts []Point) (TokenMap, error) {
	var sx, sy float64
	for _, p := range pts {
		if math.IsNaN(p.X) || math.IsNaN(p.Y) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) || p.X < 0 || p.Y < 0 {
			return TokenMap{}, fmt.Errorf("token map: prompt of %g simulator and %g engine tokens", p.X, p.Y)
		}
		sx += p.X
		sy += p.Y
	}
	if sx == 0 || sy == 0 {
		return TokenMap{}, errors.New("token map: no prompt tokens")
	}
	n := float64(len(pts))
	mx, my := sx/n, sy/n
	var sxx, sxy, syy float64
	for _, p := range pts {
		sxx += (p.X - mx) * (p.X - mx)
		sxy += (p.X - mx) * (p.Y - my)
		syy += (p.Y - my) * (p.Y - my)
	}
	if sxx == 0 || sxy <= 0 {
		return TokenMap{Ratio: sy / sx, N: len(pts), Proportional: true}, nil
	}
	m := TokenMap{Ratio: sxy / sxx, N: len(pts), R2: 1}
	m.Offset = my - m.Ratio*mx
	if syy > 0 {
		m.R2 = sxy * sxy / (sxx * syy)
	}
	return m, nil
}

// Curve is y = Intercept + Slope·x + PerPair·x²/2: a prompt of x tokens
// read in one step, each token also attending to the ones before it (x²/2
// pairs), as the simulator computes it.
type Curve struct {
	Intercept, Slope, PerPair float64
	Fit                       Quality
}

// At is the curve's value at x.
func (c Curve) At(x float64) float64 { return c.Intercept + c.Slope*x + c.PerPair*x*x/2 }

// Quality is how a model fits its points: R² (the share of y's variance
// explained), the points used, the outliers left out, and whether a
// coefficient came out negative and was refitted as 0 (a negative cost is
// noise, not a faster machine).
type Quality struct {
	R2      float64
	N       int
	Dropped int
	Clamped bool
}

// FitPrefill fits the curve to relative errors, every coefficient ≥ 0.
func FitPrefill(pts []Point) (Curve, error) {
	rows := make([][]float64, len(pts))
	ys := make([]float64, len(pts))
	for i, p := range pts {
		rows[i], ys[i] = []float64{1, p.X, p.X * p.X / 2}, p.Y
	}
	beta, q, err := fitNonNegative(rows, ys)
	if err != nil {
		return Curve{}, err
	}
	return Curve{Intercept: beta[0], Slope: beta[1], PerPair: beta[2], Fit: q}, nil
}

// fitNonNegative fits y ≈ Σ βᵢ·rowᵢ by least squares of relative errors
// (each point weighted by 1/y²: a timing's noise scales with it, and a
// 0.2 s TTFT counts as much as a 17 s one), with every β ≥ 0: a negative
// coefficient, or one the points cannot tell apart from the others, is set
// to 0 and the rest refitted, most negative first.
func fitNonNegative(rows [][]float64, ys []float64) ([]float64, Quality, error) {
	if len(rows) < 2 {
		return nil, Quality{}, fmt.Errorf("fit: %d points, need at least 2", len(rows))
	}
	for i, r := range rows {
		for _, v := range append([]float64{ys[i]}, r...) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, Quality{}, errors.New("fit: a point is not a finite number")
			}
		}
	}
	k := len(rows[0])
	active := make([]bool, k)
	for i := range active {
		active[i] = true
	}
	q := Quality{N: len(rows)}
	for {
		var cols []int
		for i, a := range active {
			if a {
				cols = append(cols, i)
			}
		}
		if len(cols) == 0 {
			return nil, q, errors.New("fit: no coefficient is positive")
		}
		sub, ok := leastSquares(rows, ys, cols)
		beta := make([]float64, k)
		worst := -1
		for j, c := range cols {
			if ok {
				beta[c] = sub[j]
			}
			if ok && sub[j] < 0 && (worst < 0 || sub[j] < beta[worst]) {
				worst = c
			}
		}
		if !ok {
			worst = cols[len(cols)-1]
		}
		if worst < 0 {
			q.R2 = rSquared(rows, ys, beta)
			return beta, q, nil
		}
		active[worst], q.Clamped = false, true
	}
}

func rSquared(rows [][]float64, ys, beta []float64) float64 {
	var my, ssRes, ssTot float64
	for _, y := range ys {
		my += y / float64(len(ys))
	}
	for i, r := range rows {
		res := ys[i] - dot(r, beta)
		ssRes += res * res
		ssTot += (ys[i] - my) * (ys[i] - my)
	}
	if ssTot == 0 {
		return 1
	}
	return 1 - ssRes/ssTot
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// leastSquares solves the weighted normal equations of y ≈ Σ βⱼ·row[cols[j]]
// by Gaussian elimination with partial pivoting; false when they are
// singular (the points cannot tell two columns apart).
func leastSquares(rows [][]float64, ys []float64, cols []int) ([]float64, bool) {
	n := len(cols)
	a := make([][]float64, n)
	for i := range a {
		a[i] = make([]float64, n+1)
	}
	for r, row := range rows {
		w := 1.0
		if y := ys[r]; y > 0 {
			w = 1 / (y * y)
		}
		for i, ci := range cols {
			for j, cj := range cols {
				a[i][j] += w * row[ci] * row[cj]
			}
			a[i][n] += w * row[ci] * ys[r]
		}
	}
	for k := range n {
		pivot := k
		for i := k + 1; i < n; i++ {
			if math.Abs(a[i][k]) > math.Abs(a[pivot][k]) {
				pivot = i
			}
		}
		if math.Abs(a[pivot][k]) < 1e-12*math.Abs(a[k][k])+1e-300 {
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

// Decode is TPOT = StepBase + PerSeq·busy + PerContext·context.
type Decode struct {
	StepBase, PerSeq, PerContext float64
	Fit                          Quality
}

// At is the decode model's TPOT for s.
func (d Decode) At(s DecodeSample) float64 {
	return d.StepBase + d.PerSeq*s.Busy + d.PerContext*s.Context
}

// FitDecode fits the decode model to relative errors, every coefficient ≥ 0.
//
// A step needs a fixed or per-slot cost for the simulator to run it: when
// the fit puts everything on the context (the samples cannot tell the
// columns apart), it is fitted again without the context.
func FitDecode(samples []DecodeSample) (Decode, error) {
	d, err := fitDecode(samples, true)
	if err != nil || d.StepBase+d.PerSeq > 0 {
		return d, err
	}
	d, err = fitDecode(samples, false)
	d.Fit.Clamped = true
	return d, err
}

func fitDecode(samples []DecodeSample, context bool) (Decode, error) {
	rows := make([][]float64, len(samples))
	ys := make([]float64, len(samples))
	for i, s := range samples {
		rows[i], ys[i] = []float64{1, s.Busy}, s.TPOT
		if context {
			rows[i] = append(rows[i], s.Context)
		}
	}
	beta, q, err := fitNonNegative(rows, ys)
	if err != nil {
		return Decode{}, err
	}
	d := Decode{StepBase: beta[0], PerSeq: beta[1], Fit: q}
	if context {
		d.PerContext = beta[2]
	}
	if d.StepBase+d.PerSeq <= 0 && !context {
		return d, errors.New("fit: no step cost: the decode steps do not grow with busy slots and have no fixed part")
	}
	return d, nil
}

// DecodeSample is one request's decode: the slots decoding together, the
// context tokens all of them attend to per step on average (each slot's
// prompt and half its answer), and its decode step in seconds (the median
// gap between its tokens, see Observation.Step).
type DecodeSample struct{ Busy, Context, TPOT float64 }

// Samples are the measurements a fit is made from.
type Samples struct {
	// Prefill: x = prompt tokens the engine evaluated (none cached), y =
	// time to first token in seconds, one request at a time. The simulator
	// gives TTFT = overhead + StepBase + StepPerSeq + x·PrefillPerToken +
	// x²/2·AttentionPerPair.
	Prefill []Point
	// Decode: the simulator gives TPOT = StepBase + Busy·StepPerSeq +
	// Context·DecodePerContextToken.
	Decode []DecodeSample
	// Loads are the engine's own model load times (load_duration), seconds.
	Loads []float64
	// Memory: x = KV cells (slots × context per slot), y = the engine's
	// memory in bytes after the load; the slope is the KV bytes per token.
	Memory []Point
	// Joins counts, over the rounds of the probes with several requests,
	// whether the requests that reached the runner during another's first
	// batch joined the next batch or the one after, by whether they were
	// long prompts sent together with it or not (join.go).
	Joins Joins
}

// Params are the fitted profile parameters.
type Params struct {
	StepBase, StepPerSeq, DecodePerContextToken        time.Duration
	PrefillPerToken, AttentionPerPair, RequestOverhead time.Duration
	LoadTime                                           time.Duration
	// KVBytesPerToken is one token of one slot's KV cache; 0 when there
	// were no memory samples.
	KVBytesPerToken int64
	// Loads is how many load times LoadTime is the mean of.
	Loads int
	// LateJoinRate and LateJoinRateTogether are the shares of late joins
	// in Joins.Apart and Joins.Together (the profile's fields of the same
	// names; Joins.Rates says what a kind without rounds gets).
	LateJoinRate, LateJoinRateTogether float64
	Joins                              Joins
	// The fitted models, for the report.
	Prefill    Curve
	Decode     Decode
	MemoryLine Line
}

// Fit fits the profile parameters to the samples, each model once, then
// again without its outliers.
func Fit(s Samples) (Params, error) {
	var p Params
	pre, err := FitPrefill(s.Prefill)
	if err != nil {
		return p, fmt.Errorf("prefill (TTFT by prompt tokens): %w", err)
	}
	if keep, dropped := withoutOutliers(len(s.Prefill), func(i int) (float64, float64) { return s.Prefill[i].Y, pre.At(s.Prefill[i].X) }); dropped > 0 {
		if pre, err = FitPrefill(pick(s.Prefill, keep)); err != nil {
			return p, fmt.Errorf("prefill (TTFT by prompt tokens) without %d outliers: %w", dropped, err)
		}
		pre.Fit.Dropped = dropped
	}
	dec, err := FitDecode(s.Decode)
	if err != nil {
		return p, fmt.Errorf("decode step (TPOT by busy slots and context): %w", err)
	}
	if keep, dropped := withoutOutliers(len(s.Decode), func(i int) (float64, float64) { return s.Decode[i].TPOT, dec.At(s.Decode[i]) }); dropped > 0 {
		if dec, err = FitDecode(pick(s.Decode, keep)); err != nil {
			return p, fmt.Errorf("decode step (TPOT by busy slots and context) without %d outliers: %w", dropped, err)
		}
		dec.Fit.Dropped = dropped
	}
	p.Prefill, p.Decode = pre, dec
	p.StepBase, p.StepPerSeq, p.DecodePerContextToken = seconds(dec.StepBase), seconds(dec.PerSeq), seconds(dec.PerContext)
	p.PrefillPerToken, p.AttentionPerPair = seconds(pre.Slope), seconds(pre.PerPair)
	// TTFT at x = 0 is the request's own overhead plus one step of one
	// sequence; what is left beyond the step is the overhead.
	p.RequestOverhead = seconds(max(pre.Intercept-dec.StepBase-dec.PerSeq, 0))
	if len(s.Loads) > 0 {
		var sum float64
		for _, l := range s.Loads {
			sum += l
		}
		p.LoadTime, p.Loads = seconds(sum/float64(len(s.Loads))), len(s.Loads)
	}
	p.Joins = s.Joins
	p.LateJoinRate, p.LateJoinRateTogether = s.Joins.Rates()
	// One parallel setting gives one point: no line, and the KV cache
	// comes from the engine's log or is not measured.
	if len(s.Memory) > 1 {
		mem, err := FitLine(s.Memory)
		if err != nil {
			return p, fmt.Errorf("KV cache (memory by KV cells): %w", err)
		}
		p.MemoryLine = mem
		p.KVBytesPerToken = int64(math.Round(max(mem.Slope, 0)))
	}
	return p, nil
}

func pick[T any](v []T, keep []bool) []T {
	var out []T
	for i, k := range keep {
		if k {
			out = append(out, v[i])
		}
	}
	return out
}

// withoutOutliers marks the n points to keep, given each one's measured
// and fitted value: a real engine on a shared machine has spells that are
// twice as slow (another program took the cores), and least squares
// follows them. A point goes when its relative residual is more than 25%
// and more than three scaled median absolute deviations from the median
// residual; at most a quarter of the points go.
func withoutOutliers(n int, point func(i int) (measured, fitted float64)) ([]bool, int) {
	if n < 4 {
		return nil, 0
	}
	rel := make([]float64, n)
	for i := range n {
		if y, f := point(i); f > 0 {
			rel[i] = (y - f) / f
		}
	}
	med := median(rel)
	dev := make([]float64, n)
	for i, r := range rel {
		dev[i] = math.Abs(r - med)
	}
	limit := max(3*1.4826*median(dev), 0.25)
	keep := make([]bool, n)
	dropped := 0
	for i := range n {
		keep[i] = dev[i] <= limit
		if !keep[i] {
			dropped++
		}
	}
	if dropped > 0 && dropped <= n/4 {
		return keep, dropped
	}
	return nil, 0
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

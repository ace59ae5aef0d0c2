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

// Samples are the measurements a fit is made from.
type Samples struct {
	// Prefill: x = prompt tokens the engine evaluated (none cached), y =
	// time to first token in seconds, one request at a time. The simulator
	// gives TTFT = overhead + StepBase + StepPerSeq + x·PrefillPerToken.
	Prefill []Point
	// Decode: x = slots decoding together, y = seconds per output token
	// (TPOT). The simulator gives TPOT = StepBase + x·StepPerSeq.
	Decode []Point
	// Loads are the engine's own model load times (load_duration), seconds.
	Loads []float64
	// Memory: x = KV cells (slots × context per slot), y = the engine's
	// memory in bytes after the load; the slope is the KV bytes per token.
	Memory []Point
}

// Params are the fitted profile parameters.
type Params struct {
	StepBase, StepPerSeq, PrefillPerToken, RequestOverhead, LoadTime time.Duration
	// KVBytesPerToken is one token of one slot's KV cache; 0 when there
	// were no memory samples.
	KVBytesPerToken int64
	// Loads is how many load times LoadTime is the mean of.
	Loads int
	// The fitted lines, for the report.
	PrefillLine, DecodeLine, MemoryLine Line
}

// Fit fits the profile parameters to the samples.
func Fit(s Samples) (Params, error) {
	var p Params
	dec, err := FitLine(s.Decode)
	if err != nil {
		return p, fmt.Errorf("decode step (TPOT by busy slots): %w", err)
	}
	pre, err := FitLine(s.Prefill)
	if err != nil {
		return p, fmt.Errorf("prefill (TTFT by prompt tokens): %w", err)
	}
	p.DecodeLine, p.PrefillLine = dec, pre
	p.StepBase, p.StepPerSeq = seconds(dec.Intercept), seconds(max(dec.Slope, 0))
	p.PrefillPerToken = seconds(max(pre.Slope, 0))
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

package calibrate

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestFitLine(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pts           []Point
		a, b, r2      float64
		clamped       bool
		wantErrSubstr string
	}{
		{name: "exact", pts: []Point{{1, 5}, {2, 7}, {4, 11}}, a: 3, b: 2, r2: 1},
		{name: "symmetric noise", pts: []Point{{0, 1.1}, {0, 0.9}, {2, 5.1}, {2, 4.9}}, a: 1, b: 2, r2: 16.0 / 16.04},
		{name: "negative intercept refits through the origin", pts: []Point{{1, 1}, {2, 4}}, a: 0, b: 9.0 / 5, r2: 1 - (0.64+0.16)/4.5, clamped: true},
		{name: "one point", pts: []Point{{1, 1}}, wantErrSubstr: "need at least 2"},
		{name: "one x", pts: []Point{{3, 1}, {3, 2}}, wantErrSubstr: "two different x"},
		{name: "NaN", pts: []Point{{1, math.NaN()}, {2, 1}}, wantErrSubstr: "finite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := FitLine(tc.pts)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("FitLine = %+v, %v; want an error with %q", l, err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !near(l.Intercept, tc.a) || !near(l.Slope, tc.b) || !near(l.R2, tc.r2) || l.Clamped != tc.clamped || l.N != len(tc.pts) {
				t.Errorf("FitLine = %+v; want a %g, b %g, R² %g, clamped %v", l, tc.a, tc.b, tc.r2, tc.clamped)
			}
		})
	}
}

// Samples made by the simulator's own formulas from known parameters give
// those parameters back exactly.
func TestFitRecoversKnownParameters(t *testing.T) {
	want := Params{StepBase: 4 * time.Millisecond, StepPerSeq: 9 * time.Millisecond,
		PrefillPerToken: 700 * time.Microsecond, AttentionPerPair: 5 * time.Microsecond, DecodePerContextToken: 2 * time.Microsecond, RequestOverhead: 25 * time.Millisecond,
		LoadTime: 1500 * time.Millisecond, KVBytesPerToken: 16384}
	s := synthetic(want, 0)
	got, err := Fit(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.StepBase != want.StepBase || got.StepPerSeq != want.StepPerSeq || got.PrefillPerToken != want.PrefillPerToken ||
		got.AttentionPerPair != want.AttentionPerPair || got.DecodePerContextToken != want.DecodePerContextToken || got.RequestOverhead != want.RequestOverhead || got.LoadTime != want.LoadTime || got.KVBytesPerToken != want.KVBytesPerToken {
		t.Errorf("Fit = %+v\nwant  %+v", got, want)
	}
	for _, q := range []Quality{got.Prefill.Fit, got.Decode.Fit} {
		if !near(q.R2, 1) || q.Clamped || q.Dropped != 0 {
			t.Errorf("fit %+v: want R² 1, nothing clamped or dropped", q)
		}
	}
	if !near(got.MemoryLine.R2, 1) || got.MemoryLine.Clamped {
		t.Errorf("memory line %+v: want R² 1, not clamped", got.MemoryLine)
	}
}

// One parallel setting gives one memory point: the fit leaves the KV cache
// to the engine's log instead of failing after every probe has run.
func TestFitWithOneMemoryPoint(t *testing.T) {
	want := Params{StepBase: 4 * time.Millisecond, StepPerSeq: 9 * time.Millisecond,
		PrefillPerToken: 700 * time.Microsecond, LoadTime: time.Second, KVBytesPerToken: 16384}
	s := synthetic(want, 0)
	s.Memory = s.Memory[:1]
	got, err := Fit(s)
	if err != nil {
		t.Fatalf("Fit with one memory point: %v", err)
	}
	if got.KVBytesPerToken != 0 || got.MemoryLine.N != 0 || got.StepPerSeq != want.StepPerSeq {
		t.Errorf("Fit = %+v: want no memory line, KV bytes 0 and the decode step fitted", got)
	}
}

// Zero-mean noise on every sample moves the estimates little.
func TestFitWithNoiseStaysClose(t *testing.T) {
	want := Params{StepBase: 4 * time.Millisecond, StepPerSeq: 9 * time.Millisecond,
		PrefillPerToken: 700 * time.Microsecond, AttentionPerPair: 5 * time.Microsecond, DecodePerContextToken: 2 * time.Microsecond, RequestOverhead: 25 * time.Millisecond}
	got, err := Fit(synthetic(want, 0.05))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{{"step base", got.StepBase, want.StepBase}, {"step per seq", got.StepPerSeq, want.StepPerSeq},
		{"prefill", got.PrefillPerToken, want.PrefillPerToken}, {"attention", got.AttentionPerPair, want.AttentionPerPair},
		{"decode per context token", got.DecodePerContextToken, want.DecodePerContextToken}} {
		if rel := math.Abs(float64(c.got-c.want)) / float64(c.want); rel > 0.1 {
			t.Errorf("%s = %v, want %v within 10%%", c.name, c.got, c.want)
		}
	}
}

// A slow spell (another program took the cores: a probe's requests twice as
// slow) is left out, and the parameters come back; ±5% noise leaves
// everything in.
func TestFitLeavesOutASlowSpell(t *testing.T) {
	want := Params{StepBase: 4 * time.Millisecond, StepPerSeq: 9 * time.Millisecond,
		PrefillPerToken: 700 * time.Microsecond, AttentionPerPair: 5 * time.Microsecond, DecodePerContextToken: 2 * time.Microsecond, RequestOverhead: 25 * time.Millisecond}
	s := synthetic(want, 0)
	s.Prefill[2].Y *= 2
	s.Prefill[3].Y *= 2
	s.Decode[4].TPOT *= 2
	s.Decode[5].TPOT *= 2
	got, err := Fit(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Prefill.Fit.Dropped != 2 || got.Decode.Fit.Dropped != 2 {
		t.Errorf("dropped %d prefill and %d decode points, want 2 and 2", got.Prefill.Fit.Dropped, got.Decode.Fit.Dropped)
	}
	if got.StepBase != want.StepBase || got.StepPerSeq != want.StepPerSeq || got.PrefillPerToken != want.PrefillPerToken ||
		got.AttentionPerPair != want.AttentionPerPair || got.DecodePerContextToken != want.DecodePerContextToken || got.RequestOverhead != want.RequestOverhead {
		t.Errorf("Fit = %+v\nwant  %+v", got, want)
	}
	noisy, err := Fit(synthetic(want, 0.05))
	if err != nil {
		t.Fatal(err)
	}
	if noisy.Prefill.Fit.Dropped != 0 || noisy.Decode.Fit.Dropped != 0 {
		t.Errorf("±5%% noise dropped %d and %d points", noisy.Prefill.Fit.Dropped, noisy.Decode.Fit.Dropped)
	}
}

func TestFitNeedsBothKindsOfProbe(t *testing.T) {
	s := synthetic(Params{StepBase: time.Millisecond, StepPerSeq: time.Millisecond, PrefillPerToken: time.Millisecond}, 0)
	s.Decode = s.Decode[:1]
	if _, err := Fit(s); err == nil || !strings.Contains(err.Error(), "decode step") {
		t.Errorf("Fit with one decode point = %v, want an error naming the decode fit", err)
	}
}

// synthetic computes samples from p with the simulator's formulas; noise
// alternates ±noise (relative) so that it averages out.
func synthetic(p Params, noise float64) Samples {
	sec := func(d time.Duration) float64 { return d.Seconds() }
	sign := 1.0
	jitter := func(y float64) float64 { sign = -sign; return y * (1 + sign*noise) }
	var s Samples
	for _, tokens := range []float64{16, 64, 256, 400, 1000} {
		for range 2 {
			ttft := sec(p.RequestOverhead) + sec(p.StepBase) + sec(p.StepPerSeq) + tokens*sec(p.PrefillPerToken) +
				tokens*tokens/2*sec(p.AttentionPerPair)
			s.Prefill = append(s.Prefill, Point{tokens, jitter(ttft)})
		}
	}
	for _, prompt := range []float64{36, 300} {
		for _, busy := range []float64{1, 2, 3, 4} {
			for range 2 {
				context := busy * (prompt + 16)
				tpot := sec(p.StepBase) + busy*sec(p.StepPerSeq) + context*sec(p.DecodePerContextToken)
				s.Decode = append(s.Decode, DecodeSample{busy, context, jitter(tpot)})
			}
		}
	}
	s.Loads = []float64{sec(p.LoadTime) - 0.1, sec(p.LoadTime) + 0.1}
	for _, cells := range []float64{2048, 4096, 8192} {
		s.Memory = append(s.Memory, Point{cells, 50e6 + cells*float64(p.KVBytesPerToken)})
	}
	return s
}

// FitPrefill falls back to a line where a curve cannot be fitted or would
// have a negative cost.
func TestFitPrefill(t *testing.T) {
	for _, tc := range []struct {
		name            string
		pts             []Point
		a, b, c         float64
		clamped         bool
		wantErrContains string
	}{
		{name: "exact curve", pts: []Point{{0, 1}, {2, 1 + 2*3 + 2*0.5}, {4, 1 + 4*3 + 8*0.5}}, a: 1, b: 3, c: 0.5},
		{name: "two x: a line", pts: []Point{{1, 5}, {2, 7}, {2, 7}}, a: 3, b: 2},
		// Relative least squares: weights 1/y², the point at y = 0 weighs 1.
		{name: "concave: a line", pts: []Point{{0, 0}, {1, 10}, {2, 12}, {3, 13}}, a: 0.03259271250691381, b: 5.449485342722625, clamped: true},
		{name: "negative intercept: through the origin", pts: []Point{{1, 1}, {2, 4}, {3, 8.5}}, a: 0, b: 60.0 / 901, c: 1694.0 / 901, clamped: true},
		{name: "one point", pts: []Point{{1, 1}}, wantErrContains: "need at least 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FitPrefill(tc.pts)
			if tc.wantErrContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrContains) {
					t.Fatalf("FitPrefill = %+v, %v; want an error with %q", c, err, tc.wantErrContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(c.Intercept-tc.a) > 1e-9 || math.Abs(c.Slope-tc.b) > 1e-9 || math.Abs(c.PerPair-tc.c) > 1e-9 || c.Fit.Clamped != tc.clamped {
				t.Errorf("FitPrefill = %+v; want a %g, b %g, c %g, clamped %v", c, tc.a, tc.b, tc.c, tc.clamped)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*max(1, math.Abs(b)) }

// The engine's prompt tokens as a line in the simulator's: the generated
// model's byte-level vocabulary gives about 5.2 tokens per simulator token
// and its template about 43 fewer than the simulator's ChatML.
func TestFitTokenMap(t *testing.T) {
	line := func(x float64) Point { return Point{x, 5.2*x - 42.6} }
	for _, tc := range []struct {
		name          string
		pts           []Point
		ratio, offset float64
		proportional  bool
		wantErrSubstr string
	}{
		{name: "a line, negative offset", pts: []Point{line(15), line(61), line(143.5), line(276)}, ratio: 5.2, offset: -42.6},
		{name: "one length: the ratio of the totals", pts: []Point{{10, 35}, {10, 35}}, ratio: 3.5, proportional: true},
		{name: "falling: the ratio of the totals", pts: []Point{{10, 40}, {20, 20}}, ratio: 2, proportional: true},
		{name: "no tokens", pts: []Point{{0, 0}}, wantErrSubstr: "no prompt tokens"},
		{name: "negative", pts: []Point{{-1, 3}, {2, 4}}, wantErrSubstr: "prompt of -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := FitTokenMap(tc.pts)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("FitTokenMap = %+v, %v; want an error with %q", m, err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !near(m.Ratio, tc.ratio) || !near(m.Offset, tc.offset) || m.Proportional != tc.proportional || m.N != len(tc.pts) {
				t.Errorf("FitTokenMap = %+v; want ratio %g, offset %g, proportional %v", m, tc.ratio, tc.offset, tc.proportional)
			}
		})
	}
}

// Decode steps that only the context explains still get a step cost: the
// simulator cannot run a step that costs nothing without context.
func TestFitDecodeKeepsAStepCost(t *testing.T) {
	var samples []DecodeSample
	for _, c := range []float64{100, 200, 400, 800} {
		samples = append(samples, DecodeSample{Busy: 1, Context: c, TPOT: c * 1e-5})
	}
	d, err := FitDecode(samples)
	if err != nil {
		t.Fatal(err)
	}
	if d.StepBase+d.PerSeq <= 0 || d.PerContext != 0 || !d.Fit.Clamped {
		t.Errorf("FitDecode = %+v, want a positive step cost, no context term, clamped", d)
	}
}

package stats

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []float64{7}, Summary{Count: 1, Min: 7, Max: 7, Mean: 7, P50: 7, P90: 7, P95: 7, P99: 7}},
		// numpy.percentile([1..10], [50,90,95,99]) = 5.5, 9.1, 9.55, 9.91
		{"ten", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, Summary{Count: 10, Min: 1, Max: 10, Mean: 5.5, P50: 5.5, P90: 9.1, P95: 9.55, P99: 9.91}},
		{"two", []float64{0, 100}, Summary{Count: 2, Min: 0, Max: 100, Mean: 50, P50: 50, P90: 90, P95: 95, P99: 99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.xs)
			if got.Count != tt.want.Count || !near(got.Min, tt.want.Min) || !near(got.Max, tt.want.Max) ||
				!near(got.Mean, tt.want.Mean) || !near(got.P50, tt.want.P50) || !near(got.P90, tt.want.P90) ||
				!near(got.P95, tt.want.P95) || !near(got.P99, tt.want.P99) {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.xs, got, tt.want)
			}
		})
	}
}

func TestSummarizeKeepsInput(t *testing.T) {
	xs := []float64{3, 1, 2}
	Summarize(xs)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Fatalf("input reordered: %v", xs)
	}
}

func TestQuantile(t *testing.T) {
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile of no samples is not NaN")
	}
	if got := Quantile([]float64{4, 1, 3, 2}, 0.25); !near(got, 1.75) {
		t.Errorf("Quantile(.25) = %v, want 1.75", got)
	}
	if got := Quantile([]float64{4, 1}, 1); got != 4 {
		t.Errorf("Quantile(1) = %v, want 4", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestHistogramIsWithinAThousandth(t *testing.T) {
	h := NewHistogram(1e-6)
	var xs []float64
	for i := 1; i <= 20000; i++ {
		x := float64(i%997+1) * 1.37e-4 // 0.137 ms … 137 ms, in seconds
		xs = append(xs, x)
		h.Add(x)
	}
	got, want := h.Summary(), Summarize(xs)
	if got.Count != want.Count || got.Min != want.Min || got.Max != want.Max || math.Abs(got.Mean-want.Mean) > 1e-12 {
		t.Errorf("exact parts: got %+v, want %+v", got, want)
	}
	for _, p := range []struct {
		name      string
		got, want float64
	}{{"p50", got.P50, want.P50}, {"p90", got.P90, want.P90}, {"p95", got.P95, want.P95}, {"p99", got.P99, want.P99}} {
		// 0.1% from the histogram, plus one sample's step between ranks.
		if math.Abs(p.got-p.want) > 1e-3*p.want+1.37e-4 {
			t.Errorf("%s: %v, exact %v", p.name, p.got, p.want)
		}
	}
	if (&Histogram{}).n != 0 || NewHistogram(1).Summary() != (Summary{}) {
		t.Error("an empty histogram's summary is not zero")
	}
}

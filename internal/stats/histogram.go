package stats

import (
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram summarises a stream of samples too long to keep (every
// inter-chunk gap of a long run) in bounded memory: count, min, max and
// mean are exact; percentiles come from an HdrHistogram with three
// significant digits, so they are within 0.1% of the exact value.
type Histogram struct {
	h          *hdrhistogram.Histogram
	resolution float64
	n          int
	min, max   float64
	sum        float64
}

// NewHistogram records samples rounded to resolution (for gaps in seconds
// measured to the microsecond, 1e-6), from resolution up to a billion
// times it.
func NewHistogram(resolution float64) *Histogram {
	return &Histogram{h: hdrhistogram.New(1, 1e9, 3), resolution: resolution}
}

// Add records x; negative samples count as 0, samples beyond the range as
// its top (min, max and mean keep the exact value).
func (h *Histogram) Add(x float64) {
	if h.n == 0 || x < h.min {
		h.min = x
	}
	if h.n == 0 || x > h.max {
		h.max = x
	}
	h.n++
	h.sum += x
	v := int64(math.Round(x / h.resolution))
	v = min(max(v, 0), h.h.HighestTrackableValue())
	_ = h.h.RecordValue(v) // in range by the clamp above
}

// Summary is the summary of the samples added; all zeros for none.
func (h *Histogram) Summary() Summary {
	if h.n == 0 {
		return Summary{}
	}
	q := func(p float64) float64 {
		v := float64(h.h.ValueAtQuantile(p)) * h.resolution
		return min(max(v, h.min), h.max)
	}
	return Summary{Count: h.n, Min: h.min, Max: h.max, Mean: h.sum / float64(h.n),
		P50: q(50), P90: q(90), P95: q(95), P99: q(99)}
}

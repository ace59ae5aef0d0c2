// Package stats computes the percentiles and summaries of
// docs/METRICS.md: exact over all kept samples (linear interpolation
// between closest ranks) with Summarize, and within 0.1% in bounded memory
// with Histogram, for samples too many to keep.
package stats

import (
	"math"
	"sort"
)

// Summary describes a set of samples.
type Summary struct {
	Count              int
	Min, Max, Mean     float64
	P50, P90, P95, P99 float64
}

// Summarize returns the summary of xs; it sorts a copy, xs is not changed.
// The summary of no samples is all zeros.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Summary{
		Count: len(s),
		Min:   s[0],
		Max:   s[len(s)-1],
		Mean:  sum / float64(len(s)),
		P50:   sortedQuantile(s, 0.50),
		P90:   sortedQuantile(s, 0.90),
		P95:   sortedQuantile(s, 0.95),
		P99:   sortedQuantile(s, 0.99),
	}
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of xs; NaN for no samples.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return sortedQuantile(s, q)
}

// sortedQuantile interpolates linearly between the closest ranks of sorted
// samples: rank h = q·(n−1), as numpy's default and Excel's PERCENTILE.INC.
func sortedQuantile(s []float64, q float64) float64 {
	switch {
	case q <= 0:
		return s[0]
	case q >= 1:
		return s[len(s)-1]
	}
	h := q * float64(len(s)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(s) {
		return s[i]
	}
	return s[i] + (h-lo)*(s[i+1]-s[i])
}

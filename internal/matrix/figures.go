package matrix

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/stats"
)

// Compute summarises one scenario's requests. Latency percentiles are over
// successful requests only; errors are counted.
//
// Throughput follows docs/METRICS.md: the output tokens of the measured
// requests over the window, which runs from the first request's start until
// the duration has passed or the last request has ended, whichever is
// later. The supervisor runs the warm-up before the window and lets it
// drain, so the engine serves only measured requests inside it; requests
// started inside the duration are waited for and counted. Compute returns
// the window too.
func Compute(reqs []Request, duration time.Duration) (Figures, time.Duration) {
	var f Figures
	var ttft, e2e, tps, srv, queue []float64
	var first, lastEnd time.Time
	errs := map[string]int{}
	for _, r := range reqs {
		f.Requests++
		if first.IsZero() || r.Start.Before(first) {
			first = r.Start
		}
		if end := r.End(); end.After(lastEnd) {
			lastEnd = r.End()
		}
		if !r.OK {
			f.Errors++
			errs[r.ErrorType]++
			continue
		}
		f.OutputTokens += r.OutputTokens
		f.TokensEstimated = f.TokensEstimated || r.TokensEstimated
		e2e = append(e2e, r.E2EMs)
		if r.HasTTFT {
			ttft = append(ttft, r.TTFTMs)
		}
		if r.TokPerSec > 0 {
			tps = append(tps, r.TokPerSec)
		}
		if r.ServerTokPerSec > 0 {
			srv = append(srv, r.ServerTokPerSec)
			queue = append(queue, r.QueueWaitMs)
		}
	}
	t, e, s := stats.Summarize(ttft), stats.Summarize(e2e), stats.Summarize(tps)
	f.TTFTP50Ms, f.TTFTP90Ms, f.TTFTP99Ms, f.TTFTMeanMs = t.P50, t.P90, t.P99, t.Mean
	f.E2EP50Ms, f.E2EP90Ms, f.E2EP99Ms = e.P50, e.P90, e.P99
	f.TokPerSecMean, f.TokPerSecP50 = s.Mean, s.P50
	f.ServerTokPerSecMean = stats.Summarize(srv).Mean
	f.QueueWaitP50Ms = stats.Summarize(queue).P50
	f.ErrorTypes = joinCounts(errs)

	window := max(duration, lastEnd.Sub(first))
	tokens, served := f.OutputTokens, f.Requests-f.Errors
	if window > 0 {
		f.OutputTokPerSec = float64(tokens) / window.Seconds()
		f.ReqPerSec = float64(served) / window.Seconds()
	}
	return f, window
}

func joinCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ";")
}

package matrix

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/loadreport"
)

// Window is the time span a scenario's throughput is counted over: the
// requests that ended inside it count (docs/METRICS.md).
type Window struct {
	Start time.Time `json:"window_start"`
	End   time.Time `json:"window_end"`
}

// Length is the window's length.
func (w Window) Length() time.Duration { return w.End.Sub(w.Start) }

// DrainedWindow is the window of a run whose warm-up drained before the
// measured requests started (results written before the window was
// stored): from the first request's start until the duration has passed or
// the last request has ended, whichever is later, so every request ends
// inside it.
func DrainedWindow(reqs []Request, duration time.Duration) Window {
	var w Window
	var lastEnd time.Time
	for _, r := range reqs {
		if r.Warmup {
			continue
		}
		if w.Start.IsZero() || r.Start.Before(w.Start) {
			w.Start = r.Start
		}
		if end := r.End(); end.After(lastEnd) {
			lastEnd = end
		}
	}
	w.End = w.Start.Add(max(duration, lastEnd.Sub(w.Start)))
	return w
}

// Compute summarises one scenario's requests over its window with the one
// aggregator of tokentrace (loadreport.Collector), the same code
// `loadtest report` uses: latency percentiles over successful requests,
// errors counted, throughput over the window, goodput against slo.
func Compute(reqs []Request, w Window, slo loadreport.SLO) Figures {
	c := loadreport.NewCollector(loadreport.Options{Start: w.Start, End: w.End, SLO: slo})
	for _, q := range reqs {
		c.AddRecord(q)
	}
	return FiguresOf(c.Report())
}

// FiguresOf is the scenario summary of a report, in milliseconds.
func FiguresOf(r loadreport.Report) Figures {
	ms := func(s float64) float64 { return s * 1e3 }
	f := Figures{Requests: r.Requests, Errors: r.Requests - r.Succeeded,
		TTFTP50Ms: ms(r.TTFT.P50), TTFTP90Ms: ms(r.TTFT.P90), TTFTP95Ms: ms(r.TTFT.P95), TTFTP99Ms: ms(r.TTFT.P99),
		TTFTMeanMs: ms(r.TTFT.Mean),
		E2EP50Ms:   ms(r.E2E.P50), E2EP90Ms: ms(r.E2E.P90), E2EP95Ms: ms(r.E2E.P95), E2EP99Ms: ms(r.E2E.P99),
		TPOTP50Ms: ms(r.TPOT.P50), TPOTP95Ms: ms(r.TPOT.P95), TPOTP99Ms: ms(r.TPOT.P99),
		ITLP50Ms: ms(r.ITL.P50), ITLP95Ms: ms(r.ITL.P95), ITLP99Ms: ms(r.ITL.P99),
		TokPerSecMean: r.DecodeSpeed.Mean, TokPerSecP50: r.DecodeSpeed.P50,
		ServerTokPerSecMean: r.ServerDecodeSpeed.Mean, QueueWaitP50Ms: ms(r.QueueWait.P50),
		OutputTokPerSec: r.OutputThroughput, ReqPerSec: r.RequestThroughput, GoodputRPS: r.Goodput, GoodRatio: r.GoodRatio,
		OutputTokens: r.OutputTokens, MeanOutputTokens: r.OutputPerRequest.Mean,
		TokensEstimated: r.EstimatedTokens > 0, Late: r.Late, LateP95Ms: ms(r.LateBy.P95),
	}
	errs := map[string]int{}
	for _, e := range r.Errors {
		errs[e.Type] = e.Count
	}
	f.ErrorTypes = joinCounts(errs)
	return f
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

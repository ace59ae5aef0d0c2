package matrix

import (
	"fmt"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/loadreport"
)

// SLOLimit is one latency limit held at a percentile: "ttft_p95=2s".
type SLOLimit struct {
	// Figure is ttft, tpot or e2e; Percentile 50, 90, 95 or 99.
	Figure     string   `json:"figure"`
	Percentile int      `json:"percentile"`
	Limit      Duration `json:"limit"`
}

func (l SLOLimit) String() string {
	return fmt.Sprintf("%s_p%d=%s", l.Figure, l.Percentile, l.Limit.D())
}

// SLO is a set of limits a setting must meet to serve its users: every
// limit at its percentile (--slo).
type SLO struct {
	Limits []SLOLimit `json:"limits,omitempty"`
}

// Set reports whether any limit is set.
func (s SLO) Set() bool { return len(s.Limits) > 0 }

func (s SLO) String() string {
	parts := make([]string, len(s.Limits))
	for i, l := range s.Limits {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

// ParseSLO reads "ttft_p95=2s,tpot_p95=100ms,e2e_p99=30s": any subset of
// ttft, tpot and e2e, each once, at p50, p90, p95 or p99, each limit a
// positive Go duration.
func ParseSLO(text string) (SLO, error) {
	var s SLO
	if strings.TrimSpace(text) == "" {
		return s, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(text, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return SLO{}, fmt.Errorf("%q is not figure_pNN=duration (e.g. ttft_p95=2s)", part)
		}
		fig, pct, ok := strings.Cut(strings.ToLower(strings.TrimSpace(k)), "_p")
		if !ok {
			return SLO{}, fmt.Errorf("%q: name a percentile, e.g. %s_p95", k, k)
		}
		if fig != "ttft" && fig != "tpot" && fig != "e2e" {
			return SLO{}, fmt.Errorf("%q: unknown figure %q (ttft, tpot, e2e)", k, fig)
		}
		var p int
		switch pct {
		case "50", "90", "95", "99":
			fmt.Sscan(pct, &p)
		default:
			return SLO{}, fmt.Errorf("%q: percentile p%s: must be p50, p90, p95 or p99", k, pct)
		}
		if fig == "tpot" && p == 90 {
			return SLO{}, fmt.Errorf("%q: tpot is held at p50, p95 or p99", k)
		}
		if seen[fig] {
			return SLO{}, fmt.Errorf("%s given twice", fig)
		}
		seen[fig] = true
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return SLO{}, fmt.Errorf("%s: %q is not a positive duration", k, v)
		}
		s.Limits = append(s.Limits, SLOLimit{Figure: fig, Percentile: p, Limit: Duration(d)})
	}
	return s, nil
}

// PerRequest is the limits as goodput counts them: a request is good when
// it meets every limit by itself.
func (s SLO) PerRequest() loadreport.SLO {
	var r loadreport.SLO
	for _, l := range s.Limits {
		switch l.Figure {
		case "ttft":
			r.TTFT = l.Limit.D()
		case "tpot":
			r.TPOT = l.Limit.D()
		case "e2e":
			r.E2E = l.Limit.D()
		}
	}
	return r
}

// value is the figure a limit holds, in milliseconds.
func (l SLOLimit) value(f Figures) float64 {
	table := map[string]map[int]float64{
		"ttft": {50: f.TTFTP50Ms, 90: f.TTFTP90Ms, 95: f.TTFTP95Ms, 99: f.TTFTP99Ms},
		"tpot": {50: f.TPOTP50Ms, 95: f.TPOTP95Ms, 99: f.TPOTP99Ms},
		"e2e":  {50: f.E2EP50Ms, 90: f.E2EP90Ms, 95: f.E2EP95Ms, 99: f.E2EP99Ms},
	}
	return table[l.Figure][l.Percentile]
}

// GoodputTolerance is how far below the request throughput goodput may be
// for the SLO to hold, as a share of the requests measured in the window:
// 5% may miss a limit by themselves (a p95 limit allows that many).
const GoodputTolerance = 0.05

// Met reports whether figures meet the SLO: every limit at its percentile,
// no failed request, and goodput within GoodputTolerance of the request
// throughput (counted over the requests started in the window, so that
// warm-up requests ending in it do not count twice). why names the first
// miss.
func (s SLO) Met(f Figures) (ok bool, why string) {
	if f.Requests == 0 || f.Errors == f.Requests {
		return false, "no successful request"
	}
	if f.Errors > 0 {
		return false, fmt.Sprintf("%d of %d requests failed", f.Errors, f.Requests)
	}
	for _, l := range s.Limits {
		if v := l.value(f); v > float64(l.Limit.D())/float64(time.Millisecond) {
			return false, fmt.Sprintf("%s_p%d %.0f ms > %s", l.Figure, l.Percentile, v, l.Limit.D())
		}
	}
	if f.GoodRatio < 1-GoodputTolerance {
		return false, fmt.Sprintf("only %.0f%% of requests met every limit (goodput %.2f of %.2f req/s), want %.0f%%",
			100*f.GoodRatio, f.GoodputRPS, f.ReqPerSec, 100*(1-GoodputTolerance))
	}
	return true, ""
}

// KeepUpTolerance is how far the requests served per second may fall
// below the arrivals in an open-loop probe (the window's edges and
// Poisson counts make them differ a little even when the engine keeps up).
const KeepUpTolerance = 0.15

// KeepUpSlack is the requests still in flight at the window's end that
// an engine keeping up may owe.
const KeepUpSlack = 2

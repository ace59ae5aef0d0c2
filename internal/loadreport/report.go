// Package loadreport turns load-test results (vegeta Results carrying
// loadgen Figures) into the figures of docs/METRICS.md: counts, errors by
// type, throughput over the window, exact TTFT/E2E/ITL/TPOT percentiles,
// decode speeds, Ollama's queue wait and goodput, and writes them as text,
// JSON, CSV or Markdown.
package loadreport

import (
	"errors"
	"fmt"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/stats"
)

// Options configure a report.
type Options struct {
	// SLO, when any limit is set, makes the report count goodput.
	SLO SLO
	// Start and End, when both set, are the window throughput is counted
	// over: successful requests ending inside it count, with their output
	// tokens. Otherwise the window is the span of the requests' ends (see
	// Collector.window). The supervisor always knows it.
	Start, End time.Time
}

// ErrorCount is how many requests failed with one error type.
type ErrorCount struct {
	Type    string `json:"type"`
	Count   int    `json:"count"`
	Example string `json:"example"` // the first message of that type
}

// Report holds the figures of docs/METRICS.md. Latencies are in seconds,
// speeds in tokens per second, throughputs per second of the window.
type Report struct {
	Attacks      []string     `json:"attacks"`
	Requests     int          `json:"requests"`
	Succeeded    int          `json:"succeeded"`
	SuccessRatio float64      `json:"success_ratio"`
	Errors       []ErrorCount `json:"errors"`
	// Unmeasured counts results without tokentrace figures (plain vegeta
	// output); they count as requests, with vegeta's status and latency.
	Unmeasured int `json:"unmeasured"`

	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Window float64   `json:"window_seconds"`

	RequestThroughput float64 `json:"request_throughput"` // successful requests ending in the window, per second
	OutputThroughput  float64 `json:"output_throughput"`  // output tokens of successful requests ending in the window, per second
	InputTokens       int     `json:"input_tokens"`       // over every request
	OutputTokens      int     `json:"output_tokens"`
	// EstimatedTokens counts requests whose server sent no token counts:
	// their output tokens are output chunks. Token figures are marked
	// "estimated" in the text output when it is not 0.
	EstimatedTokens int `json:"estimated_token_requests"`

	TTFT              stats.Summary `json:"ttft_seconds"`
	E2E               stats.Summary `json:"e2e_seconds"`
	ITL               stats.Summary `json:"itl_seconds"`
	TPOT              stats.Summary `json:"tpot_seconds"`
	DecodeSpeed       stats.Summary `json:"decode_speed"`        // per request, 1/TPOT; Mean is the mean per-request tok/s
	ServerDecodeSpeed stats.Summary `json:"server_decode_speed"` // Ollama's eval_count/eval_duration
	QueueWait         stats.Summary `json:"queue_wait_seconds"`  // Ollama, server-side
	InputPerRequest   stats.Summary `json:"input_tokens_per_request"`
	OutputPerRequest  stats.Summary `json:"output_tokens_per_request"`

	// Late counts open-loop requests sent after their scheduled arrival
	// (a concurrency cap held them back); LateBy how late. Their TTFT and
	// E2E count from the scheduled arrival (no coordinated omission).
	Late   int           `json:"late_requests"`
	LateBy stats.Summary `json:"late_seconds"`

	SLO          SLO     `json:"slo"`
	GoodRequests int     `json:"good_requests"` // met every SLO, ended in the window
	Goodput      float64 `json:"goodput"`       // GoodRequests per second
	// GoodRatio is the share of the successful requests started in the
	// window that met every SLO limit: goodput over throughput, without
	// the warm-up's requests that end inside the window.
	GoodRatio float64 `json:"good_ratio"`
}

// sample is what the report keeps of one request for the window.
type sample struct {
	start, end time.Time
	ok, good   bool
	output     int
	warmup     bool // only for a known window's throughput
}

// Collector is the one aggregator of tokentrace's figures: `loadtest
// report` and the supervisor both add Records to it and read the Report,
// so every figure has one implementation, one window rule and one
// token-counting rule. It keeps one number per request and figure (exact
// percentiles) and a bounded histogram of the inter-chunk gaps, which are
// one per token. It is not safe for concurrent use.
type Collector struct {
	opts    Options
	attacks map[string]bool
	errs    map[string]*ErrorCount
	samples []sample
	r       Report

	ttft, e2e, tpot, speed, serverSpeed, queue, in, out, late []float64
	good                                                      int // successful requests that met the SLO
	itl                                                       *stats.Histogram
}

// NewCollector returns an empty Collector.
func NewCollector(opts Options) *Collector {
	return &Collector{opts: opts, attacks: map[string]bool{}, errs: map[string]*ErrorCount{},
		itl: stats.NewHistogram(1e-6)}
}

// Add counts one result. Results without figures count with vegeta's
// fields; an error is returned only for figures that cannot be decoded.
func (c *Collector) Add(res *vegeta.Result) error {
	f, err := loadgen.Decode(res)
	switch {
	case errors.Is(err, loadgen.ErrNoFigures):
		c.r.Unmeasured++
		f = loadgen.Figures{Start: res.Timestamp, End: res.Latency, Status: int(res.Code)}
		if res.Error != "" {
			f.ErrorType, f.Error = "vegeta", res.Error
		}
	case err != nil:
		return fmt.Errorf("result %d of attack %q: %w", res.Seq, res.Attack, err)
	}
	if f.Start.IsZero() {
		f.Start, f.End = res.Timestamp, res.End().Sub(res.Timestamp)
	}
	rec := RecordOf(f)
	rec.Scenario = res.Attack
	c.AddRecord(rec)
	return nil
}

// AddRecord counts one request. A warm-up record counts only in the
// window's throughput and goodput, when it ends inside the window.
func (c *Collector) AddRecord(q Record) {
	if q.Warmup {
		c.samples = append(c.samples, sample{start: q.Start, end: q.End(), ok: q.OK, output: q.OutputTokens,
			good: q.OK && c.opts.SLO.met(&q), warmup: true})
		return
	}
	c.attacks[q.Scenario] = true
	c.r.Requests++
	s := sample{start: q.Start, end: q.End(), ok: q.OK, output: q.OutputTokens}
	c.r.InputTokens += q.InputTokens
	c.r.OutputTokens += q.OutputTokens
	if q.TokensEstimated && q.OutputChunks > 0 {
		c.r.EstimatedTokens++
	}
	if !q.OK {
		if q.LateMs > 0 {
			c.late = append(c.late, q.LateMs/1e3)
		}
		e := c.errs[q.ErrorType]
		if e == nil {
			e = &ErrorCount{Type: q.ErrorType, Example: q.Error}
			c.errs[q.ErrorType] = e
		}
		e.Count++
		c.samples = append(c.samples, s)
		return
	}
	if q.LateMs > 0 {
		c.late = append(c.late, q.LateMs/1e3)
	}
	c.r.Succeeded++
	if c.opts.SLO.met(&q) {
		c.good++
	}
	c.e2e = append(c.e2e, (q.E2EMs+q.LateMs)/1e3)
	if q.HasTTFT {
		c.ttft = append(c.ttft, (q.TTFTMs+q.LateMs)/1e3)
	}
	for _, g := range q.GapsUS {
		c.itl.Add(float64(g) / 1e6)
	}
	if q.HasTPOT() {
		c.tpot = append(c.tpot, q.TPOTMs/1e3)
		if q.TokPerSec > 0 {
			c.speed = append(c.speed, q.TokPerSec)
		}
	}
	if q.ServerTimings || q.ServerTokPerSec > 0 {
		if q.ServerTokPerSec > 0 {
			c.serverSpeed = append(c.serverSpeed, q.ServerTokPerSec)
		}
		c.queue = append(c.queue, q.QueueWaitMs/1e3)
	}
	c.in = append(c.in, float64(q.InputTokens))
	c.out = append(c.out, float64(q.OutputTokens))
	s.good = c.opts.SLO.met(&q)
	c.samples = append(c.samples, s)
}

// Report computes the figures of everything added so far.
func (c *Collector) Report() Report {
	r := c.r
	for a := range c.attacks {
		r.Attacks = append(r.Attacks, a)
	}
	sort.Strings(r.Attacks)
	for _, e := range c.errs {
		r.Errors = append(r.Errors, *e)
	}
	sort.Slice(r.Errors, func(i, j int) bool {
		if r.Errors[i].Count != r.Errors[j].Count {
			return r.Errors[i].Count > r.Errors[j].Count
		}
		return r.Errors[i].Type < r.Errors[j].Type
	})
	if r.Requests > 0 {
		r.SuccessRatio = float64(r.Succeeded) / float64(r.Requests)
	}
	r.TTFT, r.E2E, r.ITL, r.TPOT = stats.Summarize(c.ttft), stats.Summarize(c.e2e), c.itl.Summary(), stats.Summarize(c.tpot)
	r.DecodeSpeed, r.ServerDecodeSpeed = stats.Summarize(c.speed), stats.Summarize(c.serverSpeed)
	r.QueueWait = stats.Summarize(c.queue)
	r.InputPerRequest, r.OutputPerRequest = stats.Summarize(c.in), stats.Summarize(c.out)
	if r.Succeeded > 0 {
		r.GoodRatio = float64(c.good) / float64(r.Succeeded)
	}
	r.LateBy = stats.Summarize(c.late)
	r.Late = r.LateBy.Count
	r.SLO = c.opts.SLO
	c.window(&r)
	return r
}

// window sets the window and the figures counted over it. Without an
// explicit window it is the span of the requests' ends: in a steady closed
// or open loop, requests end at the rate they are served from the first
// end after the warm-up to the last end of the drain, so (ends after the
// first) / (last end − first end) is that rate. When every request ended
// at about the same moment (one round), it falls back to first start →
// last end, counting every request.
func (c *Collector) window(r *Report) {
	if len(c.samples) == 0 {
		return
	}
	start, end := c.opts.Start, c.opts.End
	explicit := !start.IsZero() && !end.IsZero()
	samples := c.samples
	if !explicit { // warm-up requests count only in a known window
		samples = nil
		for _, s := range c.samples {
			if !s.warmup {
				samples = append(samples, s)
			}
		}
		if len(samples) == 0 {
			return
		}
	}
	var firstEnd sample
	if !explicit {
		firstStart, firstEnd0, lastEnd := samples[0].start, samples[0], samples[0].end
		for _, s := range samples[1:] {
			if s.start.Before(firstStart) {
				firstStart = s.start
			}
			if s.end.Before(firstEnd0.end) {
				firstEnd0 = s
			}
			if s.end.After(lastEnd) {
				lastEnd = s.end
			}
		}
		firstEnd = firstEnd0
		start, end = firstEnd.end, lastEnd
		// Too short a span of ends to be a rate: one round of requests.
		if len(samples) < 3 || end.Sub(start) < lastEnd.Sub(firstStart)/10 {
			start, explicit = firstStart, true
		}
	}
	r.Start, r.End, r.Window = start, end, end.Sub(start).Seconds()
	var okN, goodN, tokens int
	for _, s := range samples {
		inside := !s.end.Before(start) && !s.end.After(end)
		if !explicit {
			inside = s.end.After(start) && !s.end.After(end) // the first end opens the window
		}
		if !inside {
			continue
		}
		if s.ok {
			okN++
			tokens += s.output
		}
		if s.good {
			goodN++
		}
	}
	r.GoodRequests = goodN
	if r.Window > 0 {
		r.RequestThroughput = float64(okN) / r.Window
		r.OutputThroughput = float64(tokens) / r.Window
		r.Goodput = float64(goodN) / r.Window
	}
}

// Compute is the report of results.
func Compute(results []vegeta.Result, opts Options) (Report, error) {
	c := NewCollector(opts)
	for i := range results {
		if err := c.Add(&results[i]); err != nil {
			return Report{}, err
		}
	}
	return c.Report(), nil
}

package loadreport

import (
	"time"

	"github.com/tokentrace/tokentrace/internal/loadgen"
)

// Record is what every figure is computed from: one request, as the load
// generator measured it (docs/METRICS.md), in milliseconds. It is the one
// per-request record of tokentrace: `loadtest report` makes it from each
// vegeta Result, the supervisor from each in-process result and stores it
// as a line of requests.jsonl, and both hand it to a Collector.
type Record struct {
	// Scenario and Attempt name the run the request belongs to (the
	// supervisor's scenario and attempt; vegeta's attack name).
	Scenario string    `json:"scenario"`
	Attempt  string    `json:"attempt"`
	Start    time.Time `json:"start"`
	OK       bool      `json:"ok"`
	Status   int       `json:"status,omitempty"`
	// ErrorType is docs/METRICS.md's error.type; Error its message.
	ErrorType string `json:"error_type,omitempty"`
	Error     string `json:"error,omitempty"`
	// TTFTMs is valid when HasTTFT (output arrived).
	TTFTMs  float64 `json:"ttft_ms"`
	HasTTFT bool    `json:"has_ttft"`
	E2EMs   float64 `json:"e2e_ms"`
	// TPOTMs and TokPerSec (1/TPOT) are valid when HasTPOT (two output
	// tokens or more).
	TPOTMs          float64 `json:"tpot_ms,omitempty"`
	TokPerSec       float64 `json:"tok_per_s,omitempty"`
	InputTokens     int     `json:"input_tokens"`
	OutputTokens    int     `json:"output_tokens"`
	TokensEstimated bool    `json:"tokens_estimated,omitempty"`
	// OutputChunks counts the output-carrying chunks; GapsUS are the
	// inter-chunk latencies in microseconds (ITL).
	OutputChunks int     `json:"chunks,omitempty"`
	GapsUS       []int64 `json:"gaps_us,omitempty"`
	// ServerTimings says Ollama sent its final timings: ServerTokPerSec is
	// its eval_count/eval_duration, QueueWaitMs its queue wait.
	ServerTimings   bool    `json:"server_timings,omitempty"`
	ServerTokPerSec float64 `json:"server_tok_per_s,omitempty"`
	QueueWaitMs     float64 `json:"queue_wait_ms,omitempty"`
	// Warmup marks a request started before the window: it counts in the
	// window's throughput and goodput when it ends inside the window, and
	// in no other figure.
	Warmup bool `json:"warmup,omitempty"`
	// LateMs is, in an open loop, how long after its scheduled arrival the
	// request was sent (a concurrency cap held it back); 0 when on time or
	// in a closed loop. Latencies count from the scheduled arrival.
	LateMs float64 `json:"late_ms,omitempty"`
}

// HasTPOT reports whether TPOT is defined (two output tokens or more).
func (r *Record) HasTPOT() bool { return r.TPOTMs > 0 || r.TokPerSec > 0 }

// End is when the request ended.
func (r *Record) End() time.Time { return r.Start.Add(msDuration(r.E2EMs)) }

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func durationMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RecordOf is the record of one request's figures.
func RecordOf(f loadgen.Figures) Record {
	q := Record{Start: f.Start, OK: f.OK(), Status: f.Status, ErrorType: f.ErrorType, Error: f.Error,
		E2EMs: durationMs(f.End), InputTokens: f.InputTokens, OutputTokens: f.OutputTokens,
		TokensEstimated: f.TokensEstimated, OutputChunks: f.OutputChunks, LateMs: durationMs(f.Late)}
	if ttft, ok := f.TTFT(); ok {
		q.TTFTMs, q.HasTTFT = durationMs(ttft), true
	}
	if tpot, ok := f.TPOT(); ok {
		q.TPOTMs, q.TokPerSec = durationMs(tpot), f.DecodeSpeed()
	}
	if len(f.Gaps) > 0 {
		q.GapsUS = make([]int64, len(f.Gaps))
		for i, g := range f.Gaps {
			q.GapsUS[i] = int64(g.Round(time.Microsecond) / time.Microsecond)
		}
	}
	if f.Ollama != nil {
		q.ServerTimings = true
		q.ServerTokPerSec = f.Ollama.DecodeSpeed()
		q.QueueWaitMs = float64(f.Ollama.QueueWait()) / 1e6
	}
	return q
}

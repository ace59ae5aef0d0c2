// Package matrix runs the parallelism matrix: for each engine setting
// (parallel slots × context) it restarts the engine, then drives every
// concurrency × prompt size through the proxy, sampling memory and watching
// for OOM, and appends each scenario's results to disk as soon as it ends.
package matrix

import (
	"fmt"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
)

// Setting is one engine configuration: the engine restarts between settings.
type Setting struct {
	Parallel int `json:"parallel"`
	NumCtx   int `json:"num_ctx"`
}

func (s Setting) String() string { return fmt.Sprintf("p%d-ctx%d", s.Parallel, s.NumCtx) }

// Scenario is one cell of the matrix.
type Scenario struct {
	Setting
	Concurrency int    `json:"concurrency"`
	PromptSize  string `json:"prompt_size"`
}

// Name is the scenario's name, sent to the proxy with each request and the
// key of --resume.
func (s Scenario) Name() string {
	return fmt.Sprintf("%s-c%d-%s", s.Setting, s.Concurrency, s.PromptSize)
}

// Scenario outcomes.
const (
	StatusOK      = "ok"      // the scenario ran
	StatusOOM     = "oom"     // the engine ran out of memory (at load or during the load)
	StatusCrash   = "crash"   // the engine exited or was killed for another reason
	StatusFailed  = "failed"  // the engine could not be started for this setting
	StatusSkipped = "skipped" // an earlier scenario of the setting failed the engine
)

// Request is the raw record of one measured request (requests.jsonl): the
// figures of docs/METRICS.md in milliseconds.
type Request struct {
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
	// TPOTMs and TokPerSec (1/TPOT) are valid when OutputTokens ≥ 2.
	TPOTMs          float64 `json:"tpot_ms,omitempty"`
	TokPerSec       float64 `json:"tok_per_s,omitempty"`
	InputTokens     int     `json:"input_tokens"`
	OutputTokens    int     `json:"output_tokens"`
	TokensEstimated bool    `json:"tokens_estimated,omitempty"`
	// ServerTokPerSec is Ollama's eval_count/eval_duration; QueueWaitMs its
	// queue wait; both 0 when the server sent no timings.
	ServerTokPerSec float64 `json:"server_tok_per_s,omitempty"`
	QueueWaitMs     float64 `json:"queue_wait_ms,omitempty"`
}

// EndMs is the request's end, in ms since the Unix epoch.
func (r Request) End() time.Time {
	return r.Start.Add(time.Duration(r.E2EMs * float64(time.Millisecond)))
}

// SettingFacts is what the supervisor learnt while starting the engine for a
// setting; every scenario of the setting carries it.
type SettingFacts struct {
	// TimeToReadyS: from process start until it answered.
	TimeToReadyS float64 `json:"time_to_ready_s"`
	// ColdLoadS: the first load of the model, as the supervisor saw it;
	// ServerLoadS as the engine reported it (load_duration).
	ColdLoadS   float64 `json:"cold_load_s"`
	ServerLoadS float64 `json:"server_load_s"`
	// RunnerParallel and RunnerCtx are what the engine really runs with
	// (from its runner's arguments); 0 when unknown. Verified says whether
	// they match the setting ("yes", "no: …", or why it could not be told).
	RunnerParallel int    `json:"runner_parallel"`
	RunnerCtx      int    `json:"runner_ctx"`
	Verified       string `json:"verified"`
	// RunnerLog is everything the engine's log says its runner did: slots,
	// context per slot, the whole KV cache and its type, flash attention,
	// the default context it chose, its warnings; nil when it said nothing.
	RunnerLog *backend.RunnerArgs `json:"runner_log,omitempty"`
	// IdleMemBytes is the engine's process tree after load and warm-up,
	// before the first scenario; PSSizeBytes what /api/ps says of the model.
	IdleMemBytes uint64 `json:"idle_mem_bytes"`
	PSSizeBytes  int64  `json:"ps_size_bytes"`
}

// Result is one scenario's line in results.jsonl and results.csv.
type Result struct {
	Scenario
	Name    string    `json:"scenario"`
	Attempt string    `json:"attempt"`
	Status  string    `json:"status"`
	Note    string    `json:"note,omitempty"`
	Started time.Time `json:"started"`
	// WindowS is the measurement window (the duration, after warm-up).
	WindowS float64 `json:"window_s"`
	Figures
	SettingFacts
	PeakMemBytes uint64 `json:"peak_mem_bytes"`
	MeanMemBytes uint64 `json:"mean_mem_bytes"`
	MemSamples   int    `json:"mem_samples"`
	PSPeakBytes  int64  `json:"ps_peak_bytes"`
}

// Figures summarise a scenario's requests (see Compute).
type Figures struct {
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	ErrorTypes string  `json:"error_types,omitempty"` // "type:count;…"
	TTFTP50Ms  float64 `json:"ttft_p50_ms"`
	TTFTP90Ms  float64 `json:"ttft_p90_ms"`
	TTFTP99Ms  float64 `json:"ttft_p99_ms"`
	TTFTMeanMs float64 `json:"ttft_mean_ms"`
	E2EP50Ms   float64 `json:"latency_p50_ms"`
	E2EP90Ms   float64 `json:"latency_p90_ms"`
	E2EP99Ms   float64 `json:"latency_p99_ms"`
	// TokPerSecMean is the mean per-request decode speed (1/TPOT).
	TokPerSecMean float64 `json:"tok_per_s_mean"`
	TokPerSecP50  float64 `json:"tok_per_s_p50"`
	// ServerTokPerSecMean is Ollama's own decode speed, mean over requests.
	ServerTokPerSecMean float64 `json:"server_tok_per_s_mean"`
	QueueWaitP50Ms      float64 `json:"queue_wait_p50_ms"`
	// OutputTokPerSec is the system's output throughput; ReqPerSec its
	// request throughput.
	OutputTokPerSec float64 `json:"output_tok_per_s"`
	ReqPerSec       float64 `json:"req_per_s"`
	OutputTokens    int     `json:"output_tokens"`
	TokensEstimated bool    `json:"tokens_estimated,omitempty"`
}

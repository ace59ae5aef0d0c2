// Package matrix runs the parallelism matrix: for each engine setting
// (parallel slots × context) it restarts the engine, then drives every
// concurrency × prompt size through the proxy, sampling memory and watching
// for OOM, and appends each scenario's results to disk as soon as it ends.
package matrix

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/loadreport"
)

// Setting is one engine configuration: the engine restarts between settings.
type Setting struct {
	Parallel int `json:"parallel"`
	NumCtx   int `json:"num_ctx"`
}

func (s Setting) String() string { return fmt.Sprintf("p%d-ctx%d", s.Parallel, s.NumCtx) }

// Scenario is one cell of the matrix: a closed loop of Concurrency users,
// or, when Rate > 0, an open loop of Rate requests per second (Poisson).
type Scenario struct {
	Setting
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate_rps,omitempty"`
	PromptSize  string  `json:"prompt_size"`
	// Search, when set, makes the scenario a capacity search of its
	// setting and prompt size (SearchConcurrency or SearchRate) instead of
	// one load.
	Search string `json:"search,omitempty"`
}

// Name is the scenario's name, sent to the proxy with each request and the
// key of --resume.
func (s Scenario) Name() string {
	return fmt.Sprintf("%s-%s-%s", s.Setting, s.Load(), s.PromptSize)
}

// Load names the scenario's load: "c4" (closed loop of 4 users) or
// "r2.5" (2.5 requests per second).
func (s Scenario) Load() string {
	if s.Search != "" {
		return "capacity"
	}
	if s.Rate > 0 {
		return "r" + strconv.FormatFloat(s.Rate, 'g', -1, 64)
	}
	return "c" + strconv.Itoa(s.Concurrency)
}

// Scenario outcomes.
const (
	StatusOK      = "ok"      // the scenario ran
	StatusOOM     = "oom"     // the engine ran out of memory (at load or during the load)
	StatusCrash   = "crash"   // the engine exited or was killed for another reason
	StatusFailed  = "failed"  // the engine could not be started for this setting
	StatusSkipped = "skipped" // an earlier scenario of the setting failed the engine
)

// Request is the raw record of one measured request (a line of
// requests.jsonl): tokentrace's one per-request record, which
// loadreport.Collector aggregates.
type Request = loadreport.Record

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
	PSVRAMBytes  int64  `json:"ps_size_vram_bytes,omitempty"`
}

// Result is one scenario's line in results.jsonl and results.csv.
type Result struct {
	Scenario
	Name    string    `json:"scenario"`
	Attempt string    `json:"attempt"`
	Status  string    `json:"status"`
	Note    string    `json:"note,omitempty"`
	Started time.Time `json:"started"`
	// WindowS is the measurement window's length; Window the window
	// itself (absent in runs written before it was stored: their window is
	// DrainedWindow).
	WindowS float64 `json:"window_s"`
	Window
	Figures
	SettingFacts
	// PeakMemBytes and MeanMemBytes are the engine's process tree over
	// the measured window; WarmupPeakMemBytes over the warm-up before it.
	PeakMemBytes       uint64 `json:"peak_mem_bytes"`
	MeanMemBytes       uint64 `json:"mean_mem_bytes"`
	WarmupPeakMemBytes uint64 `json:"warmup_peak_mem_bytes,omitempty"`
	MemSamples         int    `json:"mem_samples"`
	PSPeakBytes        int64  `json:"ps_peak_bytes"`
	// PSPeakVRAMBytes is /api/ps's size_vram (the part on the GPU);
	// PeakVRAMBytes the process tree's GPU memory from nvidia-smi, over the
	// window; both 0 without a GPU.
	PSPeakVRAMBytes int64  `json:"ps_peak_vram_bytes,omitempty"`
	PeakVRAMBytes   uint64 `json:"peak_vram_bytes,omitempty"`
}

// Figures summarise a scenario's requests (see Compute).
type Figures struct {
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	ErrorTypes string  `json:"error_types,omitempty"` // "type:count;…"
	TTFTP50Ms  float64 `json:"ttft_p50_ms"`
	TTFTP90Ms  float64 `json:"ttft_p90_ms"`
	TTFTP95Ms  float64 `json:"ttft_p95_ms"`
	TTFTP99Ms  float64 `json:"ttft_p99_ms"`
	TTFTMeanMs float64 `json:"ttft_mean_ms"`
	E2EP50Ms   float64 `json:"latency_p50_ms"`
	E2EP90Ms   float64 `json:"latency_p90_ms"`
	E2EP95Ms   float64 `json:"latency_p95_ms"`
	E2EP99Ms   float64 `json:"latency_p99_ms"`
	TPOTP50Ms  float64 `json:"tpot_p50_ms"`
	TPOTP95Ms  float64 `json:"tpot_p95_ms"`
	TPOTP99Ms  float64 `json:"tpot_p99_ms"`
	ITLP50Ms   float64 `json:"itl_p50_ms"`
	ITLP95Ms   float64 `json:"itl_p95_ms"`
	ITLP99Ms   float64 `json:"itl_p99_ms"`
	// TokPerSecMean is the mean per-request decode speed (1/TPOT).
	TokPerSecMean float64 `json:"tok_per_s_mean"`
	TokPerSecP50  float64 `json:"tok_per_s_p50"`
	// ServerTokPerSecMean is Ollama's own decode speed, mean over requests.
	ServerTokPerSecMean float64 `json:"server_tok_per_s_mean"`
	QueueWaitP50Ms      float64 `json:"queue_wait_p50_ms"`
	// OutputTokPerSec is the system's output throughput; ReqPerSec its
	// request throughput; GoodputRPS the requests per second that met
	// every limit of the SLO (0 without one).
	OutputTokPerSec float64 `json:"output_tok_per_s"`
	ReqPerSec       float64 `json:"req_per_s"`
	GoodputRPS      float64 `json:"goodput_rps,omitempty"`
	// GoodRatio is the share of successful measured requests that met
	// every limit.
	GoodRatio    float64 `json:"good_ratio,omitempty"`
	OutputTokens int     `json:"output_tokens"`
	// MeanOutputTokens is the mean answer length of successful requests:
	// the same work at every setting shows as the same mean.
	MeanOutputTokens float64 `json:"mean_output_tokens"`
	TokensEstimated  bool    `json:"tokens_estimated,omitempty"`
	// Late counts open-loop arrivals a concurrency cap sent after their
	// scheduled time; LateP95Ms how late. Latencies count from the
	// scheduled time.
	Late      int     `json:"late_requests,omitempty"`
	LateP95Ms float64 `json:"late_p95_ms,omitempty"`
}

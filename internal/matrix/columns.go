package matrix

import (
	"strconv"
	"time"
)

// column is one column of a CSV file: its header and how a row's value is
// written. A table of them makes the header and every row from one list, so
// they cannot drift apart.
type column[T any] struct {
	name  string
	value func(T) string
}

// columns is a CSV layout.
type columns[T any] []column[T]

func (cs columns[T]) header() []string {
	h := make([]string, len(cs))
	for i, c := range cs {
		h[i] = c.name
	}
	return h
}

func (cs columns[T]) row(v T) []string {
	r := make([]string, len(cs))
	for i, c := range cs {
		r[i] = c.value(v)
	}
	return r
}

func fmtFloat(x float64) string  { return strconv.FormatFloat(x, 'f', 3, 64) }
func fmtInt(n int) string        { return strconv.Itoa(n) }
func fmtUint(n uint64) string    { return strconv.FormatUint(n, 10) }
func fmtInt64(n int64) string    { return strconv.FormatInt(n, 10) }
func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// resultColumns is results.csv.
var resultColumns = columns[Result]{
	{"scenario", func(r Result) string { return r.Name }},
	{"parallel", func(r Result) string { return fmtInt(r.Parallel) }},
	{"num_ctx", func(r Result) string { return fmtInt(r.NumCtx) }},
	{"concurrency", func(r Result) string { return fmtInt(r.Concurrency) }},
	{"prompt_size", func(r Result) string { return r.PromptSize }},
	{"status", func(r Result) string { return r.Status }},
	{"note", func(r Result) string { return r.Note }},
	{"requests", func(r Result) string { return fmtInt(r.Requests) }},
	{"errors", func(r Result) string { return fmtInt(r.Errors) }},
	{"error_types", func(r Result) string { return r.ErrorTypes }},
	{"ttft_p50_ms", func(r Result) string { return fmtFloat(r.TTFTP50Ms) }},
	{"ttft_p90_ms", func(r Result) string { return fmtFloat(r.TTFTP90Ms) }},
	{"ttft_p95_ms", func(r Result) string { return fmtFloat(r.TTFTP95Ms) }},
	{"ttft_p99_ms", func(r Result) string { return fmtFloat(r.TTFTP99Ms) }},
	{"ttft_mean_ms", func(r Result) string { return fmtFloat(r.TTFTMeanMs) }},
	{"latency_p50_ms", func(r Result) string { return fmtFloat(r.E2EP50Ms) }},
	{"latency_p90_ms", func(r Result) string { return fmtFloat(r.E2EP90Ms) }},
	{"latency_p95_ms", func(r Result) string { return fmtFloat(r.E2EP95Ms) }},
	{"latency_p99_ms", func(r Result) string { return fmtFloat(r.E2EP99Ms) }},
	{"tpot_p50_ms", func(r Result) string { return fmtFloat(r.TPOTP50Ms) }},
	{"tpot_p95_ms", func(r Result) string { return fmtFloat(r.TPOTP95Ms) }},
	{"tpot_p99_ms", func(r Result) string { return fmtFloat(r.TPOTP99Ms) }},
	{"itl_p50_ms", func(r Result) string { return fmtFloat(r.ITLP50Ms) }},
	{"itl_p95_ms", func(r Result) string { return fmtFloat(r.ITLP95Ms) }},
	{"itl_p99_ms", func(r Result) string { return fmtFloat(r.ITLP99Ms) }},
	{"tok_per_s_mean", func(r Result) string { return fmtFloat(r.TokPerSecMean) }},
	{"tok_per_s_p50", func(r Result) string { return fmtFloat(r.TokPerSecP50) }},
	{"server_tok_per_s_mean", func(r Result) string { return fmtFloat(r.ServerTokPerSecMean) }},
	{"queue_wait_p50_ms", func(r Result) string { return fmtFloat(r.QueueWaitP50Ms) }},
	{"output_tok_per_s", func(r Result) string { return fmtFloat(r.OutputTokPerSec) }},
	{"req_per_s", func(r Result) string { return fmtFloat(r.ReqPerSec) }},
	{"goodput_rps", func(r Result) string { return fmtFloat(r.GoodputRPS) }},
	{"good_ratio", func(r Result) string { return fmtFloat(r.GoodRatio) }},
	{"output_tokens", func(r Result) string { return fmtInt(r.OutputTokens) }},
	{"mean_output_tokens", func(r Result) string { return fmtFloat(r.MeanOutputTokens) }},
	{"late_requests", func(r Result) string { return fmtInt(r.Late) }},
	{"window_s", func(r Result) string { return fmtFloat(r.WindowS) }},
	{"peak_mem_bytes", func(r Result) string { return fmtUint(r.PeakMemBytes) }},
	{"mean_mem_bytes", func(r Result) string { return fmtUint(r.MeanMemBytes) }},
	{"warmup_peak_mem_bytes", func(r Result) string { return fmtUint(r.WarmupPeakMemBytes) }},
	{"ps_peak_bytes", func(r Result) string { return fmtInt64(r.PSPeakBytes) }},
	{"ps_peak_vram_bytes", func(r Result) string { return fmtInt64(r.PSPeakVRAMBytes) }},
	{"peak_vram_bytes", func(r Result) string { return fmtUint(r.PeakVRAMBytes) }},
	{"idle_mem_bytes", func(r Result) string { return fmtUint(r.IdleMemBytes) }},
	{"time_to_ready_s", func(r Result) string { return fmtFloat(r.TimeToReadyS) }},
	{"cold_load_s", func(r Result) string { return fmtFloat(r.ColdLoadS) }},
	{"runner_parallel", func(r Result) string { return fmtInt(r.RunnerParallel) }},
	{"runner_ctx", func(r Result) string { return fmtInt(r.RunnerCtx) }},
	{"verified", func(r Result) string { return r.Verified }},
	{"engine_said", func(r Result) string {
		if r.RunnerLog == nil {
			return ""
		}
		return r.RunnerLog.Summary()
	}},
	{"started", func(r Result) string { return fmtTime(r.Started) }},
	{"attempt", func(r Result) string { return r.Attempt }},
}

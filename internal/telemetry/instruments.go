package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"
)

// Bucket boundaries, in seconds or tokens. Each is the GenAI semantic
// convention's advice extended upward: the study this project starts from
// saw 27 s TTFT at one request at a time, so TTFT reaches 120 s and request
// duration 300 s.
var (
	TTFTBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
		1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180}
	TPOTBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
		0.4, 0.5, 0.75, 1, 2.5, 5, 10}
	DurationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
		20.48, 40.96, 81.92, 120, 180, 240, 300, 450, 600}
	TokenBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
		4194304, 16777216, 67108864}
	// ServerPhaseBuckets hold Ollama's queue wait, load and prompt-eval durations.
	ServerPhaseBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
		5, 10, 20, 30, 60, 120, 300}
)

// Project-specific instrument names (not gen_ai.*).
const (
	// MetricTPOT has no GenAI client convention (only the model server's
	// gen_ai.server.time_per_output_token), so it is tokentrace's own.
	MetricTPOT               = "tokentrace.client.time_per_output_token"
	MetricActiveRequests     = "tokentrace.server.active_requests"
	MetricQueueWait          = "tokentrace.ollama.queue_wait"
	MetricLoadDuration       = "tokentrace.ollama.load_duration"
	MetricPromptEvalDuration = "tokentrace.ollama.prompt_eval_duration"
	MetricThinkingTime       = "tokentrace.client.thinking_time"
	MetricSpansDropped       = "tokentrace.telemetry.spans.dropped"
	MetricSpansExported      = "tokentrace.telemetry.spans.exported"
	MetricUpstreamUp         = "tokentrace.upstream.up"
	MetricUpstreamInFlight   = "tokentrace.upstream.active_requests"
)

// ScopeName is the instrumentation scope of tokentrace's tracers and meters.
const ScopeName = "github.com/tokentrace/tokentrace"

// Instruments are the metrics of docs/METRICS.md, made once per meter provider.
type Instruments struct {
	TTFT           metric.Float64Histogram // gen_ai.client.operation.time_to_first_chunk
	TPOT           metric.Float64Histogram // tokentrace.client.time_per_output_token
	Duration       metric.Float64Histogram // gen_ai.client.operation.duration
	ChunkGap       metric.Float64Histogram // gen_ai.client.operation.time_per_output_chunk (ITL)
	TokenUsage     metric.Int64Histogram   // gen_ai.client.token.usage
	Active         metric.Int64UpDownCounter
	QueueWait      metric.Float64Histogram
	LoadDuration   metric.Float64Histogram
	PromptEvalTime metric.Float64Histogram
	ThinkingTime   metric.Float64Histogram // first content − first token, after reasoning
}

// NewInstruments makes the instruments on mp's tokentrace meter.
func NewInstruments(mp metric.MeterProvider) (*Instruments, error) {
	m := mp.Meter(ScopeName)
	var in Instruments
	// The proxy sees the model server from outside, as its client, so its
	// figures are the GenAI client metrics (docs/METRICS.md says why).
	ttft, err := genaiconv.NewClientOperationTimeToFirstChunk(m, metric.WithExplicitBucketBoundaries(TTFTBuckets...))
	if err != nil {
		return nil, fmt.Errorf("make TTFT histogram: %w", err)
	}
	tpot, err := m.Float64Histogram(MetricTPOT, metric.WithUnit("s"),
		metric.WithDescription("Time per output token after the first, of successful streamed responses, as the client sees it: (t_last_token - t_first_token) / (output tokens - 1)."),
		metric.WithExplicitBucketBoundaries(TPOTBuckets...))
	if err != nil {
		return nil, fmt.Errorf("make TPOT histogram: %w", err)
	}
	dur, err := genaiconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(DurationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("make request duration histogram: %w", err)
	}
	gap, err := genaiconv.NewClientOperationTimePerOutputChunk(m, metric.WithExplicitBucketBoundaries(TPOTBuckets...))
	if err != nil {
		return nil, fmt.Errorf("make inter-chunk latency histogram: %w", err)
	}
	usage, err := genaiconv.NewClientTokenUsage(m, metric.WithExplicitBucketBoundaries(TokenBuckets...))
	if err != nil {
		return nil, fmt.Errorf("make token usage histogram: %w", err)
	}
	in.TTFT, in.TPOT, in.Duration, in.ChunkGap, in.TokenUsage = ttft.Inst(), tpot, dur.Inst(), gap.Inst(), usage.Inst()

	if in.Active, err = m.Int64UpDownCounter(MetricActiveRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Inference requests in flight through the proxy.")); err != nil {
		return nil, fmt.Errorf("make in-flight counter: %w", err)
	}
	if in.ThinkingTime, err = m.Float64Histogram(MetricThinkingTime, metric.WithUnit("s"),
		metric.WithDescription("Thinking time: first visible output minus first output, for requests that reasoned first."),
		metric.WithExplicitBucketBoundaries(TTFTBuckets...)); err != nil {
		return nil, fmt.Errorf("make thinking time histogram: %w", err)
	}
	phases := []struct {
		dst  *metric.Float64Histogram
		name string
		desc string
	}{
		{&in.QueueWait, MetricQueueWait, "Ollama queue wait: total - load - prompt eval - eval, from the final chunk."},
		{&in.LoadDuration, MetricLoadDuration, "Ollama load_duration from the final chunk."},
		{&in.PromptEvalTime, MetricPromptEvalDuration, "Ollama prompt_eval_duration from the final chunk (uncached prompt tokens only)."},
	}
	for _, p := range phases {
		h, err := m.Float64Histogram(p.name, metric.WithUnit("s"), metric.WithDescription(p.desc),
			metric.WithExplicitBucketBoundaries(ServerPhaseBuckets...))
		if err != nil {
			return nil, fmt.Errorf("make %s histogram: %w", p.name, err)
		}
		*p.dst = h
	}
	return &in, nil
}

// RegisterSpanCounters exposes a BatchProcessor's dropped and exported span
// counts as counters on mp. The returned function unregisters them.
func RegisterSpanCounters(mp metric.MeterProvider, p *BatchProcessor) (func() error, error) {
	m := mp.Meter(ScopeName)
	dropped, err := m.Int64ObservableCounter(MetricSpansDropped, metric.WithUnit("{span}"),
		metric.WithDescription("Spans dropped because the collector was down or slow."))
	if err != nil {
		return nil, fmt.Errorf("make dropped-spans counter: %w", err)
	}
	exported, err := m.Int64ObservableCounter(MetricSpansExported, metric.WithUnit("{span}"),
		metric.WithDescription("Spans the collector accepted."))
	if err != nil {
		return nil, fmt.Errorf("make exported-spans counter: %w", err)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(dropped, int64(p.Dropped()))
		o.ObserveInt64(exported, int64(p.Exported()))
		return nil
	}, dropped, exported)
	if err != nil {
		return nil, fmt.Errorf("register span counters: %w", err)
	}
	return reg.Unregister, nil
}

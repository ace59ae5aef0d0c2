// Package telemetry sets up OpenTelemetry for tokentrace's programs: a
// tracer provider exporting over OTLP/gRPC that never delays a request, a
// meter provider read by Prometheus (OpenMetrics, with exemplars), the W3C
// propagator, and the instruments of docs/METRICS.md with their buckets.
// Nothing here reads the environment or sets OTel globals: programs read
// OTEL_* in main (TraceConfigFromEnv) and pass providers on explicitly.
package telemetry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"google.golang.org/grpc"
)

// TraceConfig configures the tracer provider. TraceConfigFromEnv fills it
// from the standard OTEL_* variables.
type TraceConfig struct {
	// Disabled turns export off (OTEL_SDK_DISABLED=true or
	// OTEL_TRACES_EXPORTER=none): spans are still made, never sent.
	Disabled bool
	// FromEnv lets the OTLP exporter read its own settings from the
	// OTEL_EXPORTER_OTLP_* variables (endpoint, headers, TLS, timeout,
	// compression), as the SDK defines them; Endpoint, Insecure and Headers
	// are then only what TraceConfigFromEnv saw. TraceConfigFromEnv sets it.
	FromEnv bool
	// Protocol is the OTLP transport: ProtocolGRPC (default, port 4317) or
	// ProtocolHTTP (http/protobuf, port 4318).
	Protocol string
	// Endpoint is the collector's OTLP address, "host:port" or a URL
	// ("http://host:4317" implies Insecure). Empty: the SDK's default.
	Endpoint string
	// Insecure sends without TLS.
	Insecure bool
	// Headers are sent with every export (for example an API key).
	Headers map[string]string
	// ServiceName is service.name; required.
	ServiceName string
	// ResourceAttributes are added to the resource (OTEL_RESOURCE_ATTRIBUTES).
	ResourceAttributes map[string]string
	// Sampler decides which traces are recorded; nil means the
	// specification's default, parentbased_always_on.
	Sampler sdktrace.Sampler
	// Batch sizes the non-blocking batch processor.
	Batch BatchConfig
	// MaxEvents bounds the events one span keeps (per-token events);
	// default 1100, enough for a 1,000-token answer.
	MaxEvents int
	// Exporter, when set, is handed the batches instead of an OTLP
	// exporter (Protocol, Endpoint, Insecure, Headers and FromEnv are then
	// unused): DiscardSpans measures the proxy's own cost without a
	// collector.
	Exporter sdktrace.SpanExporter
}

// DiscardSpans is a span exporter that drops every batch it is handed.
type DiscardSpans struct{}

func (DiscardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (DiscardSpans) Shutdown(context.Context) error                             { return nil }

// DefaultMaxEvents is the default of TraceConfig.MaxEvents.
const DefaultMaxEvents = 1100

// OTLP transports (OTEL_EXPORTER_OTLP_PROTOCOL values).
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Validate names the first bad field.
func (c TraceConfig) Validate() error {
	if c.ServiceName == "" {
		return fmt.Errorf("trace config: ServiceName is empty")
	}
	if c.Protocol != "" && c.Protocol != ProtocolGRPC && c.Protocol != ProtocolHTTP {
		return fmt.Errorf("trace config: Protocol %q: want %s or %s", c.Protocol, ProtocolGRPC, ProtocolHTTP)
	}
	if c.MaxEvents < 0 {
		return fmt.Errorf("trace config: MaxEvents %d is negative", c.MaxEvents)
	}
	return nil
}

// Tracing is a tracer provider and the processor that feeds its exporter.
type Tracing struct {
	Provider  *sdktrace.TracerProvider
	Processor *BatchProcessor // nil when export is disabled
	// Resource describes the process (service.name and the rest); give it
	// to NewMetrics so metrics and traces name the same service.
	Resource *resource.Resource
}

// Shutdown flushes the spans still queued and stops export, bounded by ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.Provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down tracer provider: %w", err)
	}
	return nil
}

// NewTracing builds a tracer provider exporting over OTLP/gRPC. It does not
// connect: a collector that is down costs dropped spans, never a delay.
func NewTracing(ctx context.Context, cfg TraceConfig) (*Tracing, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res, err := newResource(cfg)
	if err != nil {
		return nil, err
	}
	sampler := cfg.Sampler
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	maxEvents := cfg.MaxEvents
	if maxEvents == 0 {
		maxEvents = DefaultMaxEvents
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit:   -1,
			AttributeCountLimit:         128,
			EventCountLimit:             maxEvents,
			LinkCountLimit:              128,
			AttributePerEventCountLimit: 128,
			AttributePerLinkCountLimit:  128,
		}),
	}
	t := &Tracing{Resource: res}
	if !cfg.Disabled {
		exp, err := newExporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		t.Processor = NewBatchProcessor(exp, cfg.Batch)
		opts = append(opts, sdktrace.WithSpanProcessor(t.Processor))
	}
	t.Provider = sdktrace.NewTracerProvider(opts...)
	return t, nil
}

// newExporter makes the OTLP span exporter of cfg.Protocol: the SDK's
// client for the protocol under tokentrace's own conversion of spans
// (spanExporter); over gRPC, each batch is written straight from the SDK's
// spans into the request's bytes, which traceCodec sends. The batch
// processor bounds each export; retrying inside the exporter would only hold
// the queue longer while the collector is away, so retries are off.
func newExporter(ctx context.Context, cfg TraceConfig) (sdktrace.SpanExporter, error) {
	if cfg.Exporter != nil {
		return cfg.Exporter, nil
	}
	if cfg.Protocol == ProtocolHTTP {
		opts := append([]otlptracehttp.Option{otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})},
			endpointOptions(cfg, otlptracehttp.WithEndpointURL, otlptracehttp.WithEndpoint, otlptracehttp.WithInsecure, otlptracehttp.WithHeaders)...)
		exp, err := newSpanExporter(ctx, otlptracehttp.NewClient(opts...))
		if err != nil {
			return nil, fmt.Errorf("create OTLP/HTTP span exporter: %w", err)
		}
		return exp, nil
	}
	codec, err := newTraceCodec()
	if err != nil {
		return nil, fmt.Errorf("create OTLP/gRPC span exporter: %w", err)
	}
	opts := append([]otlptracegrpc.Option{otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
		otlptracegrpc.WithDialOption(grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec)))},
		endpointOptions(cfg, otlptracegrpc.WithEndpointURL, otlptracegrpc.WithEndpoint, otlptracegrpc.WithInsecure, otlptracegrpc.WithHeaders)...)
	exp, err := newSpanExporter(ctx, otlptracegrpc.NewClient(opts...))
	if err != nil {
		return nil, fmt.Errorf("create OTLP/gRPC span exporter: %w", err)
	}
	exp.direct, exp.maxRequest = codec, maxRequestSize
	return exp, nil
}

// endpointOptions are the options cfg sets for either protocol's exporter
// (none when the exporter reads the OTEL_EXPORTER_OTLP_* environment).
func endpointOptions[O any](cfg TraceConfig, url, endpoint func(string) O, insecure func() O, headers func(map[string]string) O) []O {
	if cfg.FromEnv {
		return nil
	}
	var opts []O
	switch {
	case strings.Contains(cfg.Endpoint, "://"):
		opts = append(opts, url(cfg.Endpoint))
	case cfg.Endpoint != "":
		opts = append(opts, endpoint(cfg.Endpoint))
	}
	if cfg.Insecure {
		opts = append(opts, insecure())
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, headers(cfg.Headers))
	}
	return opts
}

func newResource(cfg TraceConfig) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}
	for k, v := range cfg.ResourceAttributes {
		if k != string(semconv.ServiceNameKey) {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("build trace resource: %w", err)
	}
	return res, nil
}

// Propagator is the W3C trace-context and baggage propagator.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// millis reads a millisecond count, as the OTEL_BSP_* variables use.
func millis(s string) (time.Duration, error) {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count of milliseconds", s)
	}
	return time.Duration(n) * time.Millisecond, nil
}

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// distinctModels is how many different model names the cardinality test sends.
const distinctModels = 10_000

// TestSpanMetricsSeriesAreBounded sends server spans with 10,000 distinct gen_ai.request.model values
// through the real collector (otel-collector/config.yaml) into Prometheus, and counts the span-metrics
// series that arrive: at most the connector's aggregation_cardinality_limit, plus the one overflow series
// that counts everything beyond it. The calls of all series add up to the spans sent, so none was lost.
// The servicegraph connector, which sees the same spans, makes one series.
func TestSpanMetricsSeriesAreBounded(t *testing.T) {
	limit := spanMetricsLimit(t)
	if limit <= 0 || limit >= distinctModels {
		t.Fatalf("aggregation_cardinality_limit %d: want a limit below %d", limit, distinctModels)
	}
	telemetry := hostPort(freePort(t))
	promURL := startPrometheus(t, telemetry)
	// Nothing listens at the proxy and trace-store addresses: only span_metrics → Prometheus matters here.
	otlp, _ := startCollector(t, hostPort(freePort(t)), hostPort(freePort(t)), promURL, telemetry)

	const service = "tokentrace-cardinality-test"
	sendSpans(t, otlp, service, distinctModels)

	// This Prometheus holds only this test's spans. The overflow series keeps none of the spans'
	// attributes, service_name included (only otel_metric_overflow), so no selector may ask for them.
	const sel = ""
	eventually(t, 120*time.Second, 3*time.Second, "every span counted in span metrics", func() error {
		return wantValue(promURL, "sum(traces_span_metrics_calls_total"+sel+")", distinctModels)
	})
	series, err := promScalar(promURL, "count(traces_span_metrics_calls_total"+sel+")")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d distinct model names made %.0f calls series (limit %d)", distinctModels, series, limit)
	if series > float64(limit+1) {
		t.Errorf("%.0f calls series, want at most the limit %d plus one overflow series", series, limit)
	}
	const overflow = `traces_span_metrics_calls_total{otel_metric_overflow="true"}`
	if n, err := promScalar(promURL, "count("+overflow+")"); err != nil || n != 1 {
		t.Errorf("overflow series: count %v (%v), want 1", n, err)
	}
	buckets, err := promScalar(promURL, "count(traces_span_metrics_duration_seconds_bucket"+sel+")")
	if err != nil {
		t.Fatal(err)
	}
	// One series per bucket boundary plus +Inf, for each dimension combination kept.
	if maxBuckets := float64((limit + 1) * (spanMetricsBuckets(t) + 1)); buckets > maxBuckets {
		t.Errorf("%.0f duration bucket series, want at most %.0f", buckets, maxBuckets)
	}

	// servicegraph takes no span attribute as a dimension: the spans, all without a caller, make one edge
	// from "user" (not one per model), and so one request-count series.
	edge := graphEdge{"user", service, "virtual_node"}
	eventually(t, 90*time.Second, 3*time.Second, "the service graph edge "+edge.String(), func() error {
		return checkServiceGraph(promURL, []graphEdge{edge})
	})
	if n, err := promScalar(promURL, "count(traces_service_graph_request_total)"); err != nil || n != 1 {
		edges, _ := serviceGraphEdges(promURL)
		t.Errorf("service graph request series: count %v (%v), want 1; edges %v", n, err, edges)
	}
}

// sendSpans exports n server spans, each with its own model name, to the collector at otlp and waits
// until the exporter has delivered all of them.
func sendSpans(t *testing.T, otlp, service string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlp), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
		sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(n), sdktrace.WithMaxExportBatchSize(1000), sdktrace.WithBlocking()),
	)
	tracer := tp.Tracer("cardinality-test")
	for i := range n {
		model := "model-" + strconv.Itoa(i) + ":7b"
		_, span := tracer.Start(ctx, "chat "+model, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.request.model", model)))
		span.End()
	}
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("export %d spans: %v", n, err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("shut the tracer provider down: %v", err)
	}
}

// spanMetricsLimit and spanMetricsBuckets read the span_metrics connector's settings from the config.
func spanMetricsLimit(t *testing.T) int {
	t.Helper()
	return spanMetricsConfig(t).Limit
}

func spanMetricsBuckets(t *testing.T) int {
	t.Helper()
	return len(spanMetricsConfig(t).Histogram.Explicit.Buckets)
}

type spanMetricsSettings struct {
	Limit     int `yaml:"aggregation_cardinality_limit"`
	Histogram struct {
		Explicit struct {
			Buckets []string `yaml:"buckets"`
		} `yaml:"explicit"`
	} `yaml:"histogram"`
}

func spanMetricsConfig(t *testing.T) spanMetricsSettings {
	t.Helper()
	var cfg struct {
		Connectors struct {
			SpanMetrics spanMetricsSettings `yaml:"span_metrics"`
		} `yaml:"connectors"`
	}
	readYAML(t, "otel-collector/config.yaml", &cfg)
	return cfg.Connectors.SpanMetrics
}

// promScalar runs a query that returns one sample and gives its value.
func promScalar(promURL, expr string) (float64, error) {
	res, err := promQuery(promURL, expr)
	if err != nil {
		return 0, err
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("%s: %d samples, want 1", expr, len(res))
	}
	s, _ := res[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

func wantValue(promURL, expr string, want float64) error {
	v, err := promScalar(promURL, expr)
	if err != nil {
		return err
	}
	if v != want {
		return fmt.Errorf("%s = %v, want %v", expr, v, want)
	}
	return nil
}

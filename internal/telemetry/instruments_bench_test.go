package telemetry

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
)

// BenchmarkChunkGapRecords is what one answer's chunk gaps cost through the
// SDK: 31 Record calls on the inter-chunk histogram with the label set the
// gateway uses (a ready-made attribute set), as the proxy's Prometheus
// meter provider records them. Run:
// go test -run '^$' -bench ChunkGapRecords ./internal/telemetry
func BenchmarkChunkGapRecords(b *testing.B) {
	_, in := prometheusInstruments(b)
	set := attribute.NewSet(semconv.GenAIOperationNameKey.String("chat"), semconv.GenAIProviderNameKey.String("openai"),
		semconv.GenAIRequestModelKey.String("bench"), semconv.ServerAddressKey.String("127.0.0.1"), semconv.ServerPortKey.Int(8080))
	opts := []metric.RecordOption{metric.WithAttributeSet(set)}
	gaps := make([]time.Duration, 31)
	for i := range gaps {
		gaps[i] = time.Duration(18+i%5) * time.Millisecond
	}
	ctx := context.Background()
	for b.Loop() {
		for _, g := range gaps {
			in.ChunkGap.Record(ctx, g.Seconds(), opts...)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/answer")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(gaps)), "ns/record")
	b.ReportMetric(0, "ns/op")
}

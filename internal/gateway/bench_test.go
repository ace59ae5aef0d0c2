package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// chunkReader returns one chunk per Read, as a streaming upstream does.
type chunkReader struct {
	chunks [][]byte
	i      int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.i == len(r.chunks) {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[r.i])
	r.i++
	return n, nil
}

// BenchmarkTapPerChunk is the gateway's own work per streamed chunk, no
// network: the body tap, the stream parser, the token event and the
// metrics, with a recording span. Run: go test -bench TapPerChunk -benchmem ./internal/gateway
func BenchmarkTapPerChunk(b *testing.B) {
	const tokens = 256
	var chunks [][]byte
	for i := range tokens {
		chunks = append(chunks, fmt.Appendf(nil, `{"model":"bench","created_at":"2026-01-01T00:00:00.000000Z","message":{"role":"assistant","content":" tok%d"},"done":false}`+"\n", i))
	}
	chunks = append(chunks, []byte(`{"model":"bench","message":{"role":"assistant","content":""},"done":true,"eval_count":256,"prompt_eval_count":8,"total_duration":10,"eval_duration":5}`+"\n"))
	for _, tc := range []struct {
		name string
		ev   TokenEvents
	}{{"events=all", TokenEvents{}}, {"events=packed", TokenEvents{Packed: true}}, {"events=off", TokenEvents{Mode: TokenEventsOff}}} {
		b.Run(tc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()),
				sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{EventCountLimit: 2000, AttributeCountLimit: 128,
					AttributePerEventCountLimit: 8, AttributeValueLengthLimit: -1}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			g, err := New(Config{Upstreams: []string{"http://127.0.0.1:1"}, TracerProvider: tp, MeterProvider: mp, TokenEvents: tc.ev})
			if err != nil {
				b.Fatal(err)
			}
			ep, _ := stream.EndpointOf("/api/chat")
			buf := make([]byte, 32<<10)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ex := &exchange{g: g, start: time.Now(), ep: ep, provider: "ollama", model: "bench"}
				ctx, span := g.tracer.Start(context.Background(), "chat bench")
				ex.span, ex.recording = span, true
				ex.meter = ex.newMeter()
				resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {ndjson}},
					Body: io.NopCloser(&chunkReader{chunks: chunks}), Request: (&http.Request{}).WithContext(context.WithValue(ctx, exchangeKey{}, ex))}
				if err := g.tapResponse(resp); err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				ex.finish(ctx, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(chunks)), "ns/chunk")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkIdleBodyRead is what the stream idle timeout costs per read of
// a response body (one chunk per read). Run: go test -bench IdleBodyRead ./internal/gateway
func BenchmarkIdleBodyRead(b *testing.B) {
	chunk := []byte(`data: {"choices":[{"delta":{"content":" tok"}}]}` + "\n\n")
	chunks := make([][]byte, 1024)
	for i := range chunks {
		chunks[i] = chunk
	}
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		body := &idleBody{rc: io.NopCloser(&chunkReader{chunks: chunks}), limit: time.Minute, cancel: func(error) {}}
		for {
			if _, err := body.Read(buf); err != nil {
				break
			}
		}
		_ = body.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(chunks)), "ns/read")
	b.ReportMetric(0, "ns/op")
}

package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
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
				ex.initMeter()
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
		rc := io.NopCloser(&chunkReader{chunks: chunks})
		body := &idleBody{rc: rc, r: rc, limit: time.Minute, cancel: func(error) {}}
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

// BenchmarkTapInterleaved is the gateway's work per chunk as a proxy
// serving many streams does it: streams answers in flight at once, one
// chunk of each in turn, and between two chunks a system call and evict
// bytes of other memory touched, as the proxy's reads and writes, the
// connections' buffers, the kernel and its neighbours on the same cores
// do. The time of that touching is taken out. On this project's 2-core
// machine (a kernel with page-table isolation and no PCID: every system
// call empties the TLB) the cold case costs what the proxy's profile at
// 256 paced streams shows per chunk, 3-4x the warm one. ns/end is
// the end of each answer (metrics, span attributes, span end), with the
// same touching before it. Run:
// go test -run '^$' -bench TapInterleaved ./internal/gateway
func BenchmarkTapInterleaved(b *testing.B) {
	const tokens = 32
	var chunks [][]byte
	for i := range tokens {
		chunks = append(chunks, fmt.Appendf(nil, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1767225600,"model":"bench","choices":[{"index":0,"delta":{"content":" tok%d"},"finish_reason":null}]}`+"\n\n", i))
	}
	chunks = append(chunks,
		[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1767225600,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"),
		[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1767225600,"model":"bench","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":32,"total_tokens":40}}`+"\n\ndata: [DONE]\n\n"))
	for _, tc := range []struct {
		name           string
		streams, evict int
		syscall        bool
	}{{"warm", 1, 0, false}, {"cold", 256, 1 << 20, true}} {
		b.Run(tc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			g, err := New(Config{Upstreams: []string{"http://127.0.0.1:1"}, TracerProvider: tp, MeterProvider: mp, TokenEvents: TokenEvents{Packed: true}})
			if err != nil {
				b.Fatal(err)
			}
			ep, _ := stream.EndpointOf("/v1/chat/completions")
			other := make([]byte, max(tc.evict, 1))
			touch := func() {
				for i := 0; i < tc.evict; i += 64 {
					other[i]++
				}
				if tc.syscall {
					syscall.Getppid()
				}
			}
			bufs := make([][]byte, tc.streams)
			for i := range bufs {
				bufs[i] = make([]byte, 4<<10)
			}
			var spent, touching, ending time.Duration
			n, ends := 0, 0
			for b.Loop() {
				type flow struct {
					ex   *exchange
					ctx  context.Context
					body io.ReadCloser
				}
				flows := make([]flow, tc.streams)
				for i := range flows {
					ex := &exchange{g: g, start: time.Now(), ep: ep, provider: "openai", model: "bench"}
					ctx, span := g.tracer.Start(context.Background(), "chat bench")
					ex.span, ex.recording = span, true
					ex.initMeter()
					rctx := context.WithValue(context.WithValue(ctx, exchangeKey{}, ex), flightKey{}, &flight{cancel: func(error) {}})
					resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
						Body: io.NopCloser(&chunkReader{chunks: chunks}), Request: (&http.Request{}).WithContext(rctx)}
					if err := g.tapResponse(resp); err != nil {
						b.Fatal(err)
					}
					flows[i] = flow{ex, ctx, resp.Body}
				}
				for range chunks {
					for i, f := range flows {
						t0 := time.Now()
						touch()
						t1 := time.Now()
						if _, err := f.body.Read(bufs[i]); err != nil {
							b.Fatal(err)
						}
						spent += time.Since(t1)
						touching += t1.Sub(t0)
						n++
					}
				}
				for _, f := range flows {
					touch()
					t0 := time.Now()
					f.ex.finish(f.ctx, nil)
					_ = f.body.Close()
					ending += time.Since(t0)
					ends++
				}
			}
			b.ReportMetric(float64(spent.Nanoseconds())/float64(n), "ns/chunk")
			b.ReportMetric(float64(ending.Nanoseconds())/float64(ends), "ns/end")
			b.ReportMetric(float64(touching.Nanoseconds())/float64(n), "ns/evict")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// discardProcessor ends spans without keeping them.
type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }

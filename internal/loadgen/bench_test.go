package loadgen

import (
	"fmt"
	"io"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// chunkReader hands out one chunk per Read, as a stream read off the
// network in real time does.
type chunkReader struct {
	chunks [][]byte
	i      int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.i == len(c.chunks) {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[c.i])
	c.i++
	return n, nil
}

func (c *chunkReader) Close() error { return nil }

// BenchmarkTapChunk is the load tester's CPU per streamed chunk: the body
// tap, the stream.Meter (framing, JSON, clock) and the figures at the end,
// amortised over a 100-chunk answer.
func BenchmarkTapChunk(b *testing.B) {
	for _, api := range []string{"ollama", "openai"} {
		b.Run(api, func(b *testing.B) {
			const n = 100
			var chunks [][]byte
			for i := 0; i < n; i++ {
				if api == "openai" {
					chunks = append(chunks, fmt.Appendf(nil, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"}}]}\n\n", i))
				} else {
					chunks = append(chunks, fmt.Appendf(nil, "{\"model\":\"m\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"tok%d \"},\"done\":false}\n", i))
				}
			}
			if api == "openai" {
				chunks = append(chunks, []byte("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":100}}\n\ndata: [DONE]\n\n"))
			} else {
				chunks = append(chunks, []byte("{\"model\":\"m\",\"done\":true,\"eval_count\":100,\"prompt_eval_count\":5}\n"))
			}
			a := stream.APIOllama
			if api == "openai" {
				a = stream.APIOpenAI
			}
			table := &figureTable{m: map[uint64]Figures{}}
			_, span := noop.NewTracerProvider().Tracer("").Start(b.Context(), "x")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tb := &tapBody{rc: &chunkReader{chunks: chunks}, table: table, span: span, release: func() {}}
				tb.meter = stream.NewMeter(stream.Config{API: a})
				tb.meter.Response(200, map[string]string{"ollama": "application/x-ndjson", "openai": "text/event-stream"}[api])
				if _, err := io.Copy(io.Discard, tb); err != nil {
					b.Fatal(err)
				}
				if f, _ := table.take(0); f.OutputChunks != n || !f.OK() {
					b.Fatalf("figures %+v", f)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/chunk")
		})
	}
}

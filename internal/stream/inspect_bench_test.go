package stream

import (
	"testing"
	"time"
)

var benchChunks = []struct {
	name    string
	api     API
	payload string
}{
	{"ollama", APIOllama, `{"model":"qwen2.5:7b-instruct","created_at":"2026-01-01T00:00:00.000000Z","message":{"role":"assistant","content":" tok42"},"done":false}`},
	{"ollama-final", APIOllama, ollamaFinal},
	{"responses", APIResponses, `{"content_index":0,"delta":" tok42","item_id":"msg_123456","logprobs":[],"output_index":0,"sequence_number":42,"type":"response.output_text.delta"}`},
	{"anthropic", APIAnthropic, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" tok42"}}`},
	{"openai", APIOpenAI, `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1767225600,"model":"qwen2.5:7b-instruct","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":" tok42"},"finish_reason":null}]}`},
}

// benchChunk is the payload of the named bench chunk.
func benchChunk(name string) string {
	for _, bc := range benchChunks {
		if bc.name == name {
			return bc.payload
		}
	}
	panic("no bench chunk " + name)
}

// BenchmarkInspect is the cost of reading one typical chunk: "inspect" as
// the package's tests call it (every string copied out), "meter" as a Meter
// calls it (scanner reused, the model known, no text wanted).
// Run: go test -run '^$' -bench Inspect -benchmem ./internal/stream
func BenchmarkInspect(b *testing.B) {
	for _, bc := range benchChunks {
		p := []byte(bc.payload)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if ci := inspect(bc.api, p); ci.malformed {
					b.Fatal("malformed")
				}
			}
		})
		b.Run(bc.name+"/meter", func(b *testing.B) {
			var sc chunkScanner
			model := sc.inspect(bc.api, p, "", "", false).model
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if ci := sc.inspect(bc.api, p, model, "stop", false); ci.malformed {
					b.Fatal("malformed")
				}
			}
		})
	}
}

// BenchmarkMeterChunk is a Meter's whole work per streamed chunk, framing
// included, with an OnChunk callback that does or does not want the text.
func BenchmarkMeterChunk(b *testing.B) {
	line := []byte(benchChunks[0].payload + "\n")
	for _, noText := range []bool{false, true} {
		name := "text"
		if noText {
			name = "no-text"
		}
		b.Run(name, func(b *testing.B) {
			m := NewMeter(Config{API: APIOllama, Start: t0, Clock: func() time.Time { return t0 }, OnChunk: func(ChunkEvent) {}, NoChunkText: noText})
			m.Response(200, "application/x-ndjson")
			m.Write(line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				m.Write(line)
				m.m.Gaps = m.m.Gaps[:0] // a stream's gaps grow with it; measure the rest
			}
		})
	}
}

// BenchmarkMeterChunkAPI is a Meter's work per streamed token chunk of each
// wire API, framing included, as the proxy runs it (no text wanted).
// Run: go test -run '^$' -bench MeterChunkAPI -benchmem ./internal/stream
func BenchmarkMeterChunkAPI(b *testing.B) {
	for _, bc := range []struct {
		name, ct string
		api      API
		chunk    string
	}{
		{"ollama", "application/x-ndjson", APIOllama, benchChunk("ollama") + "\n"},
		{"openai", "text/event-stream", APIOpenAI, "data: " + benchChunk("openai") + "\n\n"},
		{"responses", "text/event-stream", APIResponses, "event: response.output_text.delta\ndata: " + benchChunk("responses") + "\n\n"},
		{"anthropic", "text/event-stream", APIAnthropic, "event: content_block_delta\ndata: " + benchChunk("anthropic") + "\n\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := NewMeter(Config{API: bc.api, Start: t0, Clock: func() time.Time { return t0 }, OnChunk: func(ChunkEvent) {}, NoChunkText: true})
			m.Response(200, bc.ct)
			line := []byte(bc.chunk)
			m.Write(line)
			if m.m.OutputChunks != 1 {
				b.Fatalf("%s: the chunk carries no output", bc.name)
			}
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				m.Write(line)
				m.m.Gaps = m.m.Gaps[:0]
			}
		})
	}
}

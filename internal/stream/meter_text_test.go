package stream

import (
	"testing"
	"time"
)

func TestMeterNoChunkText(t *testing.T) {
	body := ollamaLine("a\u00e9") + ollamaLine(`q"\`) + ollamaFinal
	for _, noText := range []bool{false, true} {
		var texts []string
		m := NewMeter(Config{API: APIOllama, Start: t0, OnChunk: func(e ChunkEvent) { texts = append(texts, e.Text) }, NoChunkText: noText})
		m.Response(200, "application/x-ndjson")
		m.Write([]byte(body))
		if got := m.Finish(nil); !got.OK() || got.OutputChunks != 2 {
			t.Fatalf("NoChunkText %v: %+v", noText, got)
		}
		want := []string{"a\u00e9", `q"\`}
		if noText {
			want = []string{"", ""}
		}
		if len(texts) != 2 || texts[0] != want[0] || texts[1] != want[1] {
			t.Errorf("NoChunkText %v: texts %q, want %q", noText, texts, want)
		}
	}
}

// TestMeterChunkAllocations: once a stream runs, a typical chunk costs no
// allocation but its text (when wanted) and its gap.
func TestMeterChunkAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tt := range []struct {
		name  string
		api   API
		ct    string
		chunk string
	}{
		{"ollama", APIOllama, "application/x-ndjson", benchChunk("ollama") + "\n"},
		{"openai", APIOpenAI, "text/event-stream", sse(benchChunk("openai"))},
		{"responses", APIResponses, "text/event-stream", "event: response.output_text.delta\n" + sse(benchChunk("responses"))},
		{"anthropic", APIAnthropic, "text/event-stream", "event: content_block_delta\n" + sse(benchChunk("anthropic"))},
	} {
		for _, noText := range []bool{false, true} {
			m := NewMeter(Config{API: tt.api, Start: t0, Clock: func() time.Time { return t0 }, OnChunk: func(ChunkEvent) {}, NoChunkText: noText})
			m.Response(200, tt.ct)
			chunk := []byte(tt.chunk)
			m.Write(chunk)
			want := 0.0
			if !noText {
				want = 1
			}
			got := testing.AllocsPerRun(100, func() {
				m.Write(chunk)
				m.m.Gaps = m.m.Gaps[:0]
			})
			if got != want || m.m.OutputChunks < 100 {
				t.Errorf("%s, NoChunkText %v: %v allocations per chunk (%d chunks), want %v", tt.name, noText, got, m.m.OutputChunks, want)
			}
		}
	}
}

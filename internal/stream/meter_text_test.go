package stream

import (
	"strconv"
	"strings"
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

// TestMeterReadsChunksByShape: a stream of chunks alike but for their text
// is read by shape after its first output chunk, and a chunk whose other
// bytes change, or whose text is not a plain string, is read whole.
func TestMeterReadsChunksByShape(t *testing.T) {
	m := NewMeter(Config{API: APIOpenAI, Start: t0, OnChunk: func(ChunkEvent) {}, NoChunkText: true})
	m.Response(200, "text/event-stream")
	m.Write([]byte(sse(openAIChunk("a"))))
	if !m.shape.ok {
		t.Fatal("no shape taken from a plain output chunk")
	}
	for _, text := range []string{"b", `c\"`, "d"} {
		if !m.shape.match([]byte(openAIChunk(text))) {
			t.Errorf("chunk with text %q does not have the shape", text)
		}
	}
	for _, p := range []string{openAIChunk(`e"`), openAIChunk(""), openAIChunk(`f\`), strings.Replace(openAIChunk("g"), "1767225600", "1767225601", 1)} {
		m.shape.ok = true
		if m.shape.match([]byte(p)) {
			t.Errorf("%s has the shape", p)
		}
	}
	// A Messages text delta has a shape; a Responses delta, whose sequence
	// number changes each time, is not kept.
	for _, tt := range []struct {
		api   API
		chunk string
		kept  bool
	}{
		{APIAnthropic, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`, true},
		{APIAnthropic, `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"a"}}`, false},
		{APIResponses, `{"type":"response.output_text.delta","delta":"a","sequence_number":4}`, false},
	} {
		m := NewMeter(Config{API: tt.api, Start: t0, OnChunk: func(ChunkEvent) {}, NoChunkText: true})
		m.Response(200, "text/event-stream")
		m.Write([]byte(sse(tt.chunk)))
		if m.shape.ok != tt.kept {
			t.Errorf("%s %s: shape kept %v, want %v", tt.api, tt.chunk, m.shape.ok, tt.kept)
		}
	}
	// A shape that fails the next chunk twice in a row: no more are taken.
	ollama := NewMeter(Config{API: APIOpenAI, Start: t0, OnChunk: func(ChunkEvent) {}, NoChunkText: true})
	ollama.Response(200, "text/event-stream")
	for i := range 4 {
		ollama.Write([]byte(sse(strings.Replace(openAIChunk("x"), "1767225600", strconv.Itoa(i), 1))))
	}
	if ollama.shape.ok || ollama.shape.misses != stopShapes {
		t.Errorf("chunks that change each time: shape kept %v after %d misses", ollama.shape.ok, ollama.shape.misses)
	}
	if got := ollama.Finish(nil); got.OutputChunks != 4 {
		t.Errorf("%d output chunks, want 4", got.OutputChunks)
	}
}

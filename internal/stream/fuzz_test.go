package stream

import (
	"reflect"
	"testing"
	"time"
)

func addSeeds(f *testing.F) {
	f.Add([]byte(ollamaLine("a")+ollamaLine("b")+ollamaFinal), uint8(3), false)
	f.Add([]byte(sse(`{"choices":[{"delta":{"content":"x"}}]}`)+sse("[DONE]")), uint8(5), true)
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: c\n\nevent: e\n\n"), uint8(1), true)
	f.Add([]byte("{\"error\":\"x\"}\n\n\r\n{"), uint8(2), false)
	// Chunks alike but for their text, as servers stream them (read by
	// their shape), with texts that end the string early or run past it.
	f.Add([]byte(sse(openAIChunk("a"))+sse(openAIChunk("b"))+sse(openAIChunk(`c\"`))+sse(openAIChunk(`d"`))+
		sse(openAIChunk(`e\`))+sse(openAIChunk(""))+sse(openAIChunk("\u00e9\x01"))+sse(openAIChunk("f"))+sse("[DONE]")), uint8(7), true)
}

// openAIChunk is an OpenAI-compatible chunk whose delta content is the
// raw bytes of text (a valid JSON string only when text is).
func openAIChunk(text string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"m","choices":[{"index":0,"delta":{"content":"` +
		text + `"},"logprobs":null,"finish_reason":null}]}`
}

// FuzzFraming: however the body is cut into reads, the chunks are the same,
// and the framer never panics or holds more than its limit.
func FuzzFraming(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, step uint8, isSSE bool) {
		format := FormatNDJSON
		if isSSE {
			format = FormatSSE
		}
		s := int(step)%16 + 1
		whole := frames(format, string(body), len(body)+1, 64)
		cut := frames(format, string(body), s, 64)
		if !reflect.DeepEqual(whole, cut) {
			t.Fatalf("reads of %d bytes gave %q, one read gave %q", s, cut, whole)
		}
		for _, c := range whole {
			if len(c) > 64 {
				t.Fatalf("chunk of %d bytes passed a 64-byte limit", len(c))
			}
		}
	})
}

// measureTwice measures body, cut into reads of step bytes, with a Meter
// that reads chunks by their shape where it can, and again with one that
// wants each chunk's text, so reads every chunk whole: the figures must be
// the same.
func measureTwice(t *testing.T, api API, contentType string, body []byte, step int) *Measurement {
	t.Helper()
	var ms [2]*Measurement
	for i, onChunk := range []func(ChunkEvent){nil, func(ChunkEvent) {}} {
		now := t0
		m := NewMeter(Config{API: api, Start: t0, Clock: func() time.Time { now = now.Add(time.Millisecond); return now }, OnChunk: onChunk})
		m.Response(200, contentType)
		for i := 0; i < len(body); i += step {
			m.Write(body[i:min(i+step, len(body))])
		}
		ms[i] = m.Finish(nil)
	}
	if !reflect.DeepEqual(ms[0], ms[1]) {
		t.Fatalf("read by shape:\n%+v\nread whole:\n%+v", ms[0], ms[1])
	}
	return ms[0]
}

// FuzzMeter: any body, of either API and framing, is measured without a
// panic, and the figures hold together.
func FuzzMeter(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, step uint8, isSSE bool) {
		api, ct := APIOllama, "application/x-ndjson"
		if isSSE {
			api, ct = APIOpenAI, "text/event-stream"
		}
		got := measureTwice(t, api, ct, body, int(step)%16+1)
		if got.OutputChunks > 0 && len(got.Gaps) != got.OutputChunks-1 {
			t.Fatalf("%d output chunks but %d gaps", got.OutputChunks, len(got.Gaps))
		}
		if ttft, ok := got.TTFT(); ok && (ttft <= 0 || ttft > got.E2E()) {
			t.Fatalf("TTFT %v outside (0, E2E %v]", ttft, got.E2E())
		}
		if !got.Complete && got.OK() {
			t.Fatal("a stream without its final marker counted as a success")
		}
	})
}

package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one body read arriving at a given offset from t0.
type step struct {
	at   time.Duration
	data string
}

// measure feeds steps through a Meter whose clock reads each step's time.
func measure(api API, status int, contentType string, steps []step, end time.Duration, endErr error) (*Measurement, []ChunkEvent) {
	now := t0
	var events []ChunkEvent
	m := NewMeter(Config{API: api, Start: t0, Clock: func() time.Time { return now }, OnChunk: func(e ChunkEvent) { events = append(events, e) }})
	m.Response(status, contentType)
	for _, s := range steps {
		now = t0.Add(s.at)
		m.Write([]byte(s.data))
	}
	now = t0.Add(end)
	return m.Finish(endErr), events
}

func ollamaLine(content string) string {
	return fmt.Sprintf(`{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":%q},"done":false}`+"\n", content)
}

const ollamaFinal = `{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":900000000,"load_duration":100000000,"prompt_eval_count":20,"prompt_eval_duration":50000000,"eval_count":3,"eval_duration":300000000}` + "\n"

func sse(payload string) string { return "data: " + payload + "\n\n" }

func TestMeterOllamaStream(t *testing.T) {
	ms := time.Millisecond
	m, events := measure(APIOllama, 200, "application/x-ndjson", []step{
		{100 * ms, ollamaLine("a")},
		{150 * ms, ollamaLine("b") + ollamaLine("")}, // an empty chunk carries no output
		{260 * ms, ollamaLine("c")[:20]},             // a chunk split across reads counts when whole
		{300 * ms, ollamaLine("c")[20:] + ollamaFinal},
	}, 310*ms, nil)

	if !m.OK() {
		t.Fatalf("error %s: %s", m.ErrorType, m.Error)
	}
	if ttft, _ := m.TTFT(); ttft != 100*ms {
		t.Errorf("TTFT = %v, want 100ms", ttft)
	}
	if want := []time.Duration{50 * ms, 150 * ms}; fmt.Sprint(m.Gaps) != fmt.Sprint(want) {
		t.Errorf("gaps = %v, want %v", m.Gaps, want)
	}
	if tpot, _ := m.TPOT(); tpot != 100*ms {
		t.Errorf("TPOT = %v, want (300-100)/(3-1) = 100ms", tpot)
	}
	if got := m.DecodeSpeed(); got != 10 {
		t.Errorf("decode speed = %v, want 10 tok/s", got)
	}
	if m.E2E() != 310*ms || !m.FirstByte.Equal(t0.Add(100*ms)) {
		t.Errorf("E2E = %v, first byte at %v", m.E2E(), m.FirstByte.Sub(t0))
	}
	if m.InputTokens != 20 || m.OutputTokens != 3 || m.TokensEstimated {
		t.Errorf("tokens = %d in, %d out, estimated %v; want 20, 3, false", m.InputTokens, m.OutputTokens, m.TokensEstimated)
	}
	if m.FinishReason != "stop" || m.Model != "m" || m.Ollama == nil || m.Ollama.QueueWait() != 450e6 {
		t.Errorf("finish %q, model %q, ollama %+v", m.FinishReason, m.Model, m.Ollama)
	}
	if len(events) != 3 || events[0].Index != 0 || events[2].Index != 2 || events[2].Gap != 150*ms || events[1].Text != "b" {
		t.Errorf("chunk events = %+v", events)
	}
}

func TestMeterOpenAIStream(t *testing.T) {
	ms := time.Millisecond
	body := sse(`{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`)
	m, _ := measure(APIOpenAI, 200, "text/event-stream", []step{
		{10 * ms, body},
		{40 * ms, sse(`{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`)},
		{60 * ms, sse(`{"choices":[{"index":0,"delta":{"content":"y"},"finish_reason":null}]}`)},
		{90 * ms, sse(`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`) +
			sse(`{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}`) + sse("[DONE]")},
	}, 95*ms, nil)
	if !m.OK() {
		t.Fatalf("error %s: %s", m.ErrorType, m.Error)
	}
	if ttft, _ := m.TTFT(); ttft != 40*ms {
		t.Errorf("TTFT = %v, want 40ms (the role chunk carries no output)", ttft)
	}
	if m.OutputChunks != 2 || m.OutputTokens != 2 || m.InputTokens != 5 || m.TokensEstimated || m.FinishReason != "stop" {
		t.Errorf("measurement = %+v", m)
	}
}

func TestMeterEstimatesCountsWithoutUsage(t *testing.T) {
	m, _ := measure(APIOpenAI, 200, "text/event-stream", []step{
		{time.Millisecond, sse(`{"choices":[{"delta":{"content":"x"}}]}`) + sse(`{"choices":[{"delta":{"content":"y"}}]}`) +
			sse(`{"choices":[{"delta":{},"finish_reason":"stop"}]}`) + sse("[DONE]")},
	}, 2*time.Millisecond, nil)
	if !m.OK() || m.OutputTokens != 2 || !m.TokensEstimated {
		t.Errorf("ok=%v output tokens %d estimated %v; want true, 2, true", m.OK(), m.OutputTokens, m.TokensEstimated)
	}
}

func TestMeterEstimatesWhenOllamaSendsNoCounts(t *testing.T) {
	m, _ := measure(APIOllama, 200, "application/x-ndjson", []step{
		{time.Millisecond, ollamaLine("a") + ollamaLine("b") + `{"model":"m","done":true,"done_reason":"stop"}` + "\n"},
	}, 2*time.Millisecond, nil)
	if !m.OK() || m.OutputTokens != 2 || !m.TokensEstimated {
		t.Errorf("ok=%v output tokens %d estimated %v; want true, 2, true", m.OK(), m.OutputTokens, m.TokensEstimated)
	}
}

func TestMeterNonStreaming(t *testing.T) {
	m, _ := measure(APIOllama, 200, "application/json; charset=utf-8", []step{
		{5 * time.Millisecond, `{"model":"m","message":{"role":"assistant","content":"whole`},
		{6 * time.Millisecond, ` answer"},"done":true,"done_reason":"stop","prompt_eval_count":4,"eval_count":9}`},
	}, 7*time.Millisecond, nil)
	if !m.OK() || m.OutputTokens != 9 || m.InputTokens != 4 {
		t.Fatalf("measurement = %+v", m)
	}
	if ttft, ok := m.TTFT(); !ok || ttft != 7*time.Millisecond {
		t.Errorf("TTFT = %v, %v; want 7ms (a whole body is one chunk, complete at its end)", ttft, ok)
	}
	// Embeddings carry no output and are complete without a final marker.
	m, _ = measure(APIOpenAI, 200, "application/json", []step{{time.Millisecond, `{"data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":3}}`}}, 2*time.Millisecond, nil)
	if !m.OK() || m.InputTokens != 3 {
		t.Errorf("embeddings: %+v", m)
	}
}

func TestMeterErrors(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name        string
		api         API
		status      int
		contentType string
		steps       []step
		endErr      error
		wantType    string
		wantMsg     string
	}{
		{"http status", APIOllama, 404, "application/json", []step{{ms, `{"error":"model \"x\" not found, try pulling it first"}`}}, nil, "404", `model "x" not found, try pulling it first`},
		{"openai status", APIOpenAI, 503, "application/json", []step{{ms, `{"error":{"message":"busy","type":"api_error"}}`}}, nil, "503", "busy"},
		{"error inside stream", APIOllama, 200, "application/x-ndjson", []step{{ms, ollamaLine("a") + `{"error":"out of memory"}` + "\n"}}, nil, ErrInStream, "out of memory"},
		{"error event inside sse", APIOpenAI, 200, "text/event-stream", []step{{ms, sse(`{"error":{"message":"boom"}}`)}}, nil, ErrInStream, "boom"},
		{"truncated ollama stream", APIOllama, 200, "application/x-ndjson", []step{{ms, ollamaLine("a") + ollamaLine("b")}}, nil, ErrIncomplete, ""},
		{"truncated sse stream", APIOpenAI, 200, "text/event-stream", []step{{ms, sse(`{"choices":[{"delta":{"content":"x"}}]}`)}}, nil, ErrIncomplete, ""},
		{"garbage", APIOllama, 200, "application/x-ndjson", []step{{ms, "<html>oops</html>\n" + ollamaFinal}}, nil, ErrMalformed, ""},
		{"non-streaming garbage", APIOpenAI, 200, "application/json", []step{{ms, "not json"}}, nil, ErrMalformed, ""},
		{"transport error mid-stream", APIOllama, 200, "application/x-ndjson", []step{{ms, ollamaLine("a")}}, io.ErrUnexpectedEOF, ErrTransport, "unexpected EOF"},
		{"client canceled", APIOllama, 200, "application/x-ndjson", []step{{ms, ollamaLine("a")}}, context.Canceled, ErrCanceled, ""},
		{"no response", APIOllama, 0, "", nil, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, ErrTransport, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := measure(tt.api, tt.status, tt.contentType, tt.steps, 2*ms, tt.endErr)
			if m.OK() || m.ErrorType != tt.wantType {
				t.Fatalf("error type = %q (%s), want %q", m.ErrorType, m.Error, tt.wantType)
			}
			if tt.wantMsg != "" && m.Error != tt.wantMsg {
				t.Errorf("error = %q, want %q", m.Error, tt.wantMsg)
			}
		})
	}
}

func TestClassifyError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{context.Canceled, ErrCanceled},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), ErrTimeout},
		{&net.OpError{Op: "read", Err: timeoutErr{}}, ErrTimeout},
		{errors.New("connection reset by peer"), ErrTransport},
	}
	for _, tt := range tests {
		if got := ClassifyError(tt.err); got != tt.want {
			t.Errorf("ClassifyError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestMeterFinishIsIdempotent(t *testing.T) {
	m := NewMeter(Config{API: APIOllama})
	m.Response(200, "application/x-ndjson")
	m.Write([]byte(ollamaFinal))
	first := m.Finish(nil)
	if again := m.Finish(errors.New("late")); again != first || !again.OK() {
		t.Errorf("second Finish changed the measurement: %+v", again)
	}
	if n, err := m.Write([]byte("more")); n != 4 || err != nil {
		t.Errorf("Write after Finish = %d, %v", n, err)
	}
}

func TestMeterWithoutResponseCall(t *testing.T) {
	m := NewMeter(Config{API: APIOllama})
	m.Write([]byte(ollamaFinal))
	if got := m.Finish(nil); !got.OK() {
		t.Errorf("a body without Response is read as JSON: %s %s", got.ErrorType, got.Error)
	}
}

func TestEndpointAndRequest(t *testing.T) {
	tests := []struct {
		path, body string
		op         string
		want       Request
	}{
		{"/api/chat", `{"model":"qwen","messages":[]}`, OpChat, Request{Model: "qwen", Stream: true}},
		{"/api/chat", `{"model":"qwen","stream":false,"options":{"num_predict":64}}`, OpChat, Request{Model: "qwen", MaxTokens: 64}},
		{"/api/generate/", `{"model":"g","prompt":"hi"}`, OpTextCompletion, Request{Model: "g", Stream: true}},
		{"/api/embed", `{"model":"e","input":"x"}`, OpEmbeddings, Request{Model: "e"}},
		{"/v1/chat/completions", `{"model":"o","stream":true,"max_tokens":10}`, OpChat, Request{Model: "o", Stream: true, MaxTokens: 10}},
		{"/v1/chat/completions", `{"model":"o","max_completion_tokens":7,"max_tokens":10}`, OpChat, Request{Model: "o", MaxTokens: 7}},
		{"/v1/completions", `{"model":"o","prompt":"x"}`, OpTextCompletion, Request{Model: "o"}},
	}
	for _, tt := range tests {
		e, ok := EndpointOf(tt.path)
		if !ok || e.Operation != tt.op {
			t.Fatalf("EndpointOf(%q) = %+v, %v", tt.path, e, ok)
		}
		got, err := ParseRequest(e, []byte(tt.body))
		if err != nil || got != tt.want {
			t.Errorf("ParseRequest(%s, %s) = %+v, %v; want %+v", tt.path, tt.body, got, err, tt.want)
		}
	}
	for _, path := range []string{"/api/tags", "/api/pull", "/v1/models", "/"} {
		if _, ok := EndpointOf(path); ok {
			t.Errorf("EndpointOf(%q) is an inference endpoint", path)
		}
	}
	if _, err := ParseRequest(endpoints["/api/chat"], []byte("not json")); err == nil {
		t.Error("ParseRequest accepted a body that is not JSON")
	}
	if APIOf("/v1/models") != APIOpenAI || APIOf("/api/tags") != APIOllama {
		t.Error("APIOf misnames a family")
	}
}

package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
)

func sseEvent(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }

// Streams with two reasoning chunks before a three-chunk answer, shaped as
// Ollama v0.17.4 writes them, except that they report reasoning and cached
// tokens as OpenAI does.
var (
	responsesReasoningStream = []string{
		sseEvent("response.created", `{"type":"response.created","sequence_number":0,"response":{"status":"in_progress","model":"m1","output":[],"usage":null}}`),
		sseEvent("response.reasoning_summary_text.delta", `{"type":"response.reasoning_summary_text.delta","sequence_number":1,"delta":"hm"}`),
		sseEvent("response.reasoning_summary_text.delta", `{"type":"response.reasoning_summary_text.delta","sequence_number":2,"delta":"m"}`),
		sseEvent("response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":3,"delta":"a"}`),
		sseEvent("response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":4,"delta":"b"}`),
		sseEvent("response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":5,"delta":"c"}`) +
			sseEvent("response.completed", `{"type":"response.completed","sequence_number":6,"response":{"status":"completed","model":"m1",`+
				`"usage":{"input_tokens":7,"output_tokens":5,"input_tokens_details":{"cached_tokens":4},"output_tokens_details":{"reasoning_tokens":2}}}}`),
	}
	messagesReasoningStream = []string{
		sseEvent("message_start", `{"type":"message_start","message":{"model":"m1","content":[],"usage":{"input_tokens":3,"output_tokens":0}}}`),
		sseEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}`),
		sseEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"m"}}`),
		sseEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a"}}`),
		sseEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"b"}}`),
		sseEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"c"}}`) +
			sseEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":7,"output_tokens":5}}`) +
			sseEvent("message_stop", `{"type":"message_stop"}`),
	}
)

// TestEventAPIsMeasuredLikeChat: a Responses and a Messages stream get the
// span, attributes and metrics of a chat, plus the API, the first_content
// event and the thinking time.
func TestEventAPIsMeasuredLikeChat(t *testing.T) {
	for _, tc := range []struct {
		api, path, body string
		chunks          []string
		finish          string
		reasoning       bool // the server reports reasoning and cached tokens
	}{
		{"responses", "/v1/responses", `{"model":"m1","input":"hi","stream":true,"max_output_tokens":9}`, responsesReasoningStream, "completed", true},
		{"anthropic", "/v1/messages", `{"model":"m1","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, messagesReasoningStream, "end_turn", false},
	} {
		t.Run(tc.api, func(t *testing.T) {
			srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) { chunked(w, sse, tc.chunks, gapDelay, firstDelay) })
			rg := newRig(t, Config{}, srv.URL)
			resp, body := rg.do(t, "POST", tc.path, tc.body, nil)
			if resp.StatusCode != 200 || string(body) != strings.Join(tc.chunks, "") {
				t.Fatalf("status %d, body changed: %q", resp.StatusCode, body)
			}
			s := rg.span(t, "chat")
			if s.Name() != "chat m1" {
				t.Errorf("span name %q", s.Name())
			}
			a := attrs(s)
			want := map[attribute.Key]attribute.Value{
				semconv.GenAIOperationNameKey:         attribute.StringValue("chat"),
				semconv.GenAIProviderNameKey:          attribute.StringValue("ollama"),
				semconv.GenAIRequestModelKey:          attribute.StringValue("m1"),
				semconv.GenAIResponseModelKey:         attribute.StringValue("m1"),
				semconv.GenAIRequestStreamKey:         attribute.BoolValue(true),
				semconv.GenAIRequestMaxTokensKey:      attribute.IntValue(9),
				semconv.GenAIUsageInputTokensKey:      attribute.IntValue(7),
				semconv.GenAIUsageOutputTokensKey:     attribute.IntValue(5),
				semconv.GenAIResponseFinishReasonsKey: attribute.StringSliceValue([]string{tc.finish}),
				attrAPI:                               attribute.StringValue(tc.api),
				attrOutputChunks:                      attribute.IntValue(5),
			}
			if tc.reasoning {
				want[semconv.GenAIUsageReasoningOutputTokensKey] = attribute.IntValue(2)
				want[semconv.GenAIUsageCacheReadInputTokensKey] = attribute.IntValue(4)
			}
			for k, v := range want {
				if got, ok := a[k]; !ok || got != v {
					t.Errorf("attribute %s = %v, want %v", k, got.Emit(), v.Emit())
				}
			}
			if _, ok := a[semconv.GenAIUsageReasoningOutputTokensKey]; ok != tc.reasoning {
				t.Errorf("reasoning tokens recorded: %v, want %v (only where the server reports them)", ok, tc.reasoning)
			}
			// TTFT is the first reasoning chunk; the answer begins two gaps later.
			within(t, "TTFT", a[semconv.GenAIResponseTimeToFirstChunkKey].AsFloat64(), firstDelay.Seconds(), tolBelow, tolAbove)
			ev := s.Events()
			if len(ev) < 2 || ev[0].Name != eventFirstToken || ev[1].Name != eventFirstContent {
				t.Fatalf("events %v, want first_token and first_content first", ev)
			}
			// Thinking time is the gap between the two events, exactly; it is at
			// least the upstream's two gaps and, however loaded the machine, no
			// longer than what was left of the stream after its first token.
			thinking := ev[1].Time.Sub(ev[0].Time).Seconds()
			sameSeconds(t, "thinking time attribute", a[attrThinkingTime].AsFloat64(), thinking)
			within(t, "first_content after first_token", thinking, (2 * gapDelay).Seconds(), tolBelow, s.EndTime().Sub(ev[0].Time).Seconds())

			ms := rg.metrics(t)
			addr, port := hostPort(t, srv.URL)
			labels := attribute.NewSet(semconv.GenAIOperationNameKey.String("chat"), semconv.GenAIProviderNameKey.String("ollama"),
				semconv.GenAIRequestModelKey.String("m1"), semconv.ServerAddressKey.String(addr), semconv.ServerPortKey.Int(port))
			for _, name := range []string{"gen_ai.client.operation.time_to_first_chunk", "tokentrace.client.time_per_output_token", "tokentrace.client.thinking_time"} {
				p := histPoints(t, ms, name)
				if len(p) != 1 || p[0].Count != 1 || !p[0].Attributes.Equals(&labels) {
					t.Errorf("%s: %+v, want one sample labelled as chat", name, p)
				}
			}
			sameSeconds(t, "thinking time metric", histPoints(t, ms, "tokentrace.client.thinking_time")[0].Sum, thinking)
			if got := tokenUsage(t, ms); got["input"] != 7 || got["output"] != 5 {
				t.Errorf("token usage %v, want input 7 output 5", got)
			}
		})
	}
}

// TestChatWithoutReasoningHasNoThinkingTime: an answer that begins at once
// records no thinking time and no first_content event.
func TestChatWithoutReasoningHasNoThinkingTime(t *testing.T) {
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) { chunked(w, sse, messagesReasoningStream[3:], 0, 0) })
	rg := newRig(t, Config{}, srv.URL)
	rg.do(t, "POST", "/v1/messages", `{"model":"m1","max_tokens":9,"stream":true}`, nil)
	s := rg.span(t, "chat")
	for _, e := range s.Events() {
		if e.Name == eventFirstContent {
			t.Error("first_content event without reasoning before it")
		}
	}
	if _, ok := rg.metrics(t)["tokentrace.client.thinking_time"]; ok {
		t.Error("thinking time recorded for an answer without reasoning")
	}
}

// TestProxyErrorsInEventAPIShapes: the proxy's own answers come in the
// Responses (OpenAI) and Messages (Anthropic) error shapes.
func TestProxyErrorsInEventAPIShapes(t *testing.T) {
	rg := newRig(t, Config{UpstreamTimeout: 200 * time.Millisecond}, closedURL(t))
	resp, body := rg.do(t, "POST", "/v1/messages", `{"model":"m1","max_tokens":9,"stream":true}`, nil)
	var a struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(body, &a); resp.StatusCode != 502 || err != nil || a.Type != "error" || a.Error.Type != "api_error" || a.Error.Message == "" {
		t.Errorf("Messages error: status %d body %q", resp.StatusCode, body)
	}
	resp, body = rg.do(t, "POST", "/v1/responses", `{"model":"m1","stream":true}`, nil)
	var o struct {
		Error struct{ Message, Type, Code string }
	}
	if err := json.Unmarshal(body, &o); resp.StatusCode != 502 || err != nil || o.Error.Code != "upstream_unreachable" {
		t.Errorf("Responses error: status %d body %q", resp.StatusCode, body)
	}
}

// hostPort splits a test server's URL into the server.address and
// server.port the proxy puts on its metrics.
func hostPort(t *testing.T, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), port
}

// sameSeconds fails unless got and want are the same duration to the
// microsecond: two records of one measurement.
func sameSeconds(t *testing.T, what string, got, want float64) {
	t.Helper()
	if d := got - want; d > 1e-6 || d < -1e-6 {
		t.Errorf("%s = %.6f s, want %.6f s", what, got, want)
	}
}

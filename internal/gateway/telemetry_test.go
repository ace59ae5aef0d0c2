package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// Known delays of the fake upstreams below. Tolerances are generous: the
// machine running the tests is busy; benchmarks measure, tests check.
const (
	firstDelay = 150 * time.Millisecond
	gapDelay   = 40 * time.Millisecond
	tolBelow   = 0.005
	tolAbove   = 0.4
)

func ollamaStream(n int) []string {
	var c []string
	for i := range n {
		c = append(c, fmt.Sprintf(`{"model":"m1","message":{"role":"assistant","content":"t%d"},"done":false}`+"\n", i))
	}
	return append(c, `{"model":"m1","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop",`+
		`"total_duration":2000000000,"load_duration":100000000,"prompt_eval_count":7,"prompt_eval_duration":200000000,`+
		fmt.Sprintf(`"eval_count":%d,"eval_duration":500000000}`, n)+"\n")
}

func TestOllamaStreamSpanAndMetrics(t *testing.T) {
	const n = 5
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		chunks := ollamaStream(n)
		// The done chunk follows the last token at once.
		last := chunks[n-1] + chunks[n]
		chunked(w, ndjson, append(chunks[:n-1:n-1], last), gapDelay, firstDelay)
	})
	rg := newRig(t, Config{}, srv.URL)
	resp, _ := rg.do(t, "POST", "/api/chat", `{"model":"m1","messages":[],"options":{"num_predict":64}}`,
		map[string]string{DefaultScenarioHeader: "smoke", "Authorization": "Bearer secret-token"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	s := rg.span(t, "chat")
	if s.Name() != "chat m1" || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v, want \"chat m1\" server", s.Name(), s.SpanKind())
	}
	a := attrs(s)
	wantAttrs := map[attribute.Key]attribute.Value{
		semconv.GenAIOperationNameKey:         attribute.StringValue("chat"),
		semconv.GenAIProviderNameKey:          attribute.StringValue("ollama"),
		semconv.GenAIRequestModelKey:          attribute.StringValue("m1"),
		semconv.GenAIResponseModelKey:         attribute.StringValue("m1"),
		semconv.GenAIRequestStreamKey:         attribute.BoolValue(true),
		semconv.GenAIRequestMaxTokensKey:      attribute.IntValue(64),
		semconv.GenAIUsageInputTokensKey:      attribute.IntValue(7),
		semconv.GenAIUsageOutputTokensKey:     attribute.IntValue(n),
		semconv.GenAIResponseFinishReasonsKey: attribute.StringSliceValue([]string{"stop"}),
		semconv.HTTPResponseStatusCodeKey:     attribute.IntValue(200),
		attrScenario:                          attribute.StringValue("smoke"),
		attrOllamaLoad:                        attribute.Float64Value(0.1),
		attrOllamaPromptN:                     attribute.IntValue(7),
		attrOllamaPromptDur:                   attribute.Float64Value(0.2),
		attrOllamaEvalN:                       attribute.IntValue(n),
		attrOllamaEvalDur:                     attribute.Float64Value(0.5),
		attrOllamaTotal:                       attribute.Float64Value(2),
		attrOllamaQueueWait:                   attribute.Float64Value(1.2),
		attrOllamaDecode:                      attribute.Float64Value(10),
	}
	for k, v := range wantAttrs {
		if got, ok := a[k]; !ok || got != v {
			t.Errorf("attribute %s = %v, want %v", k, got.Emit(), v.Emit())
		}
	}
	if _, ok := a[semconv.ServerPortKey]; !ok {
		t.Error("server.port missing")
	}
	if _, ok := a[semconv.ErrorTypeKey]; ok || s.Status().Code == codes.Error {
		t.Errorf("a successful request carries error.type %v / status %v", a[semconv.ErrorTypeKey].Emit(), s.Status())
	}
	within(t, "gen_ai.response.time_to_first_chunk", a[semconv.GenAIResponseTimeToFirstChunkKey].AsFloat64(), firstDelay.Seconds(), tolBelow, tolAbove)

	ev := s.Events()
	if len(ev) != n+1 || ev[0].Name != eventFirstToken {
		t.Fatalf("events %d (first %q), want first_token + %d token events", len(ev), ev[0].Name, n)
	}
	for i, e := range ev[1:] {
		ea := map[attribute.Key]attribute.Value{}
		for _, kv := range e.Attributes {
			ea[kv.Key] = kv.Value
		}
		if e.Name != eventToken || ea[attrChunkIndex].AsInt64() != int64(i) || ea[attrChunkTokens].AsInt64() != 1 {
			t.Errorf("event %d = %s %v", i, e.Name, e.Attributes)
		}
		if _, ok := ea[attrChunkText]; ok {
			t.Error("chunk text recorded without the content opt-in")
		}
	}
	within(t, "first_token event offset", ev[0].Time.Sub(s.StartTime()).Seconds(), firstDelay.Seconds(), tolBelow, tolAbove)
	for _, kv := range s.Attributes() {
		if strings.Contains(kv.Value.Emit(), "secret-token") || kv.Key == attrPrompt || kv.Key == attrCompletion {
			t.Errorf("span records %s = %q", kv.Key, kv.Value.Emit())
		}
	}

	ms := rg.metrics(t)
	ttft := histPoints(t, ms, "gen_ai.client.operation.time_to_first_chunk")
	if len(ttft) != 1 || ttft[0].Count != 1 {
		t.Fatalf("TTFT points %+v", ttft)
	}
	within(t, "TTFT metric", ttft[0].Sum, firstDelay.Seconds(), tolBelow, tolAbove)
	host, port := splitHostPort(mustURL(t, srv.URL))
	wantLabels := attribute.NewSet(semconv.GenAIOperationNameKey.String("chat"), semconv.GenAIProviderNameKey.String("ollama"),
		semconv.GenAIRequestModelKey.String("m1"), attrScenario.String("smoke"),
		semconv.ServerAddressKey.String(host), semconv.ServerPortKey.Int(port))
	if !ttft[0].Attributes.Equals(&wantLabels) {
		t.Errorf("TTFT labels %v, want %v", ttft[0].Attributes.ToSlice(), wantLabels.ToSlice())
	}
	gaps := histPoints(t, ms, "gen_ai.client.operation.time_per_output_chunk")
	if gaps[0].Count != n-1 {
		t.Errorf("inter-chunk samples %d, want %d", gaps[0].Count, n-1)
	}
	within(t, "mean inter-chunk gap", gaps[0].Sum/float64(gaps[0].Count), gapDelay.Seconds(), tolBelow, tolAbove)
	tpot := histPoints(t, ms, "tokentrace.client.time_per_output_token")
	within(t, "TPOT", tpot[0].Sum, gapDelay.Seconds(), tolBelow, tolAbove)
	dur := histPoints(t, ms, "gen_ai.client.operation.duration")
	within(t, "duration", dur[0].Sum, (firstDelay + (n-1)*gapDelay).Seconds(), tolBelow, tolAbove)
	qw := histPoints(t, ms, "tokentrace.ollama.queue_wait")
	within(t, "queue wait", qw[0].Sum, 1.2, 1e-9, 1e-9)

	usage := tokenUsage(t, ms)
	if usage["input"] != 7 || usage["output"] != n {
		t.Errorf("token usage %v, want input 7 output %d", usage, n)
	}
	active := ms["tokentrace.server.active_requests"].Data.(metricdata.Sum[int64])
	if len(active.DataPoints) != 1 || active.DataPoints[0].Value != 0 {
		t.Errorf("in-flight after the request: %+v", active.DataPoints)
	}
}

func tokenUsage(t *testing.T, ms map[string]metricdata.Metrics) map[string]int64 {
	t.Helper()
	m, ok := ms["gen_ai.client.token.usage"]
	if !ok {
		t.Fatal("gen_ai.client.token.usage not recorded")
	}
	out := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
		v, _ := dp.Attributes.Value(semconv.GenAITokenTypeKey)
		key := v.AsString()
		if est, ok := dp.Attributes.Value(attrEstimated); ok && est.AsBool() {
			key += " estimated"
		}
		out[key] += dp.Sum
	}
	return out
}

func TestOpenAIStreamUsesUsageCounts(t *testing.T) {
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		chunked(w, sse, openAIChatStream, gapDelay, firstDelay)
	})
	rg := newRig(t, Config{ProviderName: "vllm"}, srv.URL)
	resp, body := rg.do(t, "POST", "/v1/chat/completions", `{"model":"m1","stream":true,"max_tokens":9}`, nil)
	if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	s := rg.span(t, "chat")
	a := attrs(s)
	if a[semconv.GenAIUsageOutputTokensKey].AsInt64() != 2 || a[semconv.GenAIUsageInputTokensKey].AsInt64() != 7 ||
		a[semconv.GenAIProviderNameKey].AsString() != "vllm" || a[semconv.GenAIRequestMaxTokensKey].AsInt64() != 9 {
		t.Errorf("attributes %v", s.Attributes())
	}
	// The role chunk carries no output: TTFT is at the first content chunk, one gap later.
	within(t, "TTFT", a[semconv.GenAIResponseTimeToFirstChunkKey].AsFloat64(), (firstDelay + gapDelay).Seconds(), tolBelow, tolAbove)
	if got := tokenUsage(t, rg.metrics(t)); got["input"] != 7 || got["output"] != 2 {
		t.Errorf("token usage %v", got)
	}
}

func TestTokenCountsEstimatedWhenServerGivesNone(t *testing.T) {
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		chunked(w, sse, append(openAIChatStream[:4:4], "data: [DONE]\n\n"), 0, 0)
	})
	rg := newRig(t, Config{}, srv.URL)
	rg.do(t, "POST", "/v1/chat/completions", `{"model":"m1","stream":true}`, nil)
	a := attrs(rg.span(t, "chat"))
	if a[attrEstimated].AsBool() != true || a[semconv.GenAIUsageOutputTokensKey].AsInt64() != 2 {
		t.Errorf("attributes %v", a)
	}
	if _, ok := a[semconv.GenAIUsageInputTokensKey]; ok {
		t.Error("input tokens reported without a server count")
	}
	if got := tokenUsage(t, rg.metrics(t)); got["output estimated"] != 2 || got["output"] != 0 {
		t.Errorf("token usage %v: estimated counts must be labelled so", got)
	}
}

// TestTokenEventModes: each mode puts its events on the span, as SDK
// events or packed into one attribute (TokenEvents.Packed) that stands for
// the same events.
func TestTokenEventModes(t *testing.T) {
	const n = 10
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) { chunked(w, ndjson, ollamaStream(n), 0, 0) })
	for _, tc := range []struct {
		name       string
		ev         TokenEvents
		wantEvents int
		leftOut    int64
	}{
		{"all", TokenEvents{}, n, -1},
		{"off", TokenEvents{Mode: TokenEventsOff}, 0, n},
		{"every 3", TokenEvents{Mode: TokenEventsEveryN, Every: 3}, 4, n - 4},
		{"capped", TokenEvents{Cap: 6}, 6, n - 6},
	} {
		for _, packed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s packed=%v", tc.name, packed), func(t *testing.T) {
				ev := tc.ev
				ev.Packed = packed
				rg := newRig(t, Config{TokenEvents: ev}, srv.URL)
				rg.do(t, "POST", "/api/generate", `{"model":"m1"}`, nil)
				s := rg.span(t, "text_completion")
				events := s.Events()
				if packed {
					for _, e := range events {
						if e.Name == eventToken {
							t.Fatalf("a token event made through AddEvent although packed")
						}
					}
					events = append(slices.Clone(events), telemetry.UnpackTokenEvents(s.Attributes())...)
				}
				tokens := 0
				step := max(tc.ev.Every, 1)
				for _, e := range events {
					if e.Name != eventToken {
						continue
					}
					for _, kv := range e.Attributes {
						if kv.Key == attrChunkIndex && kv.Value.AsInt64() != int64(tokens*step) {
							t.Errorf("token event %d has index %d, want %d", tokens, kv.Value.AsInt64(), tokens*step)
						}
					}
					if e.Time.Before(events[0].Time) || e.Time.After(s.EndTime()) {
						t.Errorf("token event %d at %v, outside first token %v .. end %v", tokens, e.Time, events[0].Time, s.EndTime())
					}
					tokens++
				}
				if tokens != tc.wantEvents || events[0].Name != eventFirstToken {
					t.Errorf("%d token events (first %q), want %d", tokens, events[0].Name, tc.wantEvents)
				}
				lo, ok := attrs(s)[attrEventsLeftOut]
				if tc.leftOut < 0 && ok || tc.leftOut >= 0 && lo.AsInt64() != tc.leftOut {
					t.Errorf("left out = %v (present %v), want %d", lo.AsInt64(), ok, tc.leftOut)
				}
			})
		}
	}
}

func TestContentCapturedOnlyWithOptIn(t *testing.T) {
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) { chunked(w, ndjson, ollamaStream(2), 0, 0) })
	rg := newRig(t, Config{CaptureContent: true}, srv.URL)
	rg.do(t, "POST", "/api/chat", `{"model":"m1","messages":[{"role":"user","content":"secret prompt"}]}`, nil)
	a := attrs(rg.span(t, "chat"))
	if !strings.Contains(a[attrPrompt].AsString(), "secret prompt") || a[attrCompletion].AsString() != "t0t1" {
		t.Errorf("prompt %q completion %q", a[attrPrompt].AsString(), a[attrCompletion].AsString())
	}
}

func TestTraceContextContinuedAndInjected(t *testing.T) {
	got := make(chan string, 1)
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Traceparent")
		chunked(w, ndjson, ollamaStream(1), 0, 0)
	})
	rg := newRig(t, Config{}, srv.URL)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	rg.do(t, "POST", "/api/chat", `{"model":"m1"}`, map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"})
	server := rg.span(t, "chat")
	client := rg.span(t, "POST")
	if server.SpanContext().TraceID().String() != traceID || server.Parent().SpanID().String() != parentID || !server.Parent().IsRemote() {
		t.Errorf("server span %v parent %v: incoming trace context not continued", server.SpanContext(), server.Parent())
	}
	if client.SpanKind() != trace.SpanKindClient || client.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("upstream call is %v with parent %v, want a CLIENT child of the server span", client.SpanKind(), client.Parent().SpanID())
	}
	want := "00-" + traceID + "-" + client.SpanContext().SpanID().String() + "-01"
	if tp := <-got; tp != want {
		t.Errorf("upstream got traceparent %q, want %q", tp, want)
	}
	if client.EndTime().Before(server.Events()[0].Time) {
		t.Error("client span ended before the stream did")
	}
}

func TestNonStreamingAndEmbeddingsAreMeasured(t *testing.T) {
	cases := passThroughCases()
	srv := fakeUpstream(t, (&cannedUpstream{resp: cases}).ServeHTTP)
	rg := newRig(t, Config{}, srv.URL)
	rg.do(t, "POST", "/v1/completions", `{"model":"m1","prompt":"hi"}`, nil)
	rg.do(t, "POST", "/api/embed", `{"model":"m1","input":"hi"}`, nil)
	rg.do(t, "POST", "/api/generate", `{"model":"m1","prompt":"hi","stream":false}`, nil)

	servers := 0
	for _, sp := range rg.spans.Ended() {
		a := attrs(sp)
		if sp.SpanKind() != trace.SpanKindServer {
			continue
		}
		servers++
		if _, isErr := a[semconv.ErrorTypeKey]; isErr {
			t.Errorf("%s: error.type %v", sp.Name(), a[semconv.ErrorTypeKey].Emit())
		}
		switch {
		case sp.Name() == "embeddings m1":
			if len(sp.Events()) != 0 {
				t.Errorf("embeddings span has events %v", sp.Events())
			}
		case a[semconv.GenAIRequestStreamKey].AsBool():
			t.Errorf("%s: stream flag set for a non-streaming request", sp.Name())
		case a[semconv.GenAIUsageOutputTokensKey].AsInt64() != 2:
			t.Errorf("%s: output tokens %d, want 2 (usage / eval_count)", sp.Name(), a[semconv.GenAIUsageOutputTokensKey].AsInt64())
		}
	}
	if servers != 3 {
		t.Errorf("%d server spans, want 3", servers)
	}
}

// TestWholeAnswerHasNoTimeToFirstChunk: the client convention records time
// to first chunk for streamed answers only; a whole JSON answer still counts
// in duration and token usage.
func TestWholeAnswerHasNoTimeToFirstChunk(t *testing.T) {
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"model":"m1","message":{"role":"assistant","content":"hi"},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}`)
	})
	rg := newRig(t, Config{}, srv.URL)
	if resp, body := rg.do(t, "POST", "/api/chat", `{"model":"m1","stream":false}`, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	ms := rg.metrics(t)
	if _, ok := ms["gen_ai.client.operation.time_to_first_chunk"]; ok {
		t.Error("a whole answer recorded a time to first chunk")
	}
	if d := histPoints(t, ms, "gen_ai.client.operation.duration"); len(d) != 1 || d[0].Count != 1 {
		t.Errorf("duration points %+v", d)
	}
	if u := tokenUsage(t, ms); u["output"] != 2 || u["input"] != 3 {
		t.Errorf("token usage %v, want 3 in and 2 out", u)
	}
}

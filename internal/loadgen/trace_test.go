package loadgen

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestEveryRequestIsAClientSpan(t *testing.T) {
	fake := &fakeLLM{api: "openai", chunks: 3}
	srv := newFakeLLM(t, fake)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	o := testOptions(srv.URL, "openai")
	o.Requests, o.MaxTokens, o.TracerProvider = 2, 9, tp
	rs, fs := collect(t, context.Background(), o)
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	byTrace := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byTrace[s.SpanContext().TraceID().String()] = s
	}
	for i, f := range fs {
		s, ok := byTrace[f.TraceID]
		if !ok {
			t.Fatalf("request %d: trace id %s has no span", i, f.TraceID)
		}
		h, _ := fake.request(rs[i].Seq)
		if tp := h.Get("Traceparent"); !strings.Contains(tp, f.TraceID) || !strings.Contains(tp, s.SpanContext().SpanID().String()) {
			t.Errorf("traceparent %q is not span %s", tp, s.SpanContext().SpanID())
		}
		if s.Name() != "chat m" || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %q kind %v, want \"chat m\" client", s.Name(), s.SpanKind())
		}
		want := map[attribute.Key]attribute.Value{
			"gen_ai.operation.name":               attribute.StringValue("chat"),
			"gen_ai.provider.name":                attribute.StringValue("openai"),
			"gen_ai.request.model":                attribute.StringValue("m"),
			"gen_ai.request.max_tokens":           attribute.IntValue(9),
			"gen_ai.usage.input_tokens":           attribute.IntValue(17),
			"gen_ai.usage.output_tokens":          attribute.IntValue(6),
			"gen_ai.response.finish_reasons":      attribute.StringSliceValue([]string{"length"}),
			"gen_ai.response.model":               attribute.StringValue("m"),
			"gen_ai.response.time_to_first_chunk": attribute.Float64Value(f.FirstToken.Seconds()),
		}
		got := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes() {
			got[kv.Key] = kv.Value
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("span attribute %s = %v, want %v", k, got[k].Emit(), v.Emit())
			}
		}
	}
}

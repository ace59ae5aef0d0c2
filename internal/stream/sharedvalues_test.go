package stream

import (
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestStreamsShareTheirModelName: two streams of the same model hold one
// copy of its name, which their chunks compare against.
func TestStreamsShareTheirModelName(t *testing.T) {
	measure := func() *Measurement {
		m := NewMeter(Config{API: APIOpenAI, Start: t0, Clock: func() time.Time { return t0.Add(time.Millisecond) }})
		m.Response(200, "text/event-stream")
		m.Write([]byte(sse(`{"model":"shared-model-x","choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}`) + sse("[DONE]")))
		return m.Finish(nil)
	}
	a, b := measure(), measure()
	if a.Model != "shared-model-x" || a.FinishReason != "stop" {
		t.Fatalf("model %q, finish reason %q", a.Model, a.FinishReason)
	}
	if unsafe.StringData(a.Model) != unsafe.StringData(b.Model) {
		t.Error("the two streams hold copies of their own of the model name")
	}
	if unsafe.StringData(a.FinishReason) != unsafe.StringData(b.FinishReason) {
		t.Error("the two streams hold copies of their own of the finish reason")
	}
}

// TestLongValuesAreNotShared: a value longer than maxSharedValue comes
// back whole and is not kept.
func TestLongValuesAreNotShared(t *testing.T) {
	before := sharedValues.Len()
	long := strings.Repeat("m", maxSharedValue+1)
	if got := sharedValue([]byte(long)); got != long {
		t.Fatal("a long value came back changed")
	}
	if sharedValues.Len() != before {
		t.Error("a value longer than maxSharedValue was kept")
	}
}

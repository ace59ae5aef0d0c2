package stream

import (
	"strconv"
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

// TestSharedValuesAreBounded: a server sending ever new values fills the
// table only up to its bound, and a long value is never kept.
func TestSharedValuesAreBounded(t *testing.T) {
	tab := stringTable{m: make(map[string]string)}
	for i := range maxSharedValues + 100 {
		v := "model-" + strconv.Itoa(i)
		if got := tab.get([]byte(v)); got != v {
			t.Fatalf("got %q for %q", got, v)
		}
	}
	if len(tab.m) != maxSharedValues {
		t.Errorf("%d values kept, want the bound %d", len(tab.m), maxSharedValues)
	}
	long := strings.Repeat("m", maxSharedValue+1)
	if got := tab.get([]byte(long)); got != long {
		t.Fatal("a long value came back changed")
	}
	if _, kept := tab.m[long]; kept {
		t.Error("a value longer than maxSharedValue was kept")
	}
}

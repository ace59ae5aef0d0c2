package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// orderWriter notes, at every write to the client, how many tokens the
// exchange had measured and when the write began; each write takes a while,
// as a slow client's does.
type orderWriter struct {
	ex       *exchange
	measured []int
	began    []time.Time
}

func (w *orderWriter) Write(p []byte) (int, error) {
	w.measured = append(w.measured, len(w.ex.marks))
	w.began = append(w.began, time.Now())
	time.Sleep(2 * time.Millisecond)
	return len(p), nil
}

// TestTokensReachTheClientBeforeTheyAreMeasured: the forwarder writes each
// chunk to the client before the Meter reads it, and the chunk's time is
// still when it arrived, not when it was measured.
func TestTokensReachTheClientBeforeTheyAreMeasured(t *testing.T) {
	const tokens = 5
	var chunks [][]byte
	for i := range tokens {
		chunks = append(chunks, fmt.Appendf(nil, `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":" t%d"},"finish_reason":null}]}`+"\n\n", i))
	}
	chunks = append(chunks, []byte("data: [DONE]\n\n"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	g, err := New(Config{Upstreams: []string{"http://127.0.0.1:1"}, TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := stream.EndpointOf("/v1/chat/completions")
	ex := &exchange{g: g, start: time.Now(), ep: ep, provider: "openai", model: "m"}
	ctx, span := g.tracer.Start(context.Background(), "chat m")
	ex.span, ex.recording = span, true
	ex.initMeter()
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(&chunkReader{chunks: chunks}), Request: (&http.Request{}).WithContext(context.WithValue(ctx, exchangeKey{}, ex))}
	if err := g.tapResponse(resp); err != nil {
		t.Fatal(err)
	}
	w := &orderWriter{ex: ex}
	if err := g.copyBody(w, resp.Body, func() {}); err != nil {
		t.Fatal(err)
	}
	for i := range tokens {
		if w.measured[i] != i {
			t.Errorf("write %d: %d tokens measured before it, want %d (the chunk measured before it reached the client)", i, w.measured[i], i)
		}
	}
	if len(ex.marks) != tokens {
		t.Errorf("%d tokens measured after the copy, want %d", len(ex.marks), tokens)
	}
	if ex.firstAt.After(w.began[0]) {
		t.Errorf("first token at %v, after its write began at %v: timed when measured, not when it arrived", ex.firstAt, w.began[0])
	}
	ex.finish(ctx, nil)
}

// TestReadsSkipTheCloseHooks: reads of an upstream body go straight to the
// transport's body, past the wrappers that act only on Close, and closing
// still ends the client span and counts the request out of its upstream.
func TestReadsSkipTheCloseHooks(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	_, span := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("t").Start(context.Background(), "POST")
	inner := io.NopCloser(&chunkReader{chunks: [][]byte{[]byte("data: 1\n\n")}})
	u := new(upstream)
	u.inflight.Store(1)
	var body io.ReadCloser = &releaseOnClose{ReadCloser: &endSpanOnClose{ReadCloser: inner, span: span}, u: u}
	if got := readsOf(body); got != io.Reader(inner) {
		t.Fatalf("reads go to %T, want the transport's body %T", got, inner)
	}
	if got := readsOf(inner); got != io.Reader(inner) {
		t.Fatalf("a body without close hooks: reads go to %T, want itself", got)
	}
	if err := body.Close(); err != nil {
		t.Fatal(err)
	}
	if n := u.inflight.Load(); n != 0 {
		t.Errorf("upstream in flight after Close = %d, want 0", n)
	}
	if n := len(rec.Ended()); n != 1 {
		t.Errorf("client spans ended after Close = %d, want 1", n)
	}
}

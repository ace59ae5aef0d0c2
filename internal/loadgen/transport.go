package loadgen

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// errBodyClosed ends a measurement whose body was closed before its end.
var errBodyClosed = errors.New("response body closed before its end")

// figureTable hands the figures of each request from the transport to the
// result loop, by vegeta sequence number. vegeta puts Result.Headers in
// place only when it has read the whole body without error, so a request
// that fails midway reaches the loop only through this table.
type figureTable struct {
	mu sync.Mutex
	m  map[uint64]Figures
}

func (t *figureTable) put(seq uint64, f Figures) {
	t.mu.Lock()
	t.m[seq] = f
	t.mu.Unlock()
}

func (t *figureTable) take(seq uint64) (Figures, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.m[seq]
	delete(t.m, seq)
	return f, ok
}

// tapTransport measures every response with a stream.Meter as the body is
// read, makes each request a CLIENT span and sends its traceparent.
type tapTransport struct {
	next     http.RoundTripper
	api      stream.API
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	spanName string
	attrs    []attribute.KeyValue
	abort    context.Context // its end cancels every request in flight
	stop     context.Context // its end stops new requests: none is sent after
	table    *figureTable

	// window tells warm-up hits and their schedule; began is the attack's
	// start. scenario is Options.Scenario: warm-up requests are sent as
	// scenario + WarmupSuffix, so the proxy's metrics keep them apart.
	window   *windowPacer
	began    time.Time
	scenario string
}

// WarmupSuffix ends the scenario name of warm-up requests.
const WarmupSuffix = "/warmup"

// lateBy is how long after its scheduled arrival hit seq is sent at now;
// 0 in a closed loop or when on time (within lateTolerance).
func (t *tapTransport) lateBy(seq uint64, now time.Time) time.Duration {
	if t.window == nil || t.window.scheduled == nil {
		return 0
	}
	due, ok := t.window.scheduled(seq)
	if !ok {
		return 0
	}
	if late := now.Sub(t.began.Add(due)); late > lateTolerance {
		return late
	}
	return 0
}

// lateTolerance is the scheduling jitter not counted as a late arrival.
const lateTolerance = time.Millisecond

// errStopped is a request vegeta issued after the run was told to stop; it is
// never sent, and Run drops its result.
var errStopped = errors.New("loadgen: run stopped; request not sent")

func (t *tapTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.stop.Err() != nil || t.abort.Err() != nil {
		return nil, errStopped
	}
	seq, _ := strconv.ParseUint(req.Header.Get("X-Vegeta-Seq"), 10, 64)
	ctx, cancel := context.WithCancel(req.Context())
	stopAbort := context.AfterFunc(t.abort, cancel)
	ctx, span := t.tracer.Start(ctx, t.spanName, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(t.attrs...))
	req = req.Clone(ctx)
	t.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	// One instant decides whether the request is warm-up, here and when Run
	// reads its result (Figures.Start), so the request limit counts what Run
	// keeps.
	now := time.Now()
	if t.window != nil {
		t.window.sent(seq, now)
		if t.scenario != "" && t.window.isWarmup(seq, now) {
			req.Header.Set(ScenarioHeader, t.scenario+WarmupSuffix)
		}
	}
	tb := &tapBody{seq: seq, table: t.table, span: span, traceID: span.SpanContext().TraceID().String(),
		release: func() { stopAbort(); cancel() }, late: t.lateBy(seq, time.Now())}
	tb.meter = stream.NewMeter(stream.Config{API: t.api, Start: now})
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		tb.finish(err)
		return nil, err
	}
	tb.meter.Response(resp.StatusCode, resp.Header.Get("Content-Type"))
	tb.rc, tb.header = resp.Body, resp.Header
	resp.Body = tb
	return resp, nil
}

// tapBody feeds the body to the Meter as vegeta reads it. At EOF it writes
// the figures into the response header (vegeta copies that header into
// Result.Headers after draining the body) and into the figure table.
type tapBody struct {
	seq     uint64
	rc      io.ReadCloser
	header  http.Header
	meter   *stream.Meter
	table   *figureTable
	span    trace.Span
	traceID string
	release func()
	late    time.Duration

	mu       sync.Mutex
	n        int64
	finished bool
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > 0 && !b.finished {
		b.meter.Write(p[:n])
		b.n += int64(n)
	}
	if err != nil && !b.finished {
		b.finishLocked(err)
	}
	return n, err
}

func (b *tapBody) Close() error {
	b.mu.Lock()
	if !b.finished {
		b.finishLocked(errBodyClosed)
	}
	b.mu.Unlock()
	return b.rc.Close()
}

func (b *tapBody) finish(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishLocked(err)
}

func (b *tapBody) finishLocked(err error) {
	b.finished = true
	m := b.meter.Finish(err)
	f := figuresFrom(m, b.traceID, b.n)
	f.Late = b.late
	if errors.Is(err, io.EOF) && b.header != nil {
		_ = f.Encode(b.header) // the table below carries them too
	}
	b.table.put(b.seq, f)
	endSpan(b.span, &f)
	b.release()
}

// endSpan sets the response attributes of METRICS.md and ends the span.
func endSpan(span trace.Span, f *Figures) {
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := []attribute.KeyValue{
		semconv.GenAIUsageInputTokens(f.InputTokens),
		semconv.GenAIUsageOutputTokens(f.OutputTokens),
	}
	if f.Status > 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(f.Status))
	}
	if f.Model != "" {
		attrs = append(attrs, semconv.GenAIResponseModel(f.Model))
	}
	if f.FinishReason != "" {
		attrs = append(attrs, semconv.GenAIResponseFinishReasons(f.FinishReason))
	}
	if ttft, ok := f.TTFT(); ok {
		attrs = append(attrs, semconv.GenAIResponseTimeToFirstChunk(ttft.Seconds()))
	}
	span.SetAttributes(attrs...)
	if !f.OK() {
		span.SetAttributes(semconv.ErrorTypeKey.String(f.ErrorType))
		span.SetStatus(codes.Error, f.Error)
	}
	span.End()
}

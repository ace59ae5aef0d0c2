package gateway

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/stream"
	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// Span attributes and events of tokentrace's own (not gen_ai.*).
const (
	attrScenario        = attribute.Key("tokentrace.scenario")
	attrPrompt          = attribute.Key("tokentrace.content.request")
	attrCompletion      = attribute.Key("tokentrace.content.completion")
	attrEstimated       = attribute.Key("tokentrace.usage.output_tokens_estimated")
	attrOutputChunks    = attribute.Key("tokentrace.output_chunks")
	attrEventsLeftOut   = attribute.Key("tokentrace.token_events.left_out")
	attrChunkIndex      = telemetry.ChunkIndexKey
	attrChunkTokens     = telemetry.ChunkTokensKey
	attrChunkText       = attribute.Key("tokentrace.chunk.text")
	attrErrorMessage    = attribute.Key("tokentrace.error.message")
	attrOllamaLoad      = attribute.Key("tokentrace.ollama.load_duration")
	attrOllamaPromptN   = attribute.Key("tokentrace.ollama.prompt_eval_count")
	attrOllamaPromptDur = attribute.Key("tokentrace.ollama.prompt_eval_duration")
	attrOllamaEvalN     = attribute.Key("tokentrace.ollama.eval_count")
	attrOllamaEvalDur   = attribute.Key("tokentrace.ollama.eval_duration")
	attrOllamaTotal     = attribute.Key("tokentrace.ollama.total_duration")
	attrOllamaQueueWait = attribute.Key("tokentrace.ollama.queue_wait")
	attrOllamaDecode    = attribute.Key("tokentrace.ollama.decode_speed")

	eventFirstToken = "first_token"
	eventToken      = telemetry.TokenEventName
)

// maxContent bounds captured prompt and completion text (bytes).
const maxContent = 64 << 10

// MaxAttributeLen bounds every string a client (or an upstream) chooses
// that reaches a span name or attribute, such as the model name (bytes);
// longer ones are cut, at a character boundary.
const MaxAttributeLen = 256

// attrUnmeasured says why a response was forwarded but not measured (an
// encoding the proxy cannot decode).
const attrUnmeasured = attribute.Key("tokentrace.unmeasured")

// exchange is one measured inference request. It is used by the goroutine
// serving the request only.
type exchange struct {
	g         *Gateway
	start     time.Time
	ep        stream.Endpoint
	req       stream.Request
	model     string // bounded, for labels
	scenario  string
	provider  string
	upstream  *upstream // nil until the pool chose one
	span      trace.Span
	recording bool
	// What every chunk of the answer touches lives in the exchange itself
	// (the meter, the body's tap and idle timeout, the first token marks):
	// among hundreds of streams each chunk finds its stream's state out of
	// the caches and the TLB (emptied by every system call on a kernel with
	// page-table isolation and no PCID), and each separate object costs a
	// miss of its own.
	meter     stream.Meter
	tapBody   bodyTap
	idle      idleBody
	marksHead [32]uint32

	status      int
	sawEOF      bool
	readErr     error  // reading the upstream body failed
	upstreamErr error  // no response: refused, timeout, canceled
	proxyStatus int    // the status the proxy answered itself (502, 504, 499)
	unmeasured  string // why the body was not measured; "" when it was

	marks       []uint32  // token events to add when the span ends
	firstAt     time.Time // the first token's arrival
	texts       []string  // their text, with CaptureContent
	leftOut     int       // output chunks without an event
	completion  strings.Builder
	activeAttrs metric.MeasurementOption
	finished    bool
}

// Token events wait for the span's end as 4-byte marks, microseconds since
// the first token (up to 71 minutes), instead of full SDK events (~200
// bytes each), so a long answer does not grow what each in-flight stream
// holds. The i-th mark is output chunk i, or i×N with every:N.
const maxMark = 1<<32 - 1

// onChunk is the Meter's callback for every output-carrying chunk.
func (ex *exchange) onChunk(ev stream.ChunkEvent) {
	if !ex.recording {
		return
	}
	if ev.Index == 0 {
		ex.firstAt = ev.At
		ex.span.AddEvent(eventFirstToken, trace.WithTimestamp(ev.At))
	}
	capture := ex.g.cfg.CaptureContent
	if capture && ex.completion.Len() < maxContent {
		ex.completion.WriteString(clip(ev.Text, maxContent-ex.completion.Len()))
	}
	te := ex.g.cfg.TokenEvents
	want := te.Mode == TokenEventsAll || (te.Mode == TokenEventsEveryN && ev.Index%te.Every == 0)
	if !want || len(ex.marks) >= te.Cap {
		ex.leftOut++
		return
	}
	us := ev.At.Sub(ex.firstAt).Microseconds()
	if ex.marks == nil {
		ex.marks = ex.marksHead[:0]
	}
	ex.marks = append(ex.marks, uint32(min(max(us, 0), maxMark)))
	if capture {
		ex.texts = append(ex.texts, ev.Text)
	}
}

// addTokenEvents puts the token events on the span: packed into one
// attribute when TokenEvents.Packed allows, else through AddEvent. The SDK copies an
// event's attributes and keeps none of its options, so one options slice
// serves every event of the span and the attributes of the first
// DefaultTokenEventCap chunk indexes come ready-made (tokenEventAttrs):
// per event, only its timestamp is new.
func (ex *exchange) addTokenEvents() {
	step := 1
	if ex.g.cfg.TokenEvents.Mode == TokenEventsEveryN {
		step = ex.g.cfg.TokenEvents.Every
	}
	if ex.texts == nil && ex.g.cfg.TokenEvents.Packed {
		if len(ex.marks) > 0 {
			ex.span.SetAttributes(telemetry.PackTokenEvents(ex.firstAt, step, ex.marks))
		}
		ex.marks = nil
		return
	}
	opts := make([]trace.EventOption, 2)
	for i, us := range ex.marks {
		// Neither API states a per-chunk token count; servers stream one token per chunk.
		if ex.texts != nil {
			opts[1] = trace.WithAttributes(attrChunkIndex.Int(i*step), attrChunkTokens.Int(1), attrChunkText.String(ex.texts[i]))
		} else {
			opts[1] = tokenEventAttrs(i * step)
		}
		opts[0] = trace.WithTimestamp(ex.firstAt.Add(time.Duration(us) * time.Microsecond))
		ex.span.AddEvent(eventToken, opts...)
	}
	ex.marks, ex.texts = nil, nil
}

// tokenEvents holds the attributes of the token event of each chunk index
// below DefaultTokenEventCap, made once per process.
var tokenEvents struct {
	once  sync.Once
	attrs []trace.EventOption
}

// tokenEventAttrs is the attribute option of the token event of chunk
// index: tokentrace.chunk.index and tokentrace.chunk.tokens (1).
func tokenEventAttrs(index int) trace.EventOption {
	tokenEvents.once.Do(func() {
		tokenEvents.attrs = make([]trace.EventOption, DefaultTokenEventCap)
		for i := range tokenEvents.attrs {
			tokenEvents.attrs[i] = trace.WithAttributes(attrChunkIndex.Int(i), attrChunkTokens.Int(1))
		}
	})
	if index < len(tokenEvents.attrs) {
		return tokenEvents.attrs[index]
	}
	return trace.WithAttributes(attrChunkIndex.Int(index), attrChunkTokens.Int(1))
}

// finish ends the measurement, records the metrics and ends the span.
func (ex *exchange) finish(ctx context.Context, err error) {
	if ex.finished {
		return
	}
	ex.finished = true
	ex.tapBody.stop(false) // a tap never set up has nothing to stop
	m := ex.meter.Finish(err)
	if ex.unmeasured != "" {
		// Bytes the proxy could not read say nothing about the stream: only
		// what the transport saw (cut, timeout, cancel, status) is an error.
		switch m.ErrorType {
		case stream.ErrIncomplete, stream.ErrMalformed, stream.ErrInStream:
			m.ErrorType, m.Error = "", ""
		}
	}
	ctx = context.WithoutCancel(ctx) // the client may be gone; the figures are still wanted
	ex.record(ctx, m)
	if ex.recording {
		ex.addFirstContent(m)
		ex.addTokenEvents()
		ex.annotate(m)
	}
	ex.span.End(trace.WithTimestamp(m.End))
}

// labelKey is the request's shared metric labels.
func (ex *exchange) labelKey(m *stream.Measurement) labelKey {
	model := ex.model
	if model == "" {
		model = ex.g.models.value(boundModel(m.Model))
	}
	k := labelKey{kind: setShared, operation: ex.ep.Operation, provider: ex.provider, model: model}
	if u := ex.upstream; u != nil { // configured upstreams only: a bounded set
		k.upstream, k.host, k.port = true, u.host, u.port
	}
	if ex.scenario != "" {
		k.scenario = ex.g.scenarios.value(ex.scenario)
	}
	return k
}

// record puts the figures of docs/METRICS.md into the instruments. Errors
// are left out of latency figures, never out of the duration count or
// token usage.
func (ex *exchange) record(ctx context.Context, m *stream.Measurement) {
	in, sets := ex.g.inst, &ex.g.labelSets
	key := ex.labelKey(m)
	ok := m.OK()
	dur := key
	dur.kind = setDuration
	if !ok {
		dur.errorType = m.ErrorType
	}
	in.Duration.Record(ctx, m.E2E().Seconds(), sets.get(dur))
	set := sets.get(key)
	if ok {
		// The convention's time to first chunk is for streamed answers only;
		// a whole JSON answer has no first chunk to speak of.
		if ttft, has := m.TTFT(); has && m.Format != stream.FormatJSON {
			in.TTFT.Record(ctx, ttft.Seconds(), set)
		}
		if tpot, has := m.TPOT(); has {
			in.TPOT.Record(ctx, tpot.Seconds(), set)
		}
		ex.recordThinking(ctx, m, set)
		// One gap per request may carry an exemplar (the trace); offering
		// every gap to the exemplar reservoir would more than double the
		// cost of recording it.
		plain := context.Background()
		opts := []metric.RecordOption{set} // one slice for every gap, not one per call
		for i, gap := range m.Gaps {
			if i == 0 {
				in.ChunkGap.Record(ctx, gap.Seconds(), opts...)
			} else {
				in.ChunkGap.Record(plain, gap.Seconds(), opts...)
			}
		}
		if o := m.Ollama; o != nil {
			in.QueueWait.Record(ctx, nanos(o.QueueWait()), set)
			in.LoadDuration.Record(ctx, nanos(o.LoadDuration), set)
			in.PromptEvalTime.Record(ctx, nanos(o.PromptEvalDuration), set)
		}
	}
	if !m.TokensEstimated && m.InputTokens > 0 {
		k := key
		k.kind = setInputTokens
		in.TokenUsage.Record(ctx, int64(m.InputTokens), sets.get(k))
	}
	if m.OutputTokens > 0 {
		k := key
		k.kind, k.estimated = setOutputTokens, m.TokensEstimated
		in.TokenUsage.Record(ctx, int64(m.OutputTokens), sets.get(k))
	}
}

// annotate puts the measurement on the span.
func (ex *exchange) annotate(m *stream.Measurement) {
	s := ex.span
	attrs := []attribute.KeyValue{
		semconv.GenAIProviderNameKey.String(ex.provider),
		attrOutputChunks.Int(m.OutputChunks),
		semconv.GenAIUsageOutputTokensKey.Int(m.OutputTokens),
	}
	attrs = append(attrs, apiAttrs(m)...)
	switch {
	case m.Status > 0:
		attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(m.Status))
	case ex.proxyStatus > 0:
		attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(ex.proxyStatus))
	}
	if m.Model != "" {
		attrs = append(attrs, semconv.GenAIResponseModelKey.String(clipText(m.Model, MaxAttributeLen)))
	}
	if ex.unmeasured != "" {
		attrs = append(attrs, attrUnmeasured.String(ex.unmeasured))
	}
	if !m.TokensEstimated {
		attrs = append(attrs, semconv.GenAIUsageInputTokensKey.Int(m.InputTokens))
	} else {
		attrs = append(attrs, attrEstimated.Bool(true))
	}
	if m.FinishReason != "" {
		attrs = append(attrs, semconv.GenAIResponseFinishReasonsKey.StringSlice([]string{m.FinishReason}))
	}
	if ttft, ok := m.TTFT(); ok {
		attrs = append(attrs, semconv.GenAIResponseTimeToFirstChunkKey.Float64(ttft.Seconds()))
	}
	if ex.leftOut > 0 || ex.g.cfg.TokenEvents.Mode != TokenEventsAll {
		attrs = append(attrs, attrEventsLeftOut.Int(ex.leftOut))
	}
	if o := m.Ollama; o != nil {
		attrs = append(attrs,
			attrOllamaLoad.Float64(nanos(o.LoadDuration)),
			attrOllamaPromptN.Int(o.PromptEvalCount),
			attrOllamaPromptDur.Float64(nanos(o.PromptEvalDuration)),
			attrOllamaEvalN.Int(o.EvalCount),
			attrOllamaEvalDur.Float64(nanos(o.EvalDuration)),
			attrOllamaTotal.Float64(nanos(o.TotalDuration)),
			attrOllamaQueueWait.Float64(nanos(o.QueueWait())),
			attrOllamaDecode.Float64(o.DecodeSpeed()))
	}
	if ex.g.cfg.CaptureContent && ex.completion.Len() > 0 {
		attrs = append(attrs, attrCompletion.String(ex.completion.String()))
	}
	if !m.OK() {
		attrs = append(attrs, semconv.ErrorTypeKey.String(m.ErrorType))
		if m.Error != "" {
			attrs = append(attrs, attrErrorMessage.String(m.Error))
		}
		s.SetStatus(codes.Error, m.ErrorType)
	}
	s.SetAttributes(attrs...)
}

func nanos(n int64) float64 { return float64(n) / 1e9 }

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// clipText cuts s to at most n bytes without splitting a UTF-8 character.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

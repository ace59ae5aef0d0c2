package telemetry

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/mem"
)

// spanExporter is otlptrace.Exporter with a cheaper conversion of spans
// into OTLP messages. The SDK's converter allocates three or four objects
// per attribute and one per event; a span with a token event per chunk has
// two attributes per token, so that was most of the proxy's allocations
// (and their collection) per streamed token. This one builds the same
// messages, field for field, from a few slabs per batch. The client (gRPC
// or HTTP, configured from the OTEL_EXPORTER_OTLP_* settings as before)
// sends them unchanged.
type spanExporter struct {
	client otlptrace.Client
	// direct, over gRPC, is the connection's codec: each batch is written
	// straight from the SDK's spans into the request's bytes, and the
	// client is handed a placeholder for them.
	direct     *traceCodec
	maxRequest int // bytes, with direct
	mu         sync.Mutex
	started    bool
	stopOnce   sync.Once
}

func newSpanExporter(ctx context.Context, client otlptrace.Client) (*spanExporter, error) {
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("start OTLP span client: %w", err)
	}
	return &spanExporter{client: client, started: true}, nil
}

// ExportSpans sends one batch.
func (e *spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.direct != nil {
		return e.exportDirect(ctx, spans)
	}
	rs := otlpSpans(spans)
	if len(rs) == 0 {
		return nil
	}
	if err := e.client.UploadTraces(ctx, rs); err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

// maxRequestSize is the gRPC client's default bound on a request
// (otlptracegrpc.WithMaxRequestSize), which it checks on the placeholder
// only, so exportDirect checks it on the bytes.
const maxRequestSize = 64 << 20

// exportDirect sends one batch written straight from the SDK's spans. The
// placeholder holds as many (empty) spans as the batch, so what the client
// counts of it is right.
func (e *spanExporter) exportDirect(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	groups := groupSpans(spans)
	if len(groups) == 0 {
		return nil
	}
	n := 0
	for _, rg := range groups {
		for _, sg := range rg.scopes {
			n += len(sg.spans)
		}
	}
	key := &tracepb.ResourceSpans{ScopeSpans: []*tracepb.ScopeSpans{{Spans: make([]*tracepb.Span, n)}}}
	enc := getWireEncoder()
	size := enc.sizeGroups(groups)
	if size > e.maxRequest {
		enc.release()
		return fmt.Errorf("traces export: request message too large: %d bytes, exceeded %d bytes", size, e.maxRequest)
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = enc.appendGroups((*buf)[:0], groups)
	enc.release()
	e.direct.hold(key, mem.NewBuffer(buf, pool))
	err := e.client.UploadTraces(ctx, []*tracepb.ResourceSpans{key})
	e.direct.drop(key)
	if err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

// Shutdown stops the client; later exports fail.
func (e *spanExporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		return nil
	}
	var err error
	e.stopOnce.Do(func() {
		err = e.client.Stop(ctx)
		e.mu.Lock()
		e.started = false
		e.mu.Unlock()
	})
	return err
}

// slabs hand out OTLP messages from slices sized for one batch.
type slabs struct {
	kvs    []commonpb.KeyValue
	kvPtrs []*commonpb.KeyValue
	anys   []commonpb.AnyValue
	ints   []commonpb.AnyValue_IntValue
	strs   []commonpb.AnyValue_StringValue
	dbls   []commonpb.AnyValue_DoubleValue
	bools  []commonpb.AnyValue_BoolValue
	events []tracepb.Span_Event
	evPtrs []*tracepb.Span_Event
}

// newSlabs sizes the slabs for spans: every attribute of every span and
// event, by type.
func newSlabs(spans []sdktrace.ReadOnlySpan) *slabs {
	var attrs, events, ints, strs, dbls, bools int
	count := func(kvs []attribute.KeyValue) {
		attrs += len(kvs)
		for _, kv := range kvs {
			switch kv.Value.Type() {
			case attribute.INT64:
				ints++
			case attribute.STRING:
				strs++
			case attribute.FLOAT64:
				dbls++
			case attribute.BOOL:
				bools++
			}
		}
	}
	for _, s := range spans {
		if s == nil {
			continue
		}
		if res := s.Resource(); res != nil {
			count(res.Attributes())
		}
		count(s.Attributes())
		evs := s.Events()
		events += len(evs)
		if n := packedOf(s.Attributes()).len(); n > 0 {
			events, attrs, ints = events+n, attrs+2*n, ints+2*n
		}
		for i := range evs {
			count(evs[i].Attributes)
		}
	}
	return &slabs{
		kvs: make([]commonpb.KeyValue, 0, attrs), kvPtrs: make([]*commonpb.KeyValue, 0, attrs),
		anys: make([]commonpb.AnyValue, 0, attrs), ints: make([]commonpb.AnyValue_IntValue, 0, ints),
		strs: make([]commonpb.AnyValue_StringValue, 0, strs), dbls: make([]commonpb.AnyValue_DoubleValue, 0, dbls),
		bools:  make([]commonpb.AnyValue_BoolValue, 0, bools),
		events: make([]tracepb.Span_Event, 0, events), evPtrs: make([]*tracepb.Span_Event, 0, events),
	}
}

// grab returns the next element of *s, adding a small slab when the count
// was short (values inside slices and maps, which are not counted).
func grab[T any](s *[]T) *T {
	if len(*s) == cap(*s) {
		*s = make([]T, 0, 16)
	}
	*s = (*s)[:len(*s)+1]
	return &(*s)[len(*s)-1]
}

// keyValues converts attributes as tracetransform.KeyValues does. Their
// range of kvPtrs is taken before the values are converted, since a map
// value converts its own attributes first.
func (sl *slabs) keyValues(kvs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	if cap(sl.kvPtrs)-len(sl.kvPtrs) < len(kvs) {
		sl.kvPtrs = make([]*commonpb.KeyValue, 0, max(len(kvs), cap(sl.kvPtrs)))
	}
	start := len(sl.kvPtrs)
	sl.kvPtrs = sl.kvPtrs[:start+len(kvs)]
	out := sl.kvPtrs[start:len(sl.kvPtrs):len(sl.kvPtrs)]
	for i, kv := range kvs {
		p := grab(&sl.kvs)
		p.Key = string(kv.Key)
		p.Value = sl.value(kv.Value)
		out[i] = p
	}
	return out
}

// value converts a value as tracetransform.Value does; the four scalar
// types come from the slabs, the rest as the SDK's converter makes them.
func (sl *slabs) value(v attribute.Value) *commonpb.AnyValue {
	av := grab(&sl.anys)
	switch v.Type() {
	case attribute.INT64:
		w := grab(&sl.ints)
		w.IntValue = v.AsInt64()
		av.Value = w
	case attribute.STRING:
		w := grab(&sl.strs)
		w.StringValue = v.AsString()
		av.Value = w
	case attribute.FLOAT64:
		w := grab(&sl.dbls)
		w.DoubleValue = v.AsFloat64()
		av.Value = w
	case attribute.BOOL:
		w := grab(&sl.bools)
		w.BoolValue = v.AsBool()
		av.Value = w
	case attribute.BOOLSLICE:
		av.Value = arrayOf(sl, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		av.Value = arrayOf(sl, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		av.Value = arrayOf(sl, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		av.Value = arrayOf(sl, v.AsStringSlice(), attribute.StringValue)
	case attribute.BYTESLICE:
		av.Value = &commonpb.AnyValue_BytesValue{BytesValue: v.AsByteSlice()}
	case attribute.SLICE:
		vals := v.AsSlice()
		out := make([]*commonpb.AnyValue, len(vals))
		for i, x := range vals {
			out[i] = sl.value(x)
		}
		av.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
	case attribute.MAP:
		av.Value = &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: sl.keyValues(v.AsMap())}}
	case attribute.EMPTY:
	default:
		av.Value = &commonpb.AnyValue_StringValue{StringValue: "INVALID"}
	}
	return av
}

// arrayOf is an array value of the scalars xs.
func arrayOf[T any](sl *slabs, xs []T, conv func(T) attribute.Value) *commonpb.AnyValue_ArrayValue {
	out := make([]*commonpb.AnyValue, len(xs))
	for i, x := range xs {
		out[i] = sl.value(conv(x))
	}
	return &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
}

// otlpSpans converts a batch as tracetransform.Spans does: one
// ResourceSpans per resource, one ScopeSpans per resource and scope, spans
// in the order given (resources and scopes in the order first seen).
func otlpSpans(spans []sdktrace.ReadOnlySpan) []*tracepb.ResourceSpans {
	if len(spans) == 0 {
		return nil
	}
	sl := newSlabs(spans)
	protoSpans := make([]tracepb.Span, len(spans))
	statuses := make([]tracepb.Status, len(spans))
	next := 0
	var out []*tracepb.ResourceSpans
	for _, rg := range groupSpans(spans) {
		rs := &tracepb.ResourceSpans{Resource: otlpResource(sl, rg.res), SchemaUrl: rg.res.SchemaURL()}
		for _, sg := range rg.scopes {
			ss := &tracepb.ScopeSpans{Scope: otlpScope(sl, sg.scope), Spans: make([]*tracepb.Span, 0, len(sg.spans)), SchemaUrl: sg.scope.SchemaURL}
			for _, s := range sg.spans {
				sl.span(&protoSpans[next], &statuses[next], s)
				ss.Spans = append(ss.Spans, &protoSpans[next])
				next++
			}
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		out = append(out, rs)
	}
	return out
}

func otlpResource(sl *slabs, r *resource.Resource) *resourcepb.Resource {
	if r == nil {
		return nil
	}
	return &resourcepb.Resource{Attributes: iterKeyValues(sl, r.Iter())}
}

func otlpScope(sl *slabs, il instrumentation.Scope) *commonpb.InstrumentationScope {
	if il == (instrumentation.Scope{}) {
		return nil
	}
	return &commonpb.InstrumentationScope{Name: il.Name, Version: il.Version,
		Attributes: iterKeyValues(sl, il.Attributes.Iter())}
}

func iterKeyValues(sl *slabs, it attribute.Iterator) []*commonpb.KeyValue {
	if it.Len() == 0 {
		return nil
	}
	kvs := make([]attribute.KeyValue, 0, it.Len())
	for it.Next() {
		kvs = append(kvs, it.Attribute())
	}
	return sl.keyValues(kvs)
}

// span fills s (and its status st) as tracetransform's span does.
func (sl *slabs) span(s *tracepb.Span, st *tracepb.Status, sd sdktrace.ReadOnlySpan) {
	sc := sd.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	status := sd.Status()
	switch status.Code {
	case codes.Ok:
		st.Code = tracepb.Status_STATUS_CODE_OK
	case codes.Error:
		st.Code = tracepb.Status_STATUS_CODE_ERROR
	default:
		st.Code = tracepb.Status_STATUS_CODE_UNSET
	}
	st.Message = status.Description
	s.TraceId, s.SpanId = tid[:], sid[:]
	s.TraceState = sc.TraceState().String()
	s.Status = st
	s.StartTimeUnixNano = uint64(max(0, sd.StartTime().UnixNano()))
	s.EndTimeUnixNano = uint64(max(0, sd.EndTime().UnixNano()))
	s.Links = sl.links(sd.Links())
	s.Kind = spanKind(sd.SpanKind())
	s.Name = sd.Name()
	attrs := sd.Attributes()
	s.Attributes = sl.keyValues(withoutPacked(attrs))
	events := sd.Events()
	if packed := UnpackTokenEvents(attrs); len(packed) > 0 {
		events = slices.Concat(events, packed)
	}
	s.Events = sl.spanEvents(events)
	s.DroppedAttributesCount = clampUint32(sd.DroppedAttributes())
	s.DroppedEventsCount = clampUint32(sd.DroppedEvents())
	s.DroppedLinksCount = clampUint32(sd.DroppedLinks())
	parent := sd.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		s.ParentSpanId = psid[:]
	}
	s.Flags = spanFlags(sc.TraceFlags(), parent)
}

func (sl *slabs) spanEvents(es []sdktrace.Event) []*tracepb.Span_Event {
	if len(es) == 0 {
		return nil
	}
	if cap(sl.evPtrs)-len(sl.evPtrs) < len(es) {
		sl.evPtrs = make([]*tracepb.Span_Event, 0, len(es))
	}
	start := len(sl.evPtrs)
	for i := range es {
		e := grab(&sl.events)
		e.Name = es[i].Name
		e.TimeUnixNano = uint64(max(0, es[i].Time.UnixNano()))
		e.Attributes = sl.keyValues(es[i].Attributes)
		e.DroppedAttributesCount = clampUint32(es[i].DroppedAttributeCount)
		sl.evPtrs = append(sl.evPtrs, e)
	}
	return sl.evPtrs[start:len(sl.evPtrs):len(sl.evPtrs)]
}

func (sl *slabs) links(links []sdktrace.Link) []*tracepb.Span_Link {
	if len(links) == 0 {
		return nil
	}
	out := make([]*tracepb.Span_Link, 0, len(links))
	for _, l := range links {
		tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		out = append(out, &tracepb.Span_Link{TraceId: tid[:], SpanId: sid[:], Attributes: sl.keyValues(l.Attributes),
			DroppedAttributesCount: clampUint32(l.DroppedAttributeCount), Flags: spanFlags(l.SpanContext.TraceFlags(), l.SpanContext)})
	}
	return out
}

func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	flags := uint32(tf) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if parent.IsRemote() {
		flags |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	return flags
}

func spanKind(kind trace.SpanKind) tracepb.Span_SpanKind {
	switch kind {
	case trace.SpanKindInternal:
		return tracepb.Span_SPAN_KIND_INTERNAL
	case trace.SpanKindClient:
		return tracepb.Span_SPAN_KIND_CLIENT
	case trace.SpanKindServer:
		return tracepb.Span_SPAN_KIND_SERVER
	case trace.SpanKindProducer:
		return tracepb.Span_SPAN_KIND_PRODUCER
	case trace.SpanKindConsumer:
		return tracepb.Span_SPAN_KIND_CONSUMER
	default:
		return tracepb.Span_SPAN_KIND_UNSPECIFIED
	}
}

func clampUint32(v int) uint32 {
	if v < 0 {
		return 0
	}
	if int64(v) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

var _ sdktrace.SpanExporter = (*spanExporter)(nil)

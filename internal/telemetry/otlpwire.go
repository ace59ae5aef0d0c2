package telemetry

import (
	"fmt"
	"math"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// traceCodec is the gRPC codec of the span exporter's connection. The
// exporter writes each batch's ExportTraceServiceRequest itself, straight
// from the SDK's spans (otlpdirect.go), and hands the client a placeholder
// message the codec recognises: Marshal then sends the bytes held for it.
// Any other ExportTraceServiceRequest is written by hand from its messages,
// field by field, instead of through the protobuf runtime's reflection;
// every other message (the response) goes to the registered "proto" codec.
// Either way the bytes are the ones proto.Marshal writes
// (TestTraceCodecWritesWhatProtoMarshalDoes,
// TestDirectEncodingMatchesMessages).
type traceCodec struct {
	proto encoding.CodecV2
	mu    sync.Mutex
	held  map[*tracepb.ResourceSpans]mem.Buffer
}

func newTraceCodec() (*traceCodec, error) {
	c := encoding.GetCodecV2("proto")
	if c == nil {
		return nil, fmt.Errorf("the gRPC proto codec is not registered")
	}
	return &traceCodec{proto: c, held: map[*tracepb.ResourceSpans]mem.Buffer{}}, nil
}

// Name is the content subtype: the request is plain protobuf.
func (*traceCodec) Name() string { return "proto" }

// hold keeps a request's bytes for the placeholder key, until Marshal
// sends them or drop frees them.
func (c *traceCodec) hold(key *tracepb.ResourceSpans, data mem.Buffer) {
	c.mu.Lock()
	c.held[key] = data
	c.mu.Unlock()
}

// take returns the bytes held for key, once.
func (c *traceCodec) take(key *tracepb.ResourceSpans) (mem.Buffer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, ok := c.held[key]
	delete(c.held, key)
	return data, ok
}

// drop frees what is still held for key (the client never sent it).
func (c *traceCodec) drop(key *tracepb.ResourceSpans) {
	if data, ok := c.take(key); ok {
		data.Free()
	}
}

func (c *traceCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*coltracepb.ExportTraceServiceRequest)
	if !ok {
		return c.proto.Marshal(v)
	}
	if len(req.ResourceSpans) == 1 {
		if data, ok := c.take(req.ResourceSpans[0]); ok {
			return mem.BufferSlice{data}, nil
		}
	}
	e := getWireEncoder()
	defer e.release()
	size := e.sizeRequest(req)
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = e.appendRequest((*buf)[:0], req)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c *traceCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// wireEncoder writes OTLP trace messages in two passes: the first computes
// every message's size, in the order the second writes them (pre-order),
// so each length prefix is read back instead of computed again.
type wireEncoder struct {
	sizes []int
	next  int
}

// wireEncoders keep a few encoders, with their size tables, from batch to
// batch. A sync.Pool loses them at every garbage collection, and the table
// of a 512-span batch then grows again from nothing.
var wireEncoders = make(chan *wireEncoder, 2)

func getWireEncoder() *wireEncoder {
	select {
	case e := <-wireEncoders:
		return e
	default:
		return new(wireEncoder)
	}
}

func (e *wireEncoder) release() {
	if cap(e.sizes) > 1<<20 {
		e.sizes = nil // an outsized batch does not pin its table
	}
	e.sizes, e.next = e.sizes[:0], 0
	select {
	case wireEncoders <- e:
	default:
	}
}

// open reserves the size of the message about to be sized.
func (e *wireEncoder) open() int {
	e.sizes = append(e.sizes, 0)
	return len(e.sizes) - 1
}

func (e *wireEncoder) close(i, n int) int {
	e.sizes[i] = n
	return n
}

// message appends the tag and length of the next message in pre-order.
func (e *wireEncoder) message(b []byte, num protowire.Number) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	n := e.sizes[e.next]
	e.next++
	return protowire.AppendVarint(b, uint64(n))
}

func msgLen(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func strLen(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func bytesLen(num protowire.Number, p []byte) int {
	if len(p) == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(p))
}

func varintLen(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func fixed64Len(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + 8
}

func fixed32Len(num protowire.Number, v uint32) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + 4
}

func appendStr(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func appendBytes(b []byte, num protowire.Number, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), p)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed32(protowire.AppendTag(b, num, protowire.Fixed32Type), v)
}

// int32 fields (enums too) are written as their 64-bit sign extension.
func i32(v int32) uint64 { return uint64(int64(v)) }

func (e *wireEncoder) sizeRequest(m *coltracepb.ExportTraceServiceRequest) int {
	i, n := e.open(), 0
	for _, rs := range m.ResourceSpans {
		n += msgLen(1, e.sizeResourceSpans(rs))
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendRequest(b []byte, m *coltracepb.ExportTraceServiceRequest) []byte {
	e.next++
	for _, rs := range m.ResourceSpans {
		b = e.appendResourceSpans(e.message(b, 1), rs)
	}
	return b
}

func (e *wireEncoder) sizeResourceSpans(m *tracepb.ResourceSpans) int {
	i, n := e.open(), 0
	if m != nil {
		if m.Resource != nil {
			n += msgLen(1, e.sizeResource(m.Resource))
		}
		for _, ss := range m.ScopeSpans {
			n += msgLen(2, e.sizeScopeSpans(ss))
		}
		n += strLen(3, m.SchemaUrl)
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendResourceSpans(b []byte, m *tracepb.ResourceSpans) []byte {
	if m == nil {
		return b
	}
	if m.Resource != nil {
		b = e.appendResource(e.message(b, 1), m.Resource)
	}
	for _, ss := range m.ScopeSpans {
		b = e.appendScopeSpans(e.message(b, 2), ss)
	}
	return appendStr(b, 3, m.SchemaUrl)
}

func (e *wireEncoder) sizeResource(m *resourcepb.Resource) int {
	i := e.open()
	n := e.sizeKeyValues(1, m.Attributes) + varintLen(2, uint64(m.DroppedAttributesCount))
	for _, r := range m.EntityRefs {
		n += msgLen(3, e.sizeEntityRef(r))
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendResource(b []byte, m *resourcepb.Resource) []byte {
	b = e.appendKeyValues(b, 1, m.Attributes)
	b = appendVarint(b, 2, uint64(m.DroppedAttributesCount))
	for _, r := range m.EntityRefs {
		b = e.appendEntityRef(e.message(b, 3), r)
	}
	return b
}

func (e *wireEncoder) sizeEntityRef(m *commonpb.EntityRef) int {
	i, n := e.open(), 0
	if m != nil {
		n = strLen(1, m.SchemaUrl) + strLen(2, m.Type)
		for _, k := range m.IdKeys {
			n += msgLen(3, len(k))
		}
		for _, k := range m.DescriptionKeys {
			n += msgLen(4, len(k))
		}
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendEntityRef(b []byte, m *commonpb.EntityRef) []byte {
	if m == nil {
		return b
	}
	b = appendStr(b, 1, m.SchemaUrl)
	b = appendStr(b, 2, m.Type)
	for _, k := range m.IdKeys { // repeated: empty strings are written too
		b = protowire.AppendString(protowire.AppendTag(b, 3, protowire.BytesType), k)
	}
	for _, k := range m.DescriptionKeys {
		b = protowire.AppendString(protowire.AppendTag(b, 4, protowire.BytesType), k)
	}
	return b
}

func (e *wireEncoder) sizeScopeSpans(m *tracepb.ScopeSpans) int {
	i, n := e.open(), 0
	if m != nil {
		if m.Scope != nil {
			n += msgLen(1, e.sizeScope(m.Scope))
		}
		for _, s := range m.Spans {
			n += msgLen(2, e.sizeSpan(s))
		}
		n += strLen(3, m.SchemaUrl)
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendScopeSpans(b []byte, m *tracepb.ScopeSpans) []byte {
	if m == nil {
		return b
	}
	if m.Scope != nil {
		b = e.appendScope(e.message(b, 1), m.Scope)
	}
	for _, s := range m.Spans {
		b = e.appendSpan(e.message(b, 2), s)
	}
	return appendStr(b, 3, m.SchemaUrl)
}

func (e *wireEncoder) sizeScope(m *commonpb.InstrumentationScope) int {
	i := e.open()
	n := strLen(1, m.Name) + strLen(2, m.Version) + e.sizeKeyValues(3, m.Attributes) +
		varintLen(4, uint64(m.DroppedAttributesCount))
	return e.close(i, n)
}

func (e *wireEncoder) appendScope(b []byte, m *commonpb.InstrumentationScope) []byte {
	b = appendStr(b, 1, m.Name)
	b = appendStr(b, 2, m.Version)
	b = e.appendKeyValues(b, 3, m.Attributes)
	return appendVarint(b, 4, uint64(m.DroppedAttributesCount))
}

func (e *wireEncoder) sizeSpan(m *tracepb.Span) int {
	i, n := e.open(), 0
	if m == nil {
		return e.close(i, 0)
	}
	n += bytesLen(1, m.TraceId) + bytesLen(2, m.SpanId) + strLen(3, m.TraceState) + bytesLen(4, m.ParentSpanId) +
		strLen(5, m.Name) + varintLen(6, i32(int32(m.Kind))) +
		fixed64Len(7, m.StartTimeUnixNano) + fixed64Len(8, m.EndTimeUnixNano)
	n += e.sizeKeyValues(9, m.Attributes) + varintLen(10, uint64(m.DroppedAttributesCount))
	for _, ev := range m.Events {
		n += msgLen(11, e.sizeEvent(ev))
	}
	n += varintLen(12, uint64(m.DroppedEventsCount))
	for _, l := range m.Links {
		n += msgLen(13, e.sizeLink(l))
	}
	n += varintLen(14, uint64(m.DroppedLinksCount))
	if m.Status != nil {
		n += msgLen(15, e.sizeStatus(m.Status))
	}
	n += fixed32Len(16, m.Flags)
	return e.close(i, n)
}

func (e *wireEncoder) appendSpan(b []byte, m *tracepb.Span) []byte {
	if m == nil {
		return b
	}
	b = appendBytes(b, 1, m.TraceId)
	b = appendBytes(b, 2, m.SpanId)
	b = appendStr(b, 3, m.TraceState)
	b = appendBytes(b, 4, m.ParentSpanId)
	b = appendStr(b, 5, m.Name)
	b = appendVarint(b, 6, i32(int32(m.Kind)))
	b = appendFixed64(b, 7, m.StartTimeUnixNano)
	b = appendFixed64(b, 8, m.EndTimeUnixNano)
	b = e.appendKeyValues(b, 9, m.Attributes)
	b = appendVarint(b, 10, uint64(m.DroppedAttributesCount))
	for _, ev := range m.Events {
		b = e.appendEvent(e.message(b, 11), ev)
	}
	b = appendVarint(b, 12, uint64(m.DroppedEventsCount))
	for _, l := range m.Links {
		b = e.appendLink(e.message(b, 13), l)
	}
	b = appendVarint(b, 14, uint64(m.DroppedLinksCount))
	if m.Status != nil {
		b = e.appendStatus(e.message(b, 15), m.Status)
	}
	return appendFixed32(b, 16, m.Flags)
}

func (e *wireEncoder) sizeEvent(m *tracepb.Span_Event) int {
	i, n := e.open(), 0
	if m != nil {
		n = fixed64Len(1, m.TimeUnixNano) + strLen(2, m.Name) + e.sizeKeyValues(3, m.Attributes) +
			varintLen(4, uint64(m.DroppedAttributesCount))
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendEvent(b []byte, m *tracepb.Span_Event) []byte {
	if m == nil {
		return b
	}
	b = appendFixed64(b, 1, m.TimeUnixNano)
	b = appendStr(b, 2, m.Name)
	b = e.appendKeyValues(b, 3, m.Attributes)
	return appendVarint(b, 4, uint64(m.DroppedAttributesCount))
}

func (e *wireEncoder) sizeLink(m *tracepb.Span_Link) int {
	i, n := e.open(), 0
	if m != nil {
		n = bytesLen(1, m.TraceId) + bytesLen(2, m.SpanId) + strLen(3, m.TraceState) + e.sizeKeyValues(4, m.Attributes) +
			varintLen(5, uint64(m.DroppedAttributesCount)) + fixed32Len(6, m.Flags)
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendLink(b []byte, m *tracepb.Span_Link) []byte {
	if m == nil {
		return b
	}
	b = appendBytes(b, 1, m.TraceId)
	b = appendBytes(b, 2, m.SpanId)
	b = appendStr(b, 3, m.TraceState)
	b = e.appendKeyValues(b, 4, m.Attributes)
	b = appendVarint(b, 5, uint64(m.DroppedAttributesCount))
	return appendFixed32(b, 6, m.Flags)
}

func (e *wireEncoder) sizeStatus(m *tracepb.Status) int {
	i := e.open()
	return e.close(i, strLen(2, m.Message)+varintLen(3, i32(int32(m.Code))))
}

func (e *wireEncoder) appendStatus(b []byte, m *tracepb.Status) []byte {
	b = appendStr(b, 2, m.Message)
	return appendVarint(b, 3, i32(int32(m.Code)))
}

func (e *wireEncoder) sizeKeyValues(num protowire.Number, kvs []*commonpb.KeyValue) int {
	n := 0
	for _, kv := range kvs {
		n += msgLen(num, e.sizeKeyValue(kv))
	}
	return n
}

func (e *wireEncoder) appendKeyValues(b []byte, num protowire.Number, kvs []*commonpb.KeyValue) []byte {
	for _, kv := range kvs {
		b = e.appendKeyValue(e.message(b, num), kv)
	}
	return b
}

func (e *wireEncoder) sizeKeyValue(m *commonpb.KeyValue) int {
	i, n := e.open(), 0
	if m != nil {
		n = strLen(1, m.Key)
		if m.Value != nil {
			n += msgLen(2, e.sizeAnyValue(m.Value))
		}
		n += varintLen(3, i32(m.KeyStrindex))
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendKeyValue(b []byte, m *commonpb.KeyValue) []byte {
	if m == nil {
		return b
	}
	b = appendStr(b, 1, m.Key)
	if m.Value != nil {
		b = e.appendAnyValue(e.message(b, 2), m.Value)
	}
	return appendVarint(b, 3, i32(m.KeyStrindex))
}

// sizeAnyValue: a value of the oneof is written even when it is its type's
// zero value.
func (e *wireEncoder) sizeAnyValue(m *commonpb.AnyValue) int {
	i, n := e.open(), 0
	switch v := m.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		n = msgLen(1, len(v.StringValue))
	case *commonpb.AnyValue_BoolValue:
		n = protowire.SizeTag(2) + 1
	case *commonpb.AnyValue_IntValue:
		n = protowire.SizeTag(3) + protowire.SizeVarint(uint64(v.IntValue))
	case *commonpb.AnyValue_DoubleValue:
		n = protowire.SizeTag(4) + 8
	case *commonpb.AnyValue_ArrayValue:
		j, an := e.open(), 0
		if v.ArrayValue != nil {
			for _, x := range v.ArrayValue.Values {
				an += msgLen(1, e.sizeAnyValue(x))
			}
		}
		n = msgLen(5, e.close(j, an))
	case *commonpb.AnyValue_KvlistValue:
		j, kn := e.open(), 0
		if v.KvlistValue != nil {
			kn = e.sizeKeyValues(1, v.KvlistValue.Values)
		}
		n = msgLen(6, e.close(j, kn))
	case *commonpb.AnyValue_BytesValue:
		n = msgLen(7, len(v.BytesValue))
	case *commonpb.AnyValue_StringValueStrindex:
		n = protowire.SizeTag(8) + protowire.SizeVarint(i32(v.StringValueStrindex))
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendAnyValue(b []byte, m *commonpb.AnyValue) []byte {
	switch v := m.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		b = protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), v.StringValue)
	case *commonpb.AnyValue_BoolValue:
		b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), protowire.EncodeBool(v.BoolValue))
	case *commonpb.AnyValue_IntValue:
		b = protowire.AppendVarint(protowire.AppendTag(b, 3, protowire.VarintType), uint64(v.IntValue))
	case *commonpb.AnyValue_DoubleValue:
		b = protowire.AppendFixed64(protowire.AppendTag(b, 4, protowire.Fixed64Type), math.Float64bits(v.DoubleValue))
	case *commonpb.AnyValue_ArrayValue:
		b = e.message(b, 5)
		if v.ArrayValue != nil {
			for _, x := range v.ArrayValue.Values {
				b = e.appendAnyValue(e.message(b, 1), x)
			}
		}
	case *commonpb.AnyValue_KvlistValue:
		b = e.message(b, 6)
		if v.KvlistValue != nil {
			b = e.appendKeyValues(b, 1, v.KvlistValue.Values)
		}
	case *commonpb.AnyValue_BytesValue:
		b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), v.BytesValue)
	case *commonpb.AnyValue_StringValueStrindex:
		b = protowire.AppendVarint(protowire.AppendTag(b, 8, protowire.VarintType), i32(v.StringValueStrindex))
	}
	return b
}

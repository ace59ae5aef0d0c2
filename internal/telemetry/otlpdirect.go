package telemetry

import (
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// The span exporter over gRPC writes a batch of SDK spans straight into an
// ExportTraceServiceRequest's bytes, without building the OTLP messages
// first: the same bytes proto.Marshal writes for otlpSpans' messages
// (TestDirectEncodingMatchesMessages), grouped the same way (one
// ResourceSpans per resource, one ScopeSpans per resource and scope, in the
// order first seen, spans in the order given).

// spanGroups is a batch grouped by resource and scope.
type spanGroups []resourceGroup

type resourceGroup struct {
	res    *resource.Resource
	attrs  []attribute.KeyValue
	scopes []*scopeGroup
}

type scopeGroup struct {
	scope instrumentation.Scope
	attrs []attribute.KeyValue
	spans []sdktrace.ReadOnlySpan
}

func groupSpans(spans []sdktrace.ReadOnlySpan) spanGroups {
	type scopeKey struct {
		r  attribute.Distinct
		is instrumentation.Scope
	}
	var out spanGroups
	resources := map[attribute.Distinct]int{}
	scopes := map[scopeKey]*scopeGroup{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		res := s.Resource()
		rk := res.Equivalent()
		scope := s.InstrumentationScope()
		sk := scopeKey{r: rk, is: scope}
		sg, known := scopes[sk]
		if !known {
			sg = &scopeGroup{scope: scope, attrs: scope.Attributes.ToSlice()}
			scopes[sk] = sg
		}
		sg.spans = append(sg.spans, s)
		i, ok := resources[rk]
		if !ok {
			var attrs []attribute.KeyValue
			if res != nil {
				attrs = res.Attributes()
			}
			resources[rk] = len(out)
			out = append(out, resourceGroup{res: res, attrs: attrs, scopes: []*scopeGroup{sg}})
			continue
		}
		if !known {
			out[i].scopes = append(out[i].scopes, sg)
		}
	}
	return out
}

func (e *wireEncoder) sizeGroups(g spanGroups) int {
	i, n := e.open(), 0
	for _, rg := range g {
		n += msgLen(1, e.sizeResourceGroup(rg))
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendGroups(b []byte, g spanGroups) []byte {
	e.next++
	for _, rg := range g {
		b = e.appendResourceGroup(e.message(b, 1), rg)
	}
	return b
}

func (e *wireEncoder) sizeResourceGroup(rg resourceGroup) int {
	i, n := e.open(), 0
	if rg.res != nil {
		j := e.open()
		n += msgLen(1, e.close(j, e.sizeAttrs(1, rg.attrs)))
	}
	for _, sg := range rg.scopes {
		n += msgLen(2, e.sizeScopeGroup(sg))
	}
	n += strLen(3, rg.res.SchemaURL())
	return e.close(i, n)
}

func (e *wireEncoder) appendResourceGroup(b []byte, rg resourceGroup) []byte {
	if rg.res != nil {
		b = e.appendAttrs(e.message(b, 1), 1, rg.attrs)
	}
	for _, sg := range rg.scopes {
		b = e.appendScopeGroup(e.message(b, 2), sg)
	}
	return appendStr(b, 3, rg.res.SchemaURL())
}

func (e *wireEncoder) sizeScopeGroup(sg *scopeGroup) int {
	i, n := e.open(), 0
	if sg.scope != (instrumentation.Scope{}) {
		j := e.open()
		sn := strLen(1, sg.scope.Name) + strLen(2, sg.scope.Version) + e.sizeAttrs(3, sg.attrs)
		n += msgLen(1, e.close(j, sn))
	}
	for _, s := range sg.spans {
		n += msgLen(2, e.sizeSDKSpan(s))
	}
	n += strLen(3, sg.scope.SchemaURL)
	return e.close(i, n)
}

func (e *wireEncoder) appendScopeGroup(b []byte, sg *scopeGroup) []byte {
	if sg.scope != (instrumentation.Scope{}) {
		b = e.message(b, 1)
		b = appendStr(b, 1, sg.scope.Name)
		b = appendStr(b, 2, sg.scope.Version)
		b = e.appendAttrs(b, 3, sg.attrs)
	}
	for _, s := range sg.spans {
		b = e.appendSDKSpan(e.message(b, 2), s)
	}
	return appendStr(b, 3, sg.scope.SchemaURL)
}

func unixNano(t interface{ UnixNano() int64 }) uint64 { return uint64(max(0, t.UnixNano())) }

func (e *wireEncoder) sizeSDKSpan(s sdktrace.ReadOnlySpan) int {
	i := e.open()
	sc := s.SpanContext()
	n := msgLen(1, 16) + msgLen(2, 8) + strLen(3, sc.TraceState().String())
	if s.Parent().SpanID().IsValid() {
		n += msgLen(4, 8)
	}
	n += strLen(5, s.Name()) + varintLen(6, uint64(spanKind(s.SpanKind()))) +
		fixed64Len(7, unixNano(s.StartTime())) + fixed64Len(8, unixNano(s.EndTime()))
	n += e.sizeAttrs(9, s.Attributes()) + varintLen(10, uint64(clampUint32(s.DroppedAttributes())))
	for _, ev := range s.Events() {
		j := e.open()
		en := fixed64Len(1, unixNano(ev.Time)) + strLen(2, ev.Name) + e.sizeAttrs(3, ev.Attributes) +
			varintLen(4, uint64(clampUint32(ev.DroppedAttributeCount)))
		n += msgLen(11, e.close(j, en))
	}
	n += sizePacked(packedOf(s.Attributes()))
	n += varintLen(12, uint64(clampUint32(s.DroppedEvents())))
	for _, l := range s.Links() {
		j := e.open()
		ln := msgLen(1, 16) + msgLen(2, 8) + e.sizeAttrs(4, l.Attributes) +
			varintLen(5, uint64(clampUint32(l.DroppedAttributeCount))) +
			fixed32Len(6, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		n += msgLen(13, e.close(j, ln))
	}
	n += varintLen(14, uint64(clampUint32(s.DroppedLinks())))
	st := s.Status()
	j := e.open()
	n += msgLen(15, e.close(j, strLen(2, st.Description)+varintLen(3, uint64(statusCode(st.Code)))))
	n += fixed32Len(16, spanFlags(sc.TraceFlags(), s.Parent()))
	return e.close(i, n)
}

func (e *wireEncoder) appendSDKSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), tid[:])
	b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), sid[:])
	b = appendStr(b, 3, sc.TraceState().String())
	if psid := s.Parent().SpanID(); psid.IsValid() {
		b = protowire.AppendBytes(protowire.AppendTag(b, 4, protowire.BytesType), psid[:])
	}
	b = appendStr(b, 5, s.Name())
	b = appendVarint(b, 6, uint64(spanKind(s.SpanKind())))
	b = appendFixed64(b, 7, unixNano(s.StartTime()))
	b = appendFixed64(b, 8, unixNano(s.EndTime()))
	b = e.appendAttrs(b, 9, s.Attributes())
	b = appendVarint(b, 10, uint64(clampUint32(s.DroppedAttributes())))
	for _, ev := range s.Events() {
		b = e.message(b, 11)
		b = appendFixed64(b, 1, unixNano(ev.Time))
		b = appendStr(b, 2, ev.Name)
		b = e.appendAttrs(b, 3, ev.Attributes)
		b = appendVarint(b, 4, uint64(clampUint32(ev.DroppedAttributeCount)))
	}
	b = appendPacked(b, packedOf(s.Attributes()))
	b = appendVarint(b, 12, uint64(clampUint32(s.DroppedEvents())))
	for _, l := range s.Links() {
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = e.message(b, 13)
		b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), ltid[:])
		b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), lsid[:])
		b = e.appendAttrs(b, 4, l.Attributes)
		b = appendVarint(b, 5, uint64(clampUint32(l.DroppedAttributeCount)))
		b = appendFixed32(b, 6, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
	}
	b = appendVarint(b, 14, uint64(clampUint32(s.DroppedLinks())))
	st := s.Status()
	b = e.message(b, 15)
	b = appendStr(b, 2, st.Description)
	b = appendVarint(b, 3, uint64(statusCode(st.Code)))
	return appendFixed32(b, 16, spanFlags(sc.TraceFlags(), s.Parent()))
}

// sizeAttrs sizes attributes as the repeated KeyValue field num, leaving
// out packed token events. An attribute with a scalar value, nearly every
// one, is sized again when written rather than kept in the table.
func (e *wireEncoder) sizeAttrs(num protowire.Number, kvs []attribute.KeyValue) int {
	n := 0
	for _, kv := range kvs {
		if isPacked(kv) {
			continue
		}
		if vn, ok := scalarLen(kv.Value); ok {
			n += msgLen(num, strLen(1, string(kv.Key))+msgLen(2, vn))
			continue
		}
		i := e.open()
		kn := strLen(1, string(kv.Key)) + msgLen(2, e.sizeValue(kv.Value))
		n += msgLen(num, e.close(i, kn))
	}
	return n
}

func (e *wireEncoder) appendAttrs(b []byte, num protowire.Number, kvs []attribute.KeyValue) []byte {
	for _, kv := range kvs {
		if isPacked(kv) {
			continue
		}
		if vn, ok := scalarLen(kv.Value); ok {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(strLen(1, string(kv.Key))+msgLen(2, vn)))
			b = appendStr(b, 1, string(kv.Key))
			b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.BytesType), uint64(vn))
			b = e.appendValue(b, kv.Value)
			continue
		}
		b = e.message(b, num)
		b = appendStr(b, 1, string(kv.Key))
		b = e.appendValue(e.message(b, 2), kv.Value)
	}
	return b
}

// scalarLen is the size of a scalar value's AnyValue message; false for
// the others (slices, maps, bytes).
func scalarLen(v attribute.Value) (int, bool) {
	switch v.Type() {
	case attribute.BOOL:
		return protowire.SizeTag(2) + 1, true
	case attribute.INT64:
		return protowire.SizeTag(3) + protowire.SizeVarint(uint64(v.AsInt64())), true
	case attribute.FLOAT64:
		return protowire.SizeTag(4) + 8, true
	case attribute.STRING:
		return msgLen(1, len(v.AsString())), true
	case attribute.EMPTY:
		return 0, true
	}
	return 0, false
}

// sizeValue sizes an AnyValue as slabs.value converts it.
func (e *wireEncoder) sizeValue(v attribute.Value) int {
	i := e.open()
	n, scalar := scalarLen(v)
	if scalar {
		return e.close(i, n)
	}
	switch v.Type() {
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.SLICE:
		j, an := e.open(), 0
		for _, x := range elements(v) {
			an += msgLen(1, e.sizeValue(x))
		}
		n = msgLen(5, e.close(j, an))
	case attribute.MAP:
		j := e.open()
		n = msgLen(6, e.close(j, e.sizeAttrs(1, v.AsMap())))
	case attribute.BYTESLICE:
		n = msgLen(7, len(v.AsByteSlice()))
	default:
		n = msgLen(1, len("INVALID"))
	}
	return e.close(i, n)
}

func (e *wireEncoder) appendValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendVarint(protowire.AppendTag(b, 3, protowire.VarintType), uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendFixed64(protowire.AppendTag(b, 4, protowire.Fixed64Type), math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), v.AsString())
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.SLICE:
		b = e.message(b, 5)
		for _, x := range elements(v) {
			b = e.appendValue(e.message(b, 1), x)
		}
	case attribute.MAP:
		b = e.appendAttrs(e.message(b, 6), 1, v.AsMap())
	case attribute.BYTESLICE:
		b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), v.AsByteSlice())
	case attribute.EMPTY:
	default:
		b = protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), "INVALID")
	}
	return b
}

// elements are the values of a slice value, each as its own value.
func elements(v attribute.Value) []attribute.Value {
	switch v.Type() {
	case attribute.BOOLSLICE:
		return valuesOf(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return valuesOf(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return valuesOf(v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return valuesOf(v.AsStringSlice(), attribute.StringValue)
	}
	return v.AsSlice()
}

func valuesOf[T any](xs []T, conv func(T) attribute.Value) []attribute.Value {
	out := make([]attribute.Value, len(xs))
	for i, x := range xs {
		out[i] = conv(x)
	}
	return out
}

func statusCode(c codes.Code) tracepb.Status_StatusCode {
	switch c {
	case codes.Ok:
		return tracepb.Status_STATUS_CODE_OK
	case codes.Error:
		return tracepb.Status_STATUS_CODE_ERROR
	}
	return tracepb.Status_STATUS_CODE_UNSET
}

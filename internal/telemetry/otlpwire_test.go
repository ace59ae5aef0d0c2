package telemetry

import (
	"bytes"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTraceCodecWritesWhatProtoMarshalDoes: the codec's bytes are
// proto.Marshal's, byte for byte, for the exporter's messages (every
// attribute type, events, links, status, flags, several resources and
// scopes) and for fields the exporter never sets (entity references,
// string indexes, zero values inside the value oneof, negative enums), and
// they decode to an equal message.
func TestTraceCodecWritesWhatProtoMarshalDoes(t *testing.T) {
	_, ours := sdkAndOurs(t, testSpans())
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	odd := &tracepb.ResourceSpans{
		Resource: &resourcepb.Resource{DroppedAttributesCount: 3, EntityRefs: []*commonpb.EntityRef{
			{SchemaUrl: "u", Type: "service", IdKeys: []string{"service.name", ""}, DescriptionKeys: []string{"d"}}, {}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{}, Spans: []*tracepb.Span{{
			Kind: tracepb.Span_SpanKind(-1), Flags: 0xffffffff, StartTimeUnixNano: 1,
			Status: &tracepb.Status{},
			Attributes: []*commonpb.KeyValue{
				{Key: "", Value: str("")},
				{Key: "zero", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{}}},
				{Key: "false", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{}}},
				{Key: "0.0", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{}}},
				{Key: "nobytes", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{}}},
				{Key: "noarray", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{}}}},
				{Key: "nolist", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{}}}},
				{Key: "idx", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: -2}}, KeyStrindex: 7},
				{Key: "empty", Value: &commonpb.AnyValue{}},
				{Key: "none"},
				{Key: "deep", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
					Values: []*commonpb.KeyValue{{Key: "a", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
						ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("x"), {}}}}}}}}}}},
			},
			Events: []*tracepb.Span_Event{{}, {Name: "e", DroppedAttributesCount: 1}},
			Links:  []*tracepb.Span_Link{{TraceState: "a=b", Flags: 256}},
		}}, SchemaUrl: "s"}},
		SchemaUrl: "r",
	}
	codec, err := newTraceCodec()
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]*coltracepb.ExportTraceServiceRequest{
		"exporter's": {ResourceSpans: ours},
		"odd fields": {ResourceSpans: []*tracepb.ResourceSpans{odd}},
		"empty":      {},
		"big":        {ResourceSpans: append(append(append([]*tracepb.ResourceSpans{}, ours...), ours...), odd)},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			data, err := codec.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			got := data.Materialize()
			data.Free()
			if !bytes.Equal(got, want) {
				t.Fatalf("codec wrote %d bytes, proto.Marshal %d; they differ", len(got), len(want))
			}
			var back coltracepb.ExportTraceServiceRequest
			if err := proto.Unmarshal(got, &back); err != nil || !proto.Equal(&back, req) {
				t.Fatalf("the codec's bytes decode to a different message (err %v)", err)
			}
		})
	}
	// Other messages (the response) go through the proto codec.
	resp := &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "x"}}
	data, err := codec.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back coltracepb.ExportTraceServiceResponse
	if err := codec.Unmarshal(data, &back); err != nil || !proto.Equal(&back, resp) {
		t.Fatalf("response round trip: %v, %v", err, &back)
	}
}

func BenchmarkTraceCodec(b *testing.B) {
	_, ours := sdkAndOurs(b, testSpans())
	var rs []*tracepb.ResourceSpans
	for range 100 {
		rs = append(rs, ours...)
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: rs}
	codec, err := newTraceCodec()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			data, _ := codec.Marshal(req)
			data.Free()
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			data, _ := codec.proto.Marshal(req)
			data.Free()
		}
	})
}

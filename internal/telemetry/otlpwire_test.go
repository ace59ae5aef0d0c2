package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

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

// TestDirectEncodingMatchesMessages: a batch written straight from the SDK's
// spans is byte for byte what proto.Marshal writes for otlpSpans' messages
// of the same batch (every attribute type, events, links, status, flags,
// resources and scopes in the order first seen, nil spans skipped).
func TestDirectEncodingMatchesMessages(t *testing.T) {
	spans := testSpans()
	batches := map[string][]sdktrace.ReadOnlySpan{
		"test spans": spans,
		"repeated":   append(append(append([]sdktrace.ReadOnlySpan{nil}, spans...), nil), spans...),
		"reversed":   reversed(spans),
	}
	for name, batch := range batches {
		t.Run(name, func(t *testing.T) {
			checkDirectEncoding(t, batch, otlpSpans(batch))
		})
	}
}

// checkDirectEncoding fails t unless the direct encoding of batch is, byte
// for byte and as sized, proto.Marshal of a request carrying want.
func checkDirectEncoding(t *testing.T, batch []sdktrace.ReadOnlySpan, want []*tracepb.ResourceSpans) {
	t.Helper()
	wantBytes, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: want})
	if err != nil {
		t.Fatal(err)
	}
	e := new(wireEncoder)
	g := groupSpans(batch)
	size := e.sizeGroups(g)
	got := e.appendGroups(nil, g)
	if len(got) != size || !bytes.Equal(got, wantBytes) {
		t.Fatalf("direct encoding: %d bytes (sized %d), proto.Marshal of the messages %d; they differ", len(got), size, len(wantBytes))
	}
}

func reversed(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	out := slices.Clone(spans)
	slices.Reverse(out)
	return out
}

// TestDirectExportKeepsTheRequestBound: a batch whose request would pass
// the gRPC client's size bound is refused, as the client refuses one, and
// nothing is held for it.
func TestDirectExportKeepsTheRequestBound(t *testing.T) {
	codec, err := newTraceCodec()
	if err != nil {
		t.Fatal(err)
	}
	var sent recordingClient
	e := &spanExporter{client: &sent, direct: codec, maxRequest: 100, started: true}
	err = e.ExportSpans(context.Background(), testSpans())
	if err == nil || !strings.Contains(err.Error(), "too large") || len(sent.got) != 0 || len(codec.held) != 0 {
		t.Fatalf("export of a batch over the bound: %v; %d sent, %d held", err, len(sent.got), len(codec.held))
	}
	e.maxRequest = maxRequestSize
	if err := e.ExportSpans(context.Background(), testSpans()); err != nil || len(sent.got) != 1 || len(codec.held) != 0 {
		t.Fatalf("export under the bound: %v; %d sent, %d held", err, len(sent.got), len(codec.held))
	}
}

// TestSpansReachAGRPCCollector: spans go through NewTracing's exporter,
// its gRPC client and codec to a gRPC trace service on loopback, whole.
func TestSpansReachAGRPCCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &traceService{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	ctx := context.Background()
	tr, err := NewTracing(ctx, TraceConfig{ServiceName: "codec-test", Endpoint: ln.Addr().String(), Insecure: true,
		Batch: BatchConfig{BatchSize: 7}})
	if err != nil {
		t.Fatal(err)
	}
	tracer := tr.Provider.Tracer("test")
	for i := range 20 {
		_, s := tracer.Start(ctx, fmt.Sprintf("span %d", i), trace.WithAttributes(attribute.Int("i", i)))
		for j := range i {
			s.AddEvent("token", trace.WithAttributes(attribute.Int("tokentrace.chunk.index", j)))
		}
		s.End()
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	got := map[string]int{}
	for _, req := range col.got {
		for _, rs := range req.ResourceSpans {
			if sn := attrValue(rs.Resource.GetAttributes(), "service.name"); sn != "codec-test" {
				t.Errorf("resource service.name %q", sn)
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					got[s.Name] = len(s.Events)
				}
			}
		}
	}
	if len(got) != 20 || len(col.got) < 3 {
		t.Fatalf("the collector got %d spans in %d requests, want 20 in at least 3", len(got), len(col.got))
	}
	for i := range 20 {
		if n := got[fmt.Sprintf("span %d", i)]; n != i {
			t.Errorf("span %d arrived with %d events, want %d", i, n, i)
		}
	}
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	mu  sync.Mutex
	got []*coltracepb.ExportTraceServiceRequest
}

func (s *traceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	s.got = append(s.got, req)
	s.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func attrValue(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func BenchmarkDirectEncoding(b *testing.B) {
	var batch []sdktrace.ReadOnlySpan
	for range 100 {
		batch = append(batch, testSpans()...)
	}
	b.Run("direct", func(b *testing.B) {
		e := new(wireEncoder)
		var buf []byte
		for b.Loop() {
			g := groupSpans(batch)
			e.sizes, e.next = e.sizes[:0], 0
			buf = buf[:0]
			e.sizeGroups(g)
			buf = e.appendGroups(buf, g)
		}
	})
	b.Run("messages+codec", func(b *testing.B) {
		codec, _ := newTraceCodec()
		for b.Loop() {
			data, _ := codec.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: otlpSpans(batch)})
			data.Free()
		}
	})
}

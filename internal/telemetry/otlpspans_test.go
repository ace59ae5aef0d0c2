package telemetry

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// recordingClient is an OTLP client that keeps what it is asked to send.
type recordingClient struct{ got []*tracepb.ResourceSpans }

func (c *recordingClient) Start(context.Context) error { return nil }
func (c *recordingClient) Stop(context.Context) error  { return nil }
func (c *recordingClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	c.got = append(c.got, rs...)
	return nil
}

// sdkAndOurs exports spans through the SDK's OTLP exporter and through
// spanExporter, and returns what each would send.
func sdkAndOurs(t testing.TB, spans []sdktrace.ReadOnlySpan) (sdk, ours []*tracepb.ResourceSpans) {
	ctx := context.Background()
	var a, b recordingClient
	official, err := otlptrace.New(ctx, &a)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := newSpanExporter(ctx, &b)
	if err != nil {
		t.Fatal(err)
	}
	if err := official.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := mine.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := mine.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return a.got, b.got
}

func testSpans() []sdktrace.ReadOnlySpan {
	tid := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ts, _ := trace.ParseTraceState("vendor=value")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{9}, Remote: true,
		TraceFlags: trace.FlagsSampled})
	at := time.Unix(1767225600, 123456789)
	every := []attribute.KeyValue{
		attribute.Bool("b", true), attribute.Int("i", -7), attribute.Float64("f", 2.5), attribute.String("s", "text"),
		attribute.BoolSlice("bs", []bool{true, false}), attribute.IntSlice("is", []int{1, 2}),
		attribute.Float64Slice("fs", []float64{0.5}), attribute.StringSlice("ss", []string{"a", "b"}),
		attribute.ByteSlice("by", []byte{0, 1, 2}), attribute.Slice("sl", attribute.IntValue(3), attribute.StringValue("x")),
		attribute.Map("m", attribute.String("k", "v"), attribute.Int("n", 1)), {Key: "e"},
	}
	res1 := resource.NewSchemaless(attribute.String("service.name", "one"))
	res2 := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.41.0", attribute.String("service.name", "two"))
	scope1 := instrumentation.Scope{Name: "a", Version: "1"}
	scope2 := instrumentation.Scope{Name: "b", SchemaURL: "https://example.com/s", Attributes: attribute.NewSet(attribute.Int("x", 1))}
	var events []sdktrace.Event
	for i := range 40 {
		events = append(events, sdktrace.Event{Name: "token", Time: at.Add(time.Duration(i) * time.Millisecond),
			Attributes: []attribute.KeyValue{attribute.Int("tokentrace.chunk.index", i), attribute.Int("tokentrace.chunk.tokens", 1)}})
	}
	events = append(events, sdktrace.Event{Name: "every", Time: at, Attributes: every, DroppedAttributeCount: 2})
	stubs := tracetest.SpanStubs{
		{Name: "chat bench", SpanKind: trace.SpanKindServer, StartTime: at, EndTime: at.Add(time.Second),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, TraceState: ts}),
			Parent:      parent, Attributes: every, Events: events, Status: sdktrace.Status{Code: codes.Error, Description: "broke"},
			DroppedAttributes: 1, DroppedEvents: 3, DroppedLinks: 4, ChildSpanCount: 1,
			Links:    []sdktrace.Link{{SpanContext: parent, Attributes: every[:3], DroppedAttributeCount: 1}},
			Resource: res1, InstrumentationScope: scope1},
		{Name: "POST", SpanKind: trace.SpanKindClient, StartTime: at, EndTime: at.Add(time.Second),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{2}}),
			Status:      sdktrace.Status{Code: codes.Ok}, Resource: res1, InstrumentationScope: scope2},
		{Name: "other", SpanKind: trace.SpanKindInternal, Resource: res2, InstrumentationScope: scope1},
		{Name: "producer", SpanKind: trace.SpanKindProducer, Resource: res2, InstrumentationScope: scope1},
		{Name: "consumer", SpanKind: trace.SpanKindConsumer, Resource: res1, InstrumentationScope: scope1},
		{Name: "no scope", Resource: res1},
	}
	return stubs.Snapshots()
}

// TestSpanExporterMatchesSDK: spanExporter sends exactly the messages the
// SDK's OTLP exporter sends, for every attribute type, events, links,
// status, flags, resources and scopes.
func TestSpanExporterMatchesSDK(t *testing.T) {
	sdk, ours := sdkAndOurs(t, testSpans())
	if len(sdk) != 2 || len(ours) != len(sdk) {
		t.Fatalf("resource spans: SDK %d, ours %d, want 2 each", len(sdk), len(ours))
	}
	// The SDK orders resources by map iteration; ours as first seen.
	for _, want := range sdk {
		found := false
		for _, got := range ours {
			found = found || proto.Equal(want, got)
		}
		if !found {
			t.Errorf("no resource spans of ours equals the SDK's\n%v\nours:\n%v", want, ours)
		}
	}
	// The resources come in map order: the whole batch's size, not the
	// first resource's, shows the spans are what they should be.
	size := 0
	for _, rs := range sdk {
		b, _ := proto.Marshal(rs)
		size += len(b)
	}
	if size < 1000 {
		t.Fatalf("the SDK's messages are %d bytes: the test spans are not what they should be", size)
	}
}

func TestSpanExporterEmpty(t *testing.T) {
	sdk, ours := sdkAndOurs(t, nil)
	if len(sdk) != 0 || len(ours) != 0 {
		t.Fatalf("nothing to send: SDK %d, ours %d", len(sdk), len(ours))
	}
}

// BenchmarkSpanExport converts a batch of 512 proxy-like spans (20
// attributes, 33 token events of 2 attributes each) into OTLP messages and
// marshals them, as the gRPC client does.
func BenchmarkSpanExport(b *testing.B) {
	stub := tracetest.SpanStub{Name: "chat bench", SpanKind: trace.SpanKindServer, Resource: resource.Default(),
		InstrumentationScope: instrumentation.Scope{Name: ScopeName}}
	for i := range 20 {
		stub.Attributes = append(stub.Attributes, attribute.Int(fmt.Sprint("attr", i), i))
	}
	for i := range 33 {
		stub.Events = append(stub.Events, sdktrace.Event{Name: "token", Time: time.Now(),
			Attributes: []attribute.KeyValue{attribute.Int("tokentrace.chunk.index", i), attribute.Int("tokentrace.chunk.tokens", 1)}})
	}
	spans := make(tracetest.SpanStubs, 512)
	for i := range spans {
		spans[i] = stub
	}
	snaps := spans.Snapshots()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		new  func(otlptrace.Client) (sdktrace.SpanExporter, error)
	}{
		{"sdk", func(c otlptrace.Client) (sdktrace.SpanExporter, error) { return otlptrace.New(ctx, c) }},
		{"tokentrace", func(c otlptrace.Client) (sdktrace.SpanExporter, error) { return newSpanExporter(ctx, c) }},
	} {
		for _, cl := range []struct {
			name string
			c    otlptrace.Client
		}{{"convert", nopClient{}}, {"convert+marshal", marshalClient{}}} {
			b.Run(tc.name+"/"+cl.name, func(b *testing.B) {
				exp, err := tc.new(cl.c)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := exp.ExportSpans(ctx, snaps); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(snaps)), "ns/span")
			})
		}
	}
}

// marshalClient marshals what it is given, as a real client does, and drops it.
type marshalClient struct{}

func (marshalClient) Start(context.Context) error { return nil }
func (marshalClient) Stop(context.Context) error  { return nil }
func (marshalClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	for _, r := range rs {
		if _, err := proto.Marshal(r); err != nil {
			return err
		}
	}
	return nil
}

func (nopClient) Start(context.Context) error                                  { return nil }
func (nopClient) Stop(context.Context) error                                   { return nil }
func (nopClient) UploadTraces(context.Context, []*tracepb.ResourceSpans) error { return nil }

// nopClient drops what it is given: the conversion alone is measured.
type nopClient struct{}

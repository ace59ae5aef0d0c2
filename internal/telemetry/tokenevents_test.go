package telemetry

import (
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// packedAndUnpacked are the test spans twice: with token events made as
// AddEvent makes them, after the span's own events, and with the same
// events packed into one attribute.
func packedAndUnpacked(t *testing.T, first time.Time, step int, micros []uint32) (unpacked, packed []sdktrace.ReadOnlySpan) {
	t.Helper()
	for _, s := range testSpans() {
		stub := tracetest.SpanStubFromReadOnlySpan(s)
		withEvents := stub
		withEvents.Events = append(append([]sdktrace.Event(nil), stub.Events...), tokenEvents(first, step, micros)...)
		withPacked := stub
		withPacked.Attributes = append(append([]attribute.KeyValue(nil), stub.Attributes...), PackTokenEvents(first, step, micros))
		unpacked = append(unpacked, withEvents.Snapshot())
		packed = append(packed, withPacked.Snapshot())
	}
	return unpacked, packed
}

// tokenEvents are the events the gateway adds through AddEvent.
func tokenEvents(first time.Time, step int, micros []uint32) []sdktrace.Event {
	var out []sdktrace.Event
	for i, us := range micros {
		out = append(out, sdktrace.Event{Name: TokenEventName, Time: first.Add(time.Duration(us) * time.Microsecond),
			Attributes: []attribute.KeyValue{ChunkIndexKey.Int(i * step), ChunkTokensKey.Int(1)}})
	}
	return out
}

// TestPackedTokenEventsExportAsEvents: a span carrying packed token events
// reaches the collector exactly as the same span with the events made one
// by one: over gRPC (the direct encoding, byte for byte) and over HTTP (the
// messages), the attribute left out.
func TestPackedTokenEventsExportAsEvents(t *testing.T) {
	first := time.Unix(1767225600, 987654321)
	cases := map[string]struct {
		step   int
		micros []uint32
	}{
		"every chunk":       {1, []uint32{0, 20_000, 40_123, 61_000}},
		"every third chunk": {3, []uint32{0, 5, 4_000_000_000}},
		"past one byte":     {1, make([]uint32, 300)}, // indexes over 127 take two bytes
		"one":               {1, []uint32{7}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			unpacked, packed := packedAndUnpacked(t, first, c.step, c.micros)
			want := otlpSpans(unpacked)
			if got := otlpSpans(packed); !equalResourceSpans(got, want) {
				t.Fatalf("messages of the packed spans differ from those of the spans with events")
			}
			checkDirectEncoding(t, packed, want)
		})
	}
}

func equalResourceSpans(a, b []*tracepb.ResourceSpans) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestUnpackTokenEvents gives back the events packed, and none for
// attributes without them or with a damaged value.
func TestUnpackTokenEvents(t *testing.T) {
	first := time.Unix(1767225600, 1)
	micros := []uint32{0, 1, 1_000_000}
	got := UnpackTokenEvents([]attribute.KeyValue{attribute.Int("x", 1), PackTokenEvents(first, 2, micros)})
	want := tokenEvents(first, 2, micros)
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || !got[i].Time.Equal(want[i].Time) ||
			!slices.Equal(got[i].Attributes, want[i].Attributes) {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for name, attrs := range map[string][]attribute.KeyValue{
		"none":      {attribute.Int("x", 1)},
		"truncated": {packedTokenEventsKey.String("short")},
		"odd size":  {packedTokenEventsKey.String(PackTokenEvents(first, 1, micros).Value.AsString() + "x")},
		"not text":  {packedTokenEventsKey.Int(3)},
	} {
		if ev := UnpackTokenEvents(attrs); len(ev) != 0 {
			t.Errorf("%s: %d events, want none", name, len(ev))
		}
	}
}

package telemetry

import (
	"encoding/binary"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Token events are the proxy's span event per output chunk: named
// TokenEventName, at the chunk's time, with the attributes ChunkIndexKey
// and ChunkTokensKey (1). Made through the SDK's AddEvent, each costs two
// allocations and a slot in the span's event list, and the exporter reads
// each back attribute by attribute. A span can carry them packed in one
// attribute instead (PackTokenEvents): the first chunk's time, the index
// step and 4 bytes per event. This package's exporters write each packed
// event exactly as they would write the SDK's event, after the span's own
// events, and leave the attribute out. Other exporters do not know the
// attribute, so only code that knows its spans reach NewTracing's
// exporters packs (gateway.TokenEvents.Packed).
const (
	TokenEventName = "token"
	ChunkIndexKey  = attribute.Key("tokentrace.chunk.index")
	ChunkTokensKey = attribute.Key("tokentrace.chunk.tokens")

	packedTokenEventsKey = attribute.Key("tokentrace.token_events.packed")
	packedHeader         = 12 // first chunk's Unix nanoseconds, index step
)

// PackTokenEvents is the attribute standing for the token events of
// chunks at first plus micros[i] microseconds, chunk i having the index
// i × step.
func PackTokenEvents(first time.Time, step int, micros []uint32) attribute.KeyValue {
	b := make([]byte, packedHeader+4*len(micros))
	binary.LittleEndian.PutUint64(b, uint64(first.UnixNano()))
	binary.LittleEndian.PutUint32(b[8:], uint32(step))
	for i, us := range micros {
		binary.LittleEndian.PutUint32(b[packedHeader+4*i:], us)
	}
	// b is never written again: the string shares it instead of copying.
	return packedTokenEventsKey.String(unsafe.String(unsafe.SliceData(b), len(b)))
}

// packedEvents are the token events packed in a span's attributes, as
// PackTokenEvents made them; empty when the span has none.
type packedEvents string

func packedOf(attrs []attribute.KeyValue) packedEvents {
	for i := len(attrs) - 1; i >= 0; i-- {
		if attrs[i].Key != packedTokenEventsKey || attrs[i].Value.Type() != attribute.STRING {
			continue
		}
		if s := attrs[i].Value.AsString(); len(s) >= packedHeader && (len(s)-packedHeader)%4 == 0 {
			return packedEvents(s)
		}
	}
	return ""
}

func (p packedEvents) len() int {
	if len(p) < packedHeader {
		return 0
	}
	return (len(p) - packedHeader) / 4
}

// event is event i's time (Unix nanoseconds) and chunk index.
func (p packedEvents) event(i int) (uint64, int64) {
	first := int64(le64(string(p[:8])))
	step := int64(le32(string(p[8:12])))
	us := int64(le32(string(p[packedHeader+4*i:])))
	return uint64(max(0, first+us*1000)), int64(i) * step
}

func le32(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func le64(s string) uint64 { return uint64(le32(s)) | uint64(le32(s[4:]))<<32 }

// isPacked reports whether kv is the packed events, which exporters leave
// out of the attributes.
func isPacked(kv attribute.KeyValue) bool { return kv.Key == packedTokenEventsKey }

// sizePacked sizes the packed events as repeated Span.events (field 11).
func sizePacked(p packedEvents) int {
	n := 0
	for i := range p.len() {
		n += msgLen(11, tokenEventLen(p.event(i)))
	}
	return n
}

func appendPacked(b []byte, p packedEvents) []byte {
	for i := range p.len() {
		t, index := p.event(i)
		b = protowire.AppendVarint(protowire.AppendTag(b, 11, protowire.BytesType), uint64(tokenEventLen(t, index)))
		b = appendFixed64(b, 1, t)
		b = appendStr(b, 2, TokenEventName)
		b = appendIntAttr(b, 3, ChunkIndexKey, index)
		b = appendIntAttr(b, 3, ChunkTokensKey, 1)
	}
	return b
}

// tokenEventLen is the size of a Span.Event message of one token event.
func tokenEventLen(t uint64, index int64) int {
	return fixed64Len(1, t) + strLen(2, TokenEventName) + msgLen(3, intAttrLen(ChunkIndexKey, index)) +
		msgLen(3, intAttrLen(ChunkTokensKey, 1))
}

// intAttrLen is the size of a KeyValue message with an int value.
func intAttrLen(k attribute.Key, v int64) int {
	return strLen(1, string(k)) + msgLen(2, protowire.SizeTag(3)+protowire.SizeVarint(uint64(v)))
}

func appendIntAttr(b []byte, num protowire.Number, k attribute.Key, v int64) []byte {
	b = protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(intAttrLen(k, v)))
	b = appendStr(b, 1, string(k))
	b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.BytesType),
		uint64(protowire.SizeTag(3)+protowire.SizeVarint(uint64(v))))
	return protowire.AppendVarint(protowire.AppendTag(b, 3, protowire.VarintType), uint64(v))
}

// withoutPacked is attrs without the packed events; attrs itself when
// they have none.
func withoutPacked(attrs []attribute.KeyValue) []attribute.KeyValue {
	for i, kv := range attrs {
		if !isPacked(kv) {
			continue
		}
		out := make([]attribute.KeyValue, 0, len(attrs)-1)
		out = append(out, attrs[:i]...)
		for _, kv := range attrs[i+1:] {
			if !isPacked(kv) {
				out = append(out, kv)
			}
		}
		return out
	}
	return attrs
}

// UnpackTokenEvents returns the token events that attrs carry packed
// (PackTokenEvents), as AddEvent would have made them; none when they
// carry none. For exporters of other kinds, and tests.
func UnpackTokenEvents(attrs []attribute.KeyValue) []sdktrace.Event {
	p := packedOf(attrs)
	out := make([]sdktrace.Event, 0, p.len())
	for i := range p.len() {
		t, index := p.event(i)
		out = append(out, sdktrace.Event{Name: TokenEventName, Time: time.Unix(0, int64(t)),
			Attributes: []attribute.KeyValue{ChunkIndexKey.Int64(index), ChunkTokensKey.Int(1)}})
	}
	return out
}

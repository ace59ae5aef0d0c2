package stream

import (
	"reflect"
	"testing"
)

// frames cuts body into chunks, fed in pieces of at most step bytes.
func frames(format Format, body string, step, maxChunk int) []string {
	f := newFramer(format, maxChunk)
	var got []string
	emit := func(b []byte) { got = append(got, string(b)) }
	for i := 0; i < len(body); i += step {
		j := min(i+step, len(body))
		f.write([]byte(body[i:j]), emit)
	}
	f.close(emit)
	return got
}

func TestFraming(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		body   string
		want   []string
	}{
		{"ndjson lines", FormatNDJSON, "{\"a\":1}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"ndjson crlf and blanks", FormatNDJSON, "{\"a\":1}\r\n\r\n\n{\"b\":2}\r\n", []string{`{"a":1}`, `{"b":2}`}},
		{"ndjson last line unterminated", FormatNDJSON, "{\"a\":1}\n{\"b\":2}", []string{`{"a":1}`, `{"b":2}`}},
		{"sse events", FormatSSE, "data: {\"a\":1}\n\ndata: [DONE]\n\n", []string{`{"a":1}`, `[DONE]`}},
		{"sse crlf", FormatSSE, "data: x\r\n\r\ndata: y\r\n\r\n", []string{"x", "y"}},
		{"sse multi-line data joined", FormatSSE, "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"sse no space after colon", FormatSSE, "data:x\n\n", []string{"x"}},
		{"sse comments, event and id fields ignored", FormatSSE, ": ping\nevent: message\nid: 7\ndata: x\n\n: keep-alive\n\n", []string{"x"}},
		{"sse event without data is no chunk", FormatSSE, "event: ping\n\n", nil},
		{"sse event unterminated at end is dropped", FormatSSE, "data: x\n\ndata: y\n", []string{"x"}},
		{"json whole body", FormatJSON, "{\"a\":\n 1}\n", []string{"{\"a\":\n 1}\n"}},
		{"json empty body", FormatJSON, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every way of cutting the body into reads gives the same chunks.
			for step := 1; step <= len(tt.body)+1; step++ {
				if got := frames(tt.format, tt.body, step, 0); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("in reads of %d bytes: chunks = %q, want %q", step, got, tt.want)
				}
			}
		})
	}
}

func TestFramingDropsOversizedChunks(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		body   string
		want   []string
	}{
		{"ndjson", FormatNDJSON, "{\"a\":1}\n{\"long\":\"xxxxxxxxxxxxxxxxxxxx\"}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"sse", FormatSSE, "data: x\n\ndata: xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\ndata: y\n\n", []string{"x", "y"}},
		{"json", FormatJSON, "{\"long\":\"xxxxxxxxxxxxxxxxxxxx\"}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for step := 1; step <= len(tt.body); step++ {
				if got := frames(tt.format, tt.body, step, 16); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("in reads of %d bytes: chunks = %q, want %q", step, got, tt.want)
				}
			}
		})
	}
}

func TestFormatOf(t *testing.T) {
	tests := map[string]Format{
		"text/event-stream":                 FormatSSE,
		"text/event-stream; charset=utf-8":  FormatSSE,
		"application/x-ndjson":              FormatNDJSON,
		"application/json; charset=utf-8":   FormatJSON,
		"":                                  FormatJSON,
		" text/event-stream ;charset=utf-8": FormatSSE,
	}
	for ct, want := range tests {
		if got := FormatOf(ct); got != want {
			t.Errorf("FormatOf(%q) = %v, want %v", ct, got, want)
		}
	}
}

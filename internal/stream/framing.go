package stream

import "bytes"

// Format is the framing of a response body.
type Format int

const (
	// FormatJSON is a single JSON document (a non-streaming response).
	FormatJSON Format = iota
	// FormatNDJSON is newline-delimited JSON, as Ollama streams.
	FormatNDJSON
	// FormatSSE is server-sent events, as OpenAI-compatible servers stream.
	FormatSSE
)

func (f Format) String() string {
	switch f {
	case FormatNDJSON:
		return "ndjson"
	case FormatSSE:
		return "sse"
	default:
		return "json"
	}
}

// FormatOf tells the framing from a response's Content-Type.
func FormatOf(contentType string) Format {
	ct := contentType
	if i := bytes.IndexByte([]byte(ct), ';'); i >= 0 {
		ct = ct[:i]
	}
	switch string(bytes.TrimSpace([]byte(ct))) {
	case "text/event-stream":
		return FormatSSE
	case "application/x-ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines":
		return FormatNDJSON
	default:
		return FormatJSON
	}
}

// DefaultMaxChunk bounds the bytes one chunk may hold before it is dropped
// as malformed; the framer never holds more than this per stream.
const DefaultMaxChunk = 1 << 20

// framer cuts a byte stream into chunks. It copies only what spans Writes.
type framer struct {
	format   Format
	maxChunk int
	pending  []byte // an unfinished line (or, for FormatJSON, the whole body)
	data     []byte // SSE: data lines of the event being read
	hasData  bool
	overflow bool // the current line or event outgrew maxChunk
	dropped  int  // chunks dropped for size
}

func newFramer(format Format, maxChunk int) *framer {
	f := new(framer)
	f.init(format, maxChunk)
	return f
}

// init sets up f for a new body, keeping its buffers.
func (f *framer) init(format Format, maxChunk int) {
	if maxChunk <= 0 {
		maxChunk = DefaultMaxChunk
	}
	*f = framer{format: format, maxChunk: maxChunk, pending: f.pending[:0], data: f.data[:0]}
}

// write feeds p and calls emit for every chunk completed by it. The slice
// handed to emit is valid only during the call.
func (f *framer) write(p []byte, emit func([]byte)) {
	if f.format == FormatJSON {
		if f.overflow {
			return
		}
		if len(f.pending)+len(p) > f.maxChunk {
			f.overflow, f.pending = true, nil
			f.dropped++
			return
		}
		f.pending = append(f.pending, p...)
		return
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.hold(p)
			return
		}
		line := p[:i]
		if len(f.pending) > 0 || f.overflow || len(line) > f.maxChunk {
			f.hold(line)
			line = f.pending
		}
		if !f.overflow {
			f.line(bytes.TrimSuffix(line, []byte{'\r'}), emit)
		} else {
			f.overflow = false
			f.dropped++
		}
		f.pending = f.pending[:0]
		p = p[i+1:]
	}
}

func (f *framer) hold(p []byte) {
	if f.overflow {
		return
	}
	if len(f.pending)+len(p) > f.maxChunk {
		f.overflow, f.pending = true, f.pending[:0]
		return
	}
	f.pending = append(f.pending, p...)
}

// line handles one complete line (without its terminator).
func (f *framer) line(line []byte, emit func([]byte)) {
	if f.format == FormatNDJSON {
		if len(bytes.TrimSpace(line)) > 0 {
			emit(line)
		}
		return
	}
	// SSE (https://html.spec.whatwg.org/multipage/server-sent-events.html).
	if len(line) == 0 {
		if f.hasData {
			emit(f.data)
		}
		f.data, f.hasData = f.data[:0], false
		return
	}
	if line[0] == ':' {
		return
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		value = bytes.TrimPrefix(value, []byte{' '})
	}
	if string(name) != "data" {
		return
	}
	if len(f.data)+len(value)+1 > f.maxChunk {
		f.data, f.hasData = f.data[:0], false
		f.dropped++
		return
	}
	if f.hasData {
		f.data = append(f.data, '\n')
	}
	f.data = append(f.data, value...)
	f.hasData = true
}

// close flushes what the end of the body completes: a final NDJSON line
// without its newline, or the whole of a JSON body. An SSE event without its
// blank line is incomplete and, as the spec says, dropped.
func (f *framer) close(emit func([]byte)) {
	switch f.format {
	case FormatJSON:
		if !f.overflow && len(bytes.TrimSpace(f.pending)) > 0 {
			emit(f.pending)
		}
	case FormatNDJSON:
		if !f.overflow && len(bytes.TrimSpace(f.pending)) > 0 {
			emit(bytes.TrimSuffix(f.pending, []byte{'\r'}))
		}
	}
	f.pending, f.data = nil, nil
}

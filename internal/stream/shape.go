package stream

import "bytes"

// shape is a stream's last chunk seen whole, when it was a plain output
// chunk (of the OpenAI-compatible API or a Messages content_block_delta):
// its bytes but for its one output string, and what inspect made of it. A
// server streams the same chunk over and over with only the token's text
// changed, so a chunk with the same bytes before and after a valid,
// non-empty string reads the same but for that text, which the Meter does
// not read (NoChunkText): comparing bytes finds that for a fraction of what
// lexing the JSON costs.
//
// Only the string's bytes differ, and a JSON string stays one value
// whatever valid bytes it holds, so the document parses to the same values
// but that string's, which was the chunk's one output text; its being
// non-empty is all inspect read of it. A chunk whose other bytes change (a
// timestamp per chunk, as Ollama's own API sends, or the Responses API's
// sequence number) is read whole; after two shapes in a row that did not
// hold for the next chunk, the stream stops keeping them.
type shape struct {
	buf    []byte // the prefix (with the string's opening quote), then the suffix (from its closing quote)
	pre    int    // the prefix's length
	ci     chunkInfo
	ok     bool
	misses uint8 // shapes in a row that did not hold for the chunk after the one they were taken from
	fresh  bool  // taken from the chunk before this one
}

// maxShape bounds the bytes a stream keeps of its chunk's shape.
const maxShape = 512

// stopShapes is how many shapes in a row may fail the chunk after theirs
// before the stream keeps no more.
const stopShapes = 2

// match reports whether payload has the shape: the same prefix and suffix
// around a non-empty, valid JSON string. Then it reads as s.ci.
func (s *shape) match(payload []byte) bool {
	if !s.ok {
		return false
	}
	fresh := s.fresh
	s.fresh = false
	suf := s.buf[s.pre:]
	end := len(payload) - len(suf) // where the string's closing quote must be
	if end > s.pre && bytes.Equal(payload[:s.pre], s.buf[:s.pre]) && bytes.Equal(payload[end:], suf) {
		l := lexer{data: payload[:end+1], i: s.pre - 1}
		l.str()
		if !l.bad && l.i == len(l.data) {
			s.misses = 0
			return true
		}
	}
	s.ok = false
	if fresh {
		s.misses++
	}
	return false
}

// learn takes payload's shape when sc has just read it whole into ci, as
// a plain output chunk of one output string (sc.only).
func (s *shape) learn(sc *chunkScanner, payload []byte, ci chunkInfo) {
	text := sc.only
	if len(text.raw) == 0 || s.misses >= stopShapes || len(payload) > maxShape {
		return
	}
	start := cap(payload) - cap(text.raw) // text.raw is a part of payload
	end := start + len(text.raw)
	if start < 1 || end >= len(payload) || payload[start-1] != '"' || payload[end] != '"' {
		return
	}
	s.buf = append(append(s.buf[:0], payload[:start]...), payload[end:]...)
	s.pre, s.ci, s.ok, s.fresh = start, ci, true, true
}

// onlyText is the one output string of the chunk inspectUnion has just
// read, when that is all it holds besides what every chunk of the stream
// repeats: one choice, its delta with exactly one of content,
// reasoning_content and reasoning, no tool calls, no text, no finish
// reason, no Ollama fields, no usage, no error. Empty otherwise.
func (sc *chunkScanner) onlyText() jstr {
	f := &sc.f
	if f.choices != 1 || f.message.set || len(f.response.raw) > 0 || len(f.thinking.raw) > 0 || f.done ||
		f.usageSet || (len(f.errRaw) > 0 && string(f.errRaw) != "null") {
		return jstr{}
	}
	c := &sc.choice0
	d := &c.delta
	if !d.set || c.message.set || len(c.text.raw) > 0 || len(c.finishReason.raw) > 0 || len(d.toolCalls) > 0 {
		return jstr{}
	}
	var text jstr
	n := 0
	for _, s := range [...]jstr{d.content, d.reasoningContent, d.reasoning} {
		if len(s.raw) > 0 {
			text = s
			n++
		}
	}
	if n != 1 {
		return jstr{}
	}
	return text
}

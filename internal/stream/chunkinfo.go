package stream

import (
	"bytes"

	"github.com/tokentrace/tokentrace/internal/bounded"
)

// inspect reads one chunk of the given API: its end marker, else what the
// API's read finds. Strings equal to model or finish are returned as those
// strings, so a Meter passing its current ones allocates nothing for them;
// ci.text is built only when wantText.
func (sc *chunkScanner) inspect(api API, payload []byte, model, finish string, wantText bool) chunkInfo {
	sc.only = jstr{}
	w := api.Wire()
	if w.endMarker != nil && bytes.Equal(bytes.TrimSpace(payload), w.endMarker) {
		return chunkInfo{final: true, done: true}
	}
	// A switch, not a function in the table: an indirect call would make
	// every caller's scanner escape to the heap.
	switch w.reader {
	case readResponses:
		return sc.inspectResponses(payload, model, finish, wantText)
	case readMessages:
		return sc.inspectMessages(payload, model, finish, wantText)
	default:
		return sc.inspectUnion(payload, model, finish, wantText)
	}
}

// chunkReader names the code that reads one API's chunks.
type chunkReader uint8

const (
	// readUnion reads Ollama's and the OpenAI-compatible chunks alike.
	readUnion chunkReader = iota
	// readResponses reads the Responses API's events.
	readResponses
	// readMessages reads the Messages API's events.
	readMessages
)

// inspectUnion reads a chunk of Ollama's or the OpenAI-compatible API: one
// scanner reads the fields of both.
func (sc *chunkScanner) inspectUnion(payload []byte, model, finish string, wantText bool) chunkInfo {
	var ci chunkInfo
	sc.scan(payload)
	if sc.bad {
		ci.malformed = true
		return ci
	}
	f := &sc.f
	ci.model = sc.share(f.model, model)
	if len(f.errRaw) > 0 && string(f.errRaw) != "null" {
		ci.isErr, ci.errMsg = true, errorMessage(f.errRaw)
		return ci
	}
	t := textParts{want: wantText, buf: sc.text[:0]}

	// Ollama
	if m := &f.message; m.set {
		t.add(m.content)
		t.add(m.thinking)
		ci.content = len(m.content.raw) > 0 || hasToolCalls(m.toolCalls)
		ci.output = t.n > 0 || ci.content
	}
	if len(f.response.raw) > 0 || len(f.thinking.raw) > 0 {
		t.add(f.response)
		t.add(f.thinking)
		ci.output = true
		ci.content = ci.content || len(f.response.raw) > 0
	}
	var finishReason jstr
	if f.done {
		ci.final, ci.done = true, true
		finishReason = f.doneReason
		o := OllamaTimings{TotalDuration: f.totalDur, LoadDuration: f.loadDur, PromptEvalDuration: f.promptEvalDur, EvalDuration: f.evDur}
		if f.hasEvalCount {
			o.EvalCount = int(f.evalCount)
			ci.outputTokens, ci.hasUsage = o.EvalCount, true
		}
		if f.hasPromptEvalCount {
			o.PromptEvalCount = int(f.promptEvalCount)
			ci.inputTokens = o.PromptEvalCount
		}
		ci.ollama = &o
	}

	// OpenAI
	for i := range f.choices {
		c := sc.choice(i)
		n := t.n
		switch {
		case c.delta.set:
			t.add(c.delta.content)
			t.add(c.delta.reasoningContent)
			t.add(c.delta.reasoning)
			content := len(c.delta.content.raw) > 0 || hasToolCalls(c.delta.toolCalls)
			ci.content = ci.content || content
			ci.output = ci.output || t.n > n || content
		case c.message.set:
			t.add(c.message.content)
			t.add(c.message.reasoningContent)
			content := len(c.message.content.raw) > 0 || hasToolCalls(c.message.toolCalls)
			ci.content = ci.content || content
			ci.output = ci.output || t.n > n || content
		}
		if len(c.text.raw) > 0 {
			t.add(c.text)
			ci.output, ci.content = true, true
		}
		if len(c.finishReason.raw) > 0 {
			ci.final = true
			finishReason = c.finishReason
		}
	}
	ci.finishReason = sc.share(finishReason, finish)
	if f.usageSet {
		ci.inputTokens, ci.outputTokens, ci.hasUsage = int(f.promptTokens), int(f.completionTokens), true
		if f.compDetails && f.hasReasoningTokens {
			ci.reasoningTokens, ci.hasReasoningTokens = int(f.reasoningTokens), true
		}
		if f.promptDetails && f.hasCachedTokens {
			ci.cachedTokens, ci.hasCachedTokens = int(f.cachedTokens), true
		}
	}
	if wantText {
		ci.text = t.string(sc)
		sc.text = t.buf
	} else {
		sc.only = sc.onlyText()
	}
	return ci
}

// stringOf returns the value of s.
func (sc *chunkScanner) stringOf(s jstr) string { return string(sc.value(s)) }

// share returns the value of s, as known when it equals known: a value
// every stream of a server repeats (the model name, the finish reason). A
// new one comes from sharedValues, so the streams' known values are one
// copy, which their every chunk reads from the CPU's caches instead of
// from memory of its own.
func (sc *chunkScanner) share(s jstr, known string) string {
	v := sc.value(s)
	if v == nil {
		return ""
	}
	if string(v) == known {
		return known
	}
	return sharedValue(v)
}

// value is the bytes of s, unescaped into the scanner's scratch when need
// be; nil when s is empty.
func (sc *chunkScanner) value(s jstr) []byte {
	if len(s.raw) == 0 {
		return nil
	}
	if !s.esc {
		return s.raw
	}
	sc.scratch = appendUnquoted(sc.scratch[:0], s.raw)
	return sc.scratch
}

// sharedValues hands out one string per distinct value, up to
// maxSharedValues of them (after that, each is its own copy) and up to
// maxSharedValue bytes each.
var sharedValues = bounded.NewStrings(maxSharedValues)

const (
	maxSharedValues = 4096
	maxSharedValue  = 256
)

// sharedValue is v from sharedValues when it fits there, else a copy of
// its own.
func sharedValue(v []byte) string {
	if len(v) <= maxSharedValue {
		if s, ok := bounded.Keep(sharedValues, v); ok {
			return s
		}
	}
	return string(v)
}

// textParts joins the non-empty text strings of a chunk, with one
// allocation for the result.
type textParts struct {
	want  bool
	n     int // non-empty strings added
	first jstr
	buf   []byte // the join, once there are two
}

func (t *textParts) add(s jstr) {
	if len(s.raw) == 0 {
		return
	}
	t.n++
	if !t.want {
		return
	}
	switch t.n {
	case 1:
		t.first = s
		return
	case 2:
		t.buf = t.first.appendTo(t.buf)
	}
	t.buf = s.appendTo(t.buf)
}

func (t *textParts) string(sc *chunkScanner) string {
	switch {
	case t.n == 0:
		return ""
	case t.n > 1:
		return string(t.buf)
	case !t.first.esc:
		return string(t.first.raw)
	}
	sc.scratch = appendUnquoted(sc.scratch[:0], t.first.raw)
	return string(sc.scratch)
}

package stream

import "strconv"

// msgFields is Ollama's message, or an OpenAI choice's delta or message.
type msgFields struct {
	set                                            bool // the pointer is not nil
	content, thinking, reasoningContent, reasoning jstr
	toolCalls                                      []byte // the raw value
}

// The members each kind of msgFields has; others are unknown.
type msgKind uint8

const (
	ollamaMessage msgKind = iota // content, thinking, tool_calls
	openAIDelta                  // content, reasoning_content, reasoning, tool_calls
	openAIMessage                // content, reasoning_content, tool_calls
)

type choiceFields struct {
	delta, message msgFields
	text           jstr
	finishReason   jstr // a *string: null resets it to ""
}

// chunkFields is what a chunk holds of the fields inspect reads, as views
// into the payload.
type chunkFields struct {
	model                                   jstr
	message                                 msgFields
	response, thinking, doneReason          jstr
	done                                    bool
	totalDur, loadDur, promptEvalDur, evDur int64
	promptEvalCount, evalCount              int64
	hasPromptEvalCount, hasEvalCount        bool
	usageSet                                bool
	promptTokens, completionTokens          int64
	// usage.completion_tokens_details.reasoning_tokens and
	// usage.prompt_tokens_details.cached_tokens (*struct of *int each).
	compDetails, promptDetails          bool
	reasoningTokens, cachedTokens       int64
	hasReasoningTokens, hasCachedTokens bool
	errRaw                              []byte
	choices                             int // the choices slice's length
}

// chunkScanner reads chunks without allocating, decoding only what inspect
// needs. A Meter keeps one, so its buffers are reused from chunk to chunk.
type chunkScanner struct {
	lexer
	f chunkFields
	// The choices slice's backing array: decoding a second "choices" member
	// reuses the elements as encoding/json does (it merges into them).
	choice0 choiceFields
	extra   []choiceFields
	touched int // elements of the backing array that may hold data
	scratch []byte
	ev      eventScan
	text    []byte
	// only is the one output string of the chunk just read, when its
	// reader found that and nothing else the stream does not repeat (a
	// plain delta); empty otherwise. A Meter keeps the chunk's shape
	// around it (shape.go).
	only jstr
}

// choice returns element i of the choices backing array, zeroing it on
// first use.
func (sc *chunkScanner) choice(i int) *choiceFields {
	if i >= sc.touched {
		sc.touched = i + 1
		if i == 0 {
			sc.choice0 = choiceFields{}
		} else if i-1 < len(sc.extra) {
			sc.extra[i-1] = choiceFields{}
		} else {
			sc.extra = append(sc.extra, choiceFields{})
		}
	}
	if i == 0 {
		return &sc.choice0
	}
	return &sc.extra[i-1]
}

// scan reads payload into sc.f; sc.bad reports a chunk encoding/json would
// refuse to decode into the reference struct.
func (sc *chunkScanner) scan(payload []byte) {
	sc.lexer = lexer{data: payload, deep: sc.deep[:0]}
	sc.f = chunkFields{}
	sc.touched = 0
	switch sc.peek() {
	case '{':
		sc.top()
	case 'n':
		sc.literal("null") // leaves the struct as it is
	default:
		sc.fail() // no other JSON value decodes into a struct
	}
	sc.ws()
	if sc.i != len(sc.data) {
		sc.fail()
	}
}

func (sc *chunkScanner) top() {
	f := &sc.f
	if !sc.beginObject() {
		return
	}
	for {
		k := sc.key()
		if sc.bad {
			return
		}
		switch sc.fieldOf(k) {
		case fModel:
			sc.stringInto(&f.model)
		case fMessage:
			sc.msg(&f.message, ollamaMessage)
		case fResponse:
			sc.stringInto(&f.response)
		case fThinking:
			sc.stringInto(&f.thinking)
		case fDone:
			sc.boolInto(&f.done)
		case fDoneReason:
			sc.stringInto(&f.doneReason)
		case fTotalDuration:
			sc.intInto(&f.totalDur, 64)
		case fLoadDuration:
			sc.intInto(&f.loadDur, 64)
		case fPromptEvalDuration:
			sc.intInto(&f.promptEvalDur, 64)
		case fEvalDuration:
			sc.intInto(&f.evDur, 64)
		case fPromptEvalCount:
			sc.intPtrInto(&f.promptEvalCount, &f.hasPromptEvalCount)
		case fEvalCount:
			sc.intPtrInto(&f.evalCount, &f.hasEvalCount)
		case fChoices:
			sc.choices()
		case fUsage:
			sc.usage()
		case fError:
			f.errRaw = sc.skipValue()
		default:
			sc.skipValue()
		}
		if !sc.more('}') {
			return
		}
	}
}

// msg reads a value for a *struct field of the given kind.
func (sc *chunkScanner) msg(m *msgFields, kind msgKind) {
	if !sc.object(&m.set) {
		return
	}
	if !m.set {
		*m = msgFields{set: true}
	}
	if !sc.beginObject() {
		return
	}
	for {
		k := sc.key()
		if sc.bad {
			return
		}
		switch f := sc.fieldOf(k); {
		case f == fContent:
			sc.stringInto(&m.content)
		case f == fThinking && kind == ollamaMessage:
			sc.stringInto(&m.thinking)
		case f == fReasoningContent && kind != ollamaMessage:
			sc.stringInto(&m.reasoningContent)
		case f == fReasoning && kind == openAIDelta:
			sc.stringInto(&m.reasoning)
		case f == fToolCalls:
			m.toolCalls = sc.skipValue()
		default:
			sc.skipValue()
		}
		if !sc.more('}') {
			return
		}
	}
}

// choices reads a value for the choices slice.
func (sc *chunkScanner) choices() {
	switch sc.peek() {
	case 'n':
		sc.literal("null")
		sc.f.choices, sc.touched = 0, 0
		return
	case '[':
	default:
		sc.fail()
		return
	}
	i := 0
	if sc.beginArray() {
		for {
			sc.choiceValue(sc.choice(i))
			i++
			if !sc.more(']') {
				break
			}
		}
	}
	sc.f.choices = i
	if i == 0 {
		sc.touched = 0 // encoding/json makes a new empty slice
	}
}

func (sc *chunkScanner) choiceValue(c *choiceFields) {
	switch sc.peek() {
	case 'n':
		sc.literal("null") // leaves the element as it is
		return
	case '{':
	default:
		sc.fail()
		return
	}
	if !sc.beginObject() {
		return
	}
	for {
		k := sc.key()
		if sc.bad {
			return
		}
		switch sc.fieldOf(k) {
		case fDelta:
			sc.msg(&c.delta, openAIDelta)
		case fMessage:
			sc.msg(&c.message, openAIMessage)
		case fText:
			sc.stringInto(&c.text)
		case fFinishReason:
			sc.stringPtrInto(&c.finishReason)
		default:
			sc.skipValue()
		}
		if !sc.more('}') {
			return
		}
	}
}

func (sc *chunkScanner) usage() {
	f := &sc.f
	if !sc.object(&f.usageSet) {
		return
	}
	if !f.usageSet {
		f.usageSet, f.promptTokens, f.completionTokens = true, 0, 0
		f.compDetails, f.promptDetails = false, false
	}
	if !sc.beginObject() {
		return
	}
	for {
		k := sc.key()
		if sc.bad {
			return
		}
		switch sc.fieldOf(k) {
		case fPromptTokens:
			sc.intInto(&f.promptTokens, strconv.IntSize)
		case fCompletionTokens:
			sc.intInto(&f.completionTokens, strconv.IntSize)
		case fCompletionTokensDetails:
			sc.tokenDetails(&f.compDetails, fReasoningTokens, &f.reasoningTokens, &f.hasReasoningTokens)
		case fPromptTokensDetails:
			sc.tokenDetails(&f.promptDetails, fCachedTokens, &f.cachedTokens, &f.hasCachedTokens)
		default:
			sc.skipValue()
		}
		if !sc.more('}') {
			return
		}
	}
}

// tokenDetails reads a value for a *struct{ N *int } field whose one member
// is want.
func (sc *chunkScanner) tokenDetails(set *bool, want field, n *int64, has *bool) {
	if !sc.object(set) {
		return
	}
	if !*set {
		*set, *n, *has = true, 0, false
	}
	if !sc.beginObject() {
		return
	}
	for {
		k := sc.key()
		if sc.bad {
			return
		}
		if sc.fieldOf(k) == want {
			sc.intPtrInto(n, has)
		} else {
			sc.skipValue()
		}
		if !sc.more('}') {
			return
		}
	}
}

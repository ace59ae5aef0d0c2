package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Operation names (gen_ai.operation.name).
const (
	OpChat           = "chat"
	OpTextCompletion = "text_completion"
	OpEmbeddings     = "embeddings"
)

// Request is what a request body says about the inference it asks for.
type Request struct {
	Model     string
	Stream    bool
	MaxTokens int // 0 when not set
}

// ParseRequest reads the model, stream flag and output limit from an
// inference request body without changing it. A body that is not a JSON
// object is an error.
//
// It reads the body in place with the chunk scanner's lexer, exactly as
// encoding/json would decode it into parseRequestJSON's struct
// (FuzzParseRequestMatchesReference); a body that lexer refuses goes to
// parseRequestJSON, for encoding/json's own error.
func ParseRequest(e Endpoint, body []byte) (Request, error) {
	if w, ok := scanRequest(body); ok {
		return w.request(e), nil
	}
	return parseRequestJSON(e, body)
}

// requestFields are the request's fields as read, before defaults.
type requestFields struct {
	model                    jstr
	stream, streamSet        bool
	maxTokens, maxCompletion int64
	maxOutput, numPredict    int64
}

func (w requestFields) request(e Endpoint) Request {
	r := Request{Model: string(w.model.raw), Stream: e.StreamsByDefault}
	if w.model.esc {
		r.Model = string(w.model.appendTo(nil))
	}
	if w.streamSet {
		r.Stream = w.stream
	}
	r.MaxTokens = int(firstPositive(w.maxCompletion, w.maxOutput, w.maxTokens, w.numPredict))
	return r
}

func firstPositive(ns ...int64) int64 {
	for _, n := range ns {
		if n > 0 {
			return n
		}
	}
	return 0
}

// requestField names a member of a request body ParseRequest reads.
type requestField uint8

const (
	rUnknown requestField = iota
	rModel
	rStream
	rMaxTokens
	rMaxCompletionTokens
	rMaxOutputTokens
	rOptions
	rNumPredict
)

func exactRequestField(key []byte) requestField {
	switch string(key) {
	case "model":
		return rModel
	case "stream":
		return rStream
	case "max_tokens":
		return rMaxTokens
	case "max_completion_tokens":
		return rMaxCompletionTokens
	case "max_output_tokens":
		return rMaxOutputTokens
	case "options":
		return rOptions
	case "num_predict":
		return rNumPredict
	}
	return rUnknown
}

// scanRequest reads body as encoding/json decodes it into
// parseRequestJSON's struct; false when encoding/json would fail.
func scanRequest(body []byte) (requestFields, bool) {
	var w requestFields
	l := &lexer{data: body}
	var scratch []byte
	switch l.peek() {
	case '{':
		scanRequestObject(l, &w, &scratch)
	case 'n':
		l.literal("null") // leaves the struct as it is
	default:
		return w, false
	}
	l.ws()
	return w, !l.bad && l.i == len(l.data)
}

func scanRequestObject(l *lexer, w *requestFields, scratch *[]byte) {
	if !l.beginObject() {
		return
	}
	for {
		k := l.key()
		if l.bad {
			return
		}
		switch matchKey(k, scratch, exactRequestField, rUnknown) {
		case rModel:
			l.stringInto(&w.model)
		case rStream: // a *bool: null makes it nil
			if l.peek() == 'n' {
				l.literal("null")
				w.stream, w.streamSet = false, false
			} else {
				l.boolInto(&w.stream)
				w.streamSet = true
			}
		case rMaxTokens:
			l.intInto(&w.maxTokens, strconv.IntSize)
		case rMaxCompletionTokens:
			l.intInto(&w.maxCompletion, strconv.IntSize)
		case rMaxOutputTokens:
			l.intInto(&w.maxOutput, strconv.IntSize)
		case rOptions: // a struct: null leaves it as it is
			switch l.peek() {
			case '{':
				scanOptions(l, w, scratch)
			case 'n':
				l.literal("null")
			default:
				l.fail()
			}
		default:
			l.skipValue()
		}
		if !l.more('}') {
			return
		}
	}
}

func scanOptions(l *lexer, w *requestFields, scratch *[]byte) {
	if !l.beginObject() {
		return
	}
	for {
		k := l.key()
		if l.bad {
			return
		}
		if matchKey(k, scratch, exactRequestField, rUnknown) == rNumPredict {
			l.intInto(&w.numPredict, strconv.IntSize)
		} else {
			l.skipValue()
		}
		if !l.more('}') {
			return
		}
	}
}

// parseRequestJSON is ParseRequest with encoding/json: the reference the
// scanner is held to, and the error for a body it refuses.
func parseRequestJSON(e Endpoint, body []byte) (Request, error) {
	var w struct {
		Model               string `json:"model"`
		Stream              *bool  `json:"stream"`
		MaxTokens           int    `json:"max_tokens"`
		MaxCompletionTokens int    `json:"max_completion_tokens"`
		MaxOutputTokens     int    `json:"max_output_tokens"`
		Options             struct {
			NumPredict int `json:"num_predict"`
		} `json:"options"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return Request{}, err
	}
	r := Request{Model: w.Model, Stream: e.StreamsByDefault}
	if w.Stream != nil {
		r.Stream = *w.Stream
	}
	switch {
	case w.MaxCompletionTokens > 0:
		r.MaxTokens = w.MaxCompletionTokens
	case w.MaxOutputTokens > 0:
		r.MaxTokens = w.MaxOutputTokens
	case w.MaxTokens > 0:
		r.MaxTokens = w.MaxTokens
	case w.Options.NumPredict > 0:
		r.MaxTokens = w.Options.NumPredict
	}
	return r, nil
}

// Message is one chat message of a GenRequest.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// GenRequest is an inference request to build in any API: what the load
// tester sends. Every request it builds streams.
type GenRequest struct {
	Model    string
	Messages []Message
	// MaxTokens caps the output in the API's own field; 0 leaves it to the
	// server (the Messages API requires one: 4096 then).
	MaxTokens int
	// Temperature, when set, is sent in every API.
	Temperature *float64
	// Seed, when set, is sent where the API has one (Ollama's options,
	// OpenAI's chat and completions); Responses and Messages have none.
	Seed *int64
}

// Text is the messages' contents joined by blank lines, the prompt of
// endpoints that take plain text.
func (r GenRequest) Text() string {
	parts := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		parts[i] = m.Content
	}
	return strings.Join(parts, "\n\n")
}

// CanBuild reports whether Body can build a request of this endpoint.
func (e Endpoint) CanBuild() bool { return e.body != nil }

// Body is the JSON body of r for this endpoint.
func (e Endpoint) Body(r GenRequest) ([]byte, error) {
	if e.body == nil {
		return nil, fmt.Errorf("build %s request: %w", e.Path, errNoBuilder)
	}
	b, err := json.Marshal(e.body(r))
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", e.Path, err)
	}
	return b, nil
}

var errNoBuilder = errors.New("the load tester does not send this endpoint")

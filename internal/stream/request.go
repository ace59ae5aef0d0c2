package stream

import (
	"encoding/json"
	"errors"
	"fmt"
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
func ParseRequest(e Endpoint, body []byte) (Request, error) {
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

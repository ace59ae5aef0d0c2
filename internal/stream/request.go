package stream

import (
	"encoding/json"
	"strings"
)

// Operation names (gen_ai.operation.name).
const (
	OpChat           = "chat"
	OpTextCompletion = "text_completion"
	OpEmbeddings     = "embeddings"
)

// Endpoint is an inference endpoint recognised from its path.
type Endpoint struct {
	API       API
	Operation string
	// StreamsByDefault: Ollama's chat and generate stream unless told not to;
	// OpenAI's endpoints stream only when asked.
	StreamsByDefault bool
}

var endpoints = map[string]Endpoint{
	"/api/chat":            {APIOllama, OpChat, true},
	"/api/generate":        {APIOllama, OpTextCompletion, true},
	"/api/embed":           {APIOllama, OpEmbeddings, false},
	"/api/embeddings":      {APIOllama, OpEmbeddings, false},
	"/v1/chat/completions": {APIOpenAI, OpChat, false},
	"/v1/completions":      {APIOpenAI, OpTextCompletion, false},
	"/v1/embeddings":       {APIOpenAI, OpEmbeddings, false},
}

// EndpointOf recognises an inference endpoint; false for any other path
// (model lists, pulls, versions), which are forwarded but not measured.
func EndpointOf(path string) (Endpoint, bool) {
	e, ok := endpoints[strings.TrimSuffix(path, "/")]
	return e, ok
}

// APIOf tells the API family of any path: /v1/ is OpenAI's, the rest Ollama's.
func APIOf(path string) API {
	if strings.HasPrefix(path, "/v1/") {
		return APIOpenAI
	}
	return APIOllama
}

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
	case w.MaxTokens > 0:
		r.MaxTokens = w.MaxTokens
	case w.Options.NumPredict > 0:
		r.MaxTokens = w.Options.NumPredict
	}
	return r, nil
}

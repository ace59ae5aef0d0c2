package stream

import "net/http"

// openAIWire is the OpenAI-compatible API: SSE streams, a finish_reason or
// [DONE] ends them.
var openAIWire = Wire{
	API:        APIOpenAI,
	Name:       "openai",
	Prefix:     "/v1/",
	StreamType: "text/event-stream",
	endMarker:  doneMarker,
	Endpoints: []Endpoint{
		{API: APIOpenAI, Operation: OpChat, Path: "/v1/chat/completions", Name: "chat", body: openAIChatBody},
		{API: APIOpenAI, Operation: OpTextCompletion, Path: "/v1/completions", Name: "completions", body: openAICompletionBody},
		{API: APIOpenAI, Operation: OpEmbeddings, Path: "/v1/embeddings", Name: "embeddings"},
	},
	reader:    readUnion,
	errorBody: openAIErrorBody,
}

var doneMarker = []byte("[DONE]")

// openAIErrorBody is OpenAI's {"error":{"message","type","code"}}.
func openAIErrorBody(e APIError) any {
	typ := "server_error"
	if e.Status < http.StatusInternalServerError {
		typ = "invalid_request_error"
	}
	return map[string]any{"error": map[string]any{"message": e.Message, "type": typ, "code": e.Code}}
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

func openAIChatBody(r GenRequest) any {
	return struct {
		Model         string        `json:"model"`
		Messages      []Message     `json:"messages"`
		Stream        bool          `json:"stream"`
		StreamOptions streamOptions `json:"stream_options"`
		MaxTokens     int           `json:"max_tokens,omitempty"`
		Seed          *int64        `json:"seed,omitempty"`
		Temperature   *float64      `json:"temperature,omitempty"`
	}{r.Model, r.Messages, true, streamOptions{true}, r.MaxTokens, r.Seed, r.Temperature}
}

func openAICompletionBody(r GenRequest) any {
	return struct {
		Model         string        `json:"model"`
		Prompt        string        `json:"prompt"`
		Stream        bool          `json:"stream"`
		StreamOptions streamOptions `json:"stream_options"`
		MaxTokens     int           `json:"max_tokens,omitempty"`
		Seed          *int64        `json:"seed,omitempty"`
		Temperature   *float64      `json:"temperature,omitempty"`
	}{r.Model, r.Text(), true, streamOptions{true}, r.MaxTokens, r.Seed, r.Temperature}
}

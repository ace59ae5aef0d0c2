package stream

import "net/http"

// responsesWire is OpenAI's Responses API: SSE events named by "type";
// response.completed, response.incomplete or response.failed ends them.
var responsesWire = Wire{
	API:        APIResponses,
	Name:       "responses",
	Prefix:     "/v1/responses",
	StreamType: "text/event-stream",
	reader:     readResponses,
	Endpoints: []Endpoint{
		{API: APIResponses, Operation: OpChat, Path: "/v1/responses", Name: "chat", body: responsesBody},
	},
	errorBody: openAIErrorBody,
}

// responsesBody asks for a streamed response. The messages go as input
// items; Responses has no seed.
func responsesBody(r GenRequest) any {
	return struct {
		Model           string    `json:"model"`
		Input           []Message `json:"input"`
		Stream          bool      `json:"stream"`
		MaxOutputTokens int       `json:"max_output_tokens,omitempty"`
		Temperature     *float64  `json:"temperature,omitempty"`
	}{r.Model, r.Messages, true, r.MaxTokens, r.Temperature}
}

// anthropicWire is Anthropic's Messages API: SSE events named by "type";
// message_stop ends them.
var anthropicWire = Wire{
	API:        APIAnthropic,
	Name:       "anthropic",
	Prefix:     "/v1/messages",
	StreamType: "text/event-stream",
	reader:     readMessages,
	Endpoints: []Endpoint{
		{API: APIAnthropic, Operation: OpChat, Path: "/v1/messages", Name: "chat", body: anthropicBody},
	},
	errorBody: anthropicErrorBody,
}

// anthropicDefaultMaxTokens is sent when no output limit is set: the
// Messages API requires max_tokens.
const anthropicDefaultMaxTokens = 4096

// anthropicBody asks for a streamed message. System messages go to the
// top-level system; Messages has no seed.
func anthropicBody(r GenRequest) any {
	var system string
	msgs := make([]Message, 0, len(r.Messages))
	for _, m := range r.Messages {
		if m.Role == "system" {
			if system != "" {
				system += "\n\n"
			}
			system += m.Content
			continue
		}
		msgs = append(msgs, m)
	}
	max := r.MaxTokens
	if max == 0 {
		max = anthropicDefaultMaxTokens
	}
	return struct {
		Model       string    `json:"model"`
		System      string    `json:"system,omitempty"`
		Messages    []Message `json:"messages"`
		MaxTokens   int       `json:"max_tokens"`
		Stream      bool      `json:"stream"`
		Temperature *float64  `json:"temperature,omitempty"`
	}{r.Model, system, msgs, max, true, r.Temperature}
}

// anthropicErrorBody is Anthropic's {"type":"error","error":{"type","message"}}.
func anthropicErrorBody(e APIError) any {
	typ := "api_error"
	switch {
	case e.Status == http.StatusRequestEntityTooLarge:
		typ = "request_too_large"
	case e.Status == http.StatusServiceUnavailable:
		typ = "overloaded_error"
	case e.Status == http.StatusGatewayTimeout:
		typ = "timeout_error"
	case e.Status < http.StatusInternalServerError:
		typ = "invalid_request_error"
	}
	return map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": e.Message}}
}

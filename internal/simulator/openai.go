package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// The shapes of Ollama v0.6.5's openai package.

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   any     `json:"param"`
	Code    *string `json:"code"`
}

func openAIErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusNotFound:
		return "not_found_error"
	default:
		return "api_error"
	}
}

// openAIJSON writes v as the openai middleware does: json.Encoder, so with
// a trailing newline, and Content-Type application/json.
func (rs *responder) openAIJSON(status int, v any) {
	rs.whole(status, "application/json", marshalLine(v), 0)
}

// openAIError answers an error raised by Ollama's handler behind the
// middleware: the status stays, the type is always "api_error".
func (rs *responder) openAIError(status int, msg string) {
	rs.openAIJSON(status, map[string]any{"error": openAIErrorBody{Message: msg, Type: "api_error"}})
}

// openAIRequestError answers a request the middleware itself rejects
// (gin's AbortWithStatusJSON: no trailing newline, charset set).
func (rs *responder) openAIRequestError(status int, msg string) {
	b := marshal(map[string]any{"error": openAIErrorBody{Message: msg, Type: openAIErrorType(status)}})
	rs.whole(status, "application/json; charset=utf-8", b, 0)
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (f finalInfo) usage() usage {
	return usage{PromptTokens: f.promptTokens, CompletionTokens: f.evalCount, TotalTokens: f.promptTokens + f.evalCount}
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        message `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type chatCompletionChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	Usage             *usage        `json:"usage,omitempty"`
}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	FinishReason *string `json:"finish_reason"`
}

type completionChunk struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Choices           []completionChoice `json:"choices"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Usage             *usage             `json:"usage,omitempty"`
}

func sse(v any) []byte { return []byte("data: " + string(marshal(v)) + "\n\n") }

var doneEvent = []byte("data: [DONE]\n\n")

func reasonPtr(r string) *string {
	if r == "" {
		return nil
	}
	return &r
}

// openAIChatWire is /v1/chat/completions. As in Ollama v0.6.5 every chunk
// carries the role; there is no separate role-only chunk.
type openAIChatWire struct {
	id           string
	includeUsage bool
}

func (openAIChatWire) contentType(stream bool) string {
	if stream {
		return "text/event-stream"
	}
	return "application/json"
}

func (w openAIChatWire) chunk(model, text, reason string) chatCompletionChunk {
	return chatCompletionChunk{ID: w.id, Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: model,
		SystemFingerprint: "fp_ollama",
		Choices:           []chunkChoice{{Delta: message{Role: "assistant", Content: text}, FinishReason: reasonPtr(reason)}}}
}

func (w openAIChatWire) token(model, text string) []byte { return sse(w.chunk(model, text, "")) }

func (w openAIChatWire) final(f finalInfo) []chunk {
	c := w.chunk(f.model, "", f.reason)
	out := []chunk{{data: sse(c)}}
	if w.includeUsage {
		u := f.usage()
		c.Usage, c.Choices = &u, []chunkChoice{}
		out = append(out, chunk{data: sse(c)})
	}
	return append(out, chunk{data: doneEvent})
}

func (w openAIChatWire) whole(f finalInfo) []byte {
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		FinishReason *string `json:"finish_reason"`
	}
	return marshalLine(struct {
		ID                string   `json:"id"`
		Object            string   `json:"object"`
		Created           int64    `json:"created"`
		Model             string   `json:"model"`
		SystemFingerprint string   `json:"system_fingerprint"`
		Choices           []choice `json:"choices"`
		Usage             usage    `json:"usage,omitempty"`
	}{w.id, "chat.completion", time.Now().Unix(), f.model, "fp_ollama",
		[]choice{{Message: message{Role: "assistant", Content: f.text}, FinishReason: reasonPtr(f.reason)}}, f.usage()})
}

func (openAIChatWire) fail(rs *responder, status int, msg string) { rs.openAIError(status, msg) }

// openAICompletionWire is /v1/completions. As in Ollama v0.6.5, with
// include_usage every chunk carries a zero usage until the usage chunk.
type openAICompletionWire struct {
	id           string
	includeUsage bool
}

func (openAICompletionWire) contentType(stream bool) string {
	return openAIChatWire{}.contentType(stream)
}

func (w openAICompletionWire) chunk(model, text, reason string) completionChunk {
	c := completionChunk{ID: w.id, Object: "text_completion", Created: time.Now().Unix(), Model: model,
		SystemFingerprint: "fp_ollama", Choices: []completionChoice{{Text: text, FinishReason: reasonPtr(reason)}}}
	if w.includeUsage {
		c.Usage = &usage{}
	}
	return c
}

func (w openAICompletionWire) token(model, text string) []byte { return sse(w.chunk(model, text, "")) }

func (w openAICompletionWire) final(f finalInfo) []chunk {
	c := w.chunk(f.model, "", f.reason)
	out := []chunk{{data: sse(c)}}
	if w.includeUsage {
		u := f.usage()
		c.Usage, c.Choices = &u, []completionChoice{}
		out = append(out, chunk{data: sse(c)})
	}
	return append(out, chunk{data: doneEvent})
}

func (w openAICompletionWire) whole(f finalInfo) []byte {
	return marshalLine(struct {
		ID                string             `json:"id"`
		Object            string             `json:"object"`
		Created           int64              `json:"created"`
		Model             string             `json:"model"`
		SystemFingerprint string             `json:"system_fingerprint"`
		Choices           []completionChoice `json:"choices"`
		Usage             usage              `json:"usage,omitempty"`
	}{w.id, "text_completion", time.Now().Unix(), f.model, "fp_ollama",
		[]completionChoice{{Text: f.text, FinishReason: reasonPtr(f.reason)}}, f.usage()})
}

func (openAICompletionWire) fail(rs *responder, status int, msg string) { rs.openAIError(status, msg) }

// decodeOpenAI reads a body as the openai middleware's ShouldBindJSON does.
func decodeOpenAI(rs *responder, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		rs.openAIRequestError(http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

func maxTokens(p *int) int {
	if p == nil || *p <= 0 {
		return 0
	}
	return *p
}

func (s *Server) handleOpenAIChat(rs *responder, r *http.Request) {
	start := time.Now()
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content any    `json:"content"`
		} `json:"messages"`
		Stream        bool           `json:"stream"`
		StreamOptions *streamOptions `json:"stream_options"`
		MaxTokens     *int           `json:"max_tokens"`
	}
	if !decodeOpenAI(rs, r, &req) {
		return
	}
	if len(req.Messages) == 0 {
		rs.openAIRequestError(http.StatusBadRequest, "[] is too short - 'messages'")
		return
	}
	msgs := make([]message, 0, len(req.Messages))
	for _, m := range req.Messages {
		text, err := openAIContent(m.Content)
		if err != nil {
			rs.openAIRequestError(http.StatusBadRequest, err.Error())
			return
		}
		msgs = append(msgs, message{Role: m.Role, Content: text})
	}
	if req.Model == "" {
		rs.openAIError(http.StatusBadRequest, "model is required")
		return
	}
	if !s.knows(req.Model) {
		rs.openAIError(http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	wire := openAIChatWire{id: fmt.Sprintf("chatcmpl-%d", rand.IntN(999)),
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage}
	s.generate(rs, r, generation{start: start, model: req.Model, prompt: s.chatTemplate(msgs),
		userText: lastUserText(msgs), limit: maxTokens(req.MaxTokens), stream: req.Stream, wire: wire})
}

// openAIContent reads a message's content: a string or text parts.
func openAIContent(content any) (string, error) {
	switch c := content.(type) {
	case string:
		return c, nil
	case []any:
		var text string
		for _, part := range c {
			p, ok := part.(map[string]any)
			if !ok || p["type"] != "text" {
				return "", errors.New("invalid message format")
			}
			t, ok := p["text"].(string)
			if !ok {
				return "", errors.New("invalid message format")
			}
			text += t
		}
		return text, nil
	default:
		return "", fmt.Errorf("invalid message content type: %T", content)
	}
}

func (s *Server) handleOpenAICompletion(rs *responder, r *http.Request) {
	start := time.Now()
	var req struct {
		Model         string         `json:"model"`
		Prompt        string         `json:"prompt"`
		Stream        bool           `json:"stream"`
		StreamOptions *streamOptions `json:"stream_options"`
		MaxTokens     *int           `json:"max_tokens"`
	}
	if !decodeOpenAI(rs, r, &req) {
		return
	}
	if !s.knows(req.Model) {
		rs.openAIError(http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	wire := openAICompletionWire{id: fmt.Sprintf("cmpl-%d", rand.IntN(999)),
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage}
	s.generate(rs, r, generation{start: start, model: req.Model,
		prompt: s.chatTemplate([]message{{Role: "user", Content: req.Prompt}}), userText: req.Prompt,
		limit: maxTokens(req.MaxTokens), stream: req.Stream, wire: wire})
}

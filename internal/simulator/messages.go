package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

// /v1/messages as Ollama v0.17.4's anthropic.StreamConverter and
// middleware.AnthropicWriter write it: "event:" and "data:" lines of the
// converter's structs; message_start comes with the first chunk and counts
// the input as an estimate (len/4 of the request's text), which the final
// message_delta corrects with the real prompt count; no ping.

type anthropicRequest struct {
	Model       string   `json:"model"`
	MaxTokens   int      `json:"max_tokens"`
	System      any      `json:"system"`
	Stream      bool     `json:"stream"`
	Temperature *float64 `json:"temperature"`
	Messages    []struct {
		Role    string `json:"role"`
		Content any    `json:"content"`
	} `json:"messages"`
}

type anthropicUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

type anthropicBlock struct {
	Type     string  `json:"type"`
	Text     *string `json:"text,omitempty"`
	Thinking *string `json:"thinking,omitempty"`
}

type anthropicMessage struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []anthropicBlock `json:"content"`
	StopReason   string           `json:"stop_reason,omitempty"`
	StopSequence string           `json:"stop_sequence,omitempty"`
	Usage        anthropicUsage   `json:"usage"`
}

type anthropicDelta struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	Thinking string `json:"thinking,omitempty"`
}

type anthropicBlockEvent struct {
	Type         string          `json:"type"`
	Index        int             `json:"index"`
	ContentBlock *anthropicBlock `json:"content_block,omitempty"`
	Delta        *anthropicDelta `json:"delta,omitempty"`
}

// messagesWire renders one message, keeping the converter's state.
type messagesWire struct {
	id, model                     string
	estimate                      int
	started                       bool
	index                         int
	thinkingStarted, thinkingDone bool
	textStarted                   bool
}

func (*messagesWire) contentType(stream bool) string {
	if stream {
		return "text/event-stream"
	}
	return "application/json"
}

func anthropicEvent(typ string, v any) []byte {
	return []byte("event: " + typ + "\ndata: " + string(marshal(v)) + "\n\n")
}

func strPtr(s string) *string { return &s }

func (w *messagesWire) start(b []byte) []byte {
	if w.started {
		return b
	}
	w.started = true
	return append(b, anthropicEvent("message_start", struct {
		Type    string           `json:"type"`
		Message anthropicMessage `json:"message"`
	}{"message_start", anthropicMessage{ID: w.id, Type: "message", Role: "assistant", Model: w.model,
		Content: []anthropicBlock{}, Usage: anthropicUsage{InputTokens: w.estimate}}})...)
}

func (w *messagesWire) stopBlock(b []byte) []byte {
	return append(b, anthropicEvent("content_block_stop", anthropicBlockEvent{Type: "content_block_stop", Index: w.index})...)
}

func (w *messagesWire) thinkingToken(model, text string) []byte {
	b := w.start(nil)
	if !w.thinkingStarted {
		w.thinkingStarted = true
		b = append(b, anthropicEvent("content_block_start", anthropicBlockEvent{Type: "content_block_start", Index: w.index,
			ContentBlock: &anthropicBlock{Type: "thinking", Thinking: strPtr("")}})...)
	}
	return append(b, anthropicEvent("content_block_delta", anthropicBlockEvent{Type: "content_block_delta", Index: w.index,
		Delta: &anthropicDelta{Type: "thinking_delta", Thinking: text}})...)
}

func (w *messagesWire) token(model, text string) []byte {
	b := w.start(nil)
	if w.thinkingStarted && !w.thinkingDone {
		w.thinkingDone = true
		b = w.stopBlock(b)
		w.index++
	}
	if !w.textStarted {
		w.textStarted = true
		b = append(b, anthropicEvent("content_block_start", anthropicBlockEvent{Type: "content_block_start", Index: w.index,
			ContentBlock: &anthropicBlock{Type: "text", Text: strPtr("")}})...)
	}
	return append(b, anthropicEvent("content_block_delta", anthropicBlockEvent{Type: "content_block_delta", Index: w.index,
		Delta: &anthropicDelta{Type: "text_delta", Text: text}})...)
}

// stopReason is mapStopReason.
func stopReason(reason string) string {
	switch reason {
	case "stop":
		return "end_turn"
	case "length":
		return "max_tokens"
	case "":
		return ""
	}
	return "stop_sequence"
}

func (w *messagesWire) final(f finalInfo) []chunk {
	b := w.start(nil)
	if w.textStarted || w.thinkingStarted && !w.thinkingDone {
		b = w.stopBlock(b)
	}
	type delta struct {
		StopReason   string `json:"stop_reason,omitempty"`
		StopSequence string `json:"stop_sequence,omitempty"`
	}
	b = append(b, anthropicEvent("message_delta", struct {
		Type  string         `json:"type"`
		Delta delta          `json:"delta"`
		Usage anthropicUsage `json:"usage"`
	}{"message_delta", delta{StopReason: stopReason(f.reason)}, anthropicUsage{f.promptTokens, f.evalCount}})...)
	b = append(b, anthropicEvent("message_stop", struct {
		Type string `json:"type"`
	}{"message_stop"})...)
	return []chunk{{data: b}}
}

// whole is anthropic.ToMessagesResponse.
func (w *messagesWire) whole(f finalInfo) []byte {
	var content []anthropicBlock
	if f.thinking != "" {
		content = append(content, anthropicBlock{Type: "thinking", Thinking: strPtr(f.thinking)})
	}
	if f.text != "" {
		content = append(content, anthropicBlock{Type: "text", Text: strPtr(f.text)})
	}
	return marshalLine(anthropicMessage{ID: w.id, Type: "message", Role: "assistant", Model: f.model, Content: content,
		StopReason: stopReason(f.reason), Usage: anthropicUsage{f.promptTokens, f.evalCount}})
}

func (*messagesWire) fail(rs *responder, status int, msg string) {
	rs.anthropicError(status, msg, true)
}

// anthropicError writes anthropic.NewError: from the handler (AnthropicWriter)
// with json.Encoder's newline, from the middleware (AbortWithStatusJSON)
// without it and with a charset.
func (rs *responder) anthropicError(status int, msg string, fromHandler bool) {
	typ := "api_error"
	switch status {
	case http.StatusBadRequest:
		typ = "invalid_request_error"
	case http.StatusUnauthorized:
		typ = "authentication_error"
	case http.StatusForbidden:
		typ = "permission_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		typ = "overloaded_error"
	}
	body := struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id,omitempty"`
	}{Type: "error", RequestID: anthropicID("req")}
	body.Error.Type, body.Error.Message = typ, msg
	if fromHandler {
		rs.whole(status, "application/json", marshalLine(body), 0)
		return
	}
	rs.whole(status, "application/json; charset=utf-8", marshal(body), 0)
}

// anthropicID is generateID: the prefix and 12 random bytes in hex.
func anthropicID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func (s *Server) handleMessages(rs *responder, r *http.Request) {
	start := time.Now()
	var req anthropicRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		rs.anthropicError(http.StatusBadRequest, err.Error(), false)
		return
	}
	switch {
	case req.Model == "":
		rs.anthropicError(http.StatusBadRequest, "model is required", false)
		return
	case req.MaxTokens <= 0:
		rs.anthropicError(http.StatusBadRequest, "max_tokens is required and must be positive", false)
		return
	case len(req.Messages) == 0:
		rs.anthropicError(http.StatusBadRequest, "messages is required", false)
		return
	}
	var msgs []message
	chars := 0
	if req.System != nil {
		sys, err := partsText(req.System)
		if err != nil {
			rs.anthropicError(http.StatusBadRequest, err.Error(), false)
			return
		}
		msgs = append(msgs, message{Role: "system", Content: sys})
		chars += len(sys)
	}
	for _, m := range req.Messages {
		text, err := partsText(m.Content)
		if err != nil {
			rs.anthropicError(http.StatusBadRequest, err.Error(), false)
			return
		}
		msgs = append(msgs, message{Role: m.Role, Content: text})
		chars += len(m.Role) + len(text)
	}
	if !s.knows(req.Model) {
		rs.anthropicError(http.StatusNotFound, "model '"+req.Model+"' not found", true)
		return
	}
	if req.Stream {
		rs.w.Header().Set("Cache-Control", "no-cache")
	}
	// EstimateInputTokens: len/4 of the text, at least 1.
	estimate := max(chars/4, 1)
	s.generate(rs, r, generation{start: start, model: req.Model, prompt: s.chatTemplate(msgs), userText: lastUserText(msgs),
		limit: req.MaxTokens, stream: req.Stream, wire: &messagesWire{id: anthropicID("msg"), model: req.Model, estimate: estimate}})
}

package simulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// /v1/responses as Ollama v0.17.4's openai.ResponsesStreamConverter and
// middleware.ResponsesWriter write it: "event:" and "data:" lines, every
// event's data a JSON object with sorted keys (a Go map) numbered by
// sequence_number from 0; response.created and response.in_progress come
// with the first chunk; usage only in response.completed, whose status is
// "completed" even when max_output_tokens cut the reply, with zero cached
// and reasoning tokens; no [DONE].

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    string          `json:"instructions"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Temperature     *float64        `json:"temperature"`
	TopP            *float64        `json:"top_p"`
	Stream          *bool           `json:"stream"`
}

// responsesWire renders one response. It keeps the converter's state, so
// each request has its own.
type responsesWire struct {
	req        responsesRequest
	responseID string
	itemID     string
	seq        int
	started    bool

	outputIndex                     int
	reasoningID                     string
	reasoningStarted, reasoningDone bool
	contentStarted                  bool
	text, thinking                  string
}

func newResponsesWire(req responsesRequest) *responsesWire {
	return &responsesWire{req: req, responseID: fmt.Sprintf("resp_%d", rand.IntN(999999)),
		itemID: fmt.Sprintf("msg_%d", rand.IntN(999999))}
}

func (*responsesWire) contentType(stream bool) string {
	if stream {
		return "text/event-stream"
	}
	return "application/json"
}

// event is one SSE event with the converter's sequence number.
func (w *responsesWire) event(typ string, data map[string]any) []byte {
	data["type"] = typ
	data["sequence_number"] = w.seq
	w.seq++
	return []byte("event: " + typ + "\ndata: " + string(marshal(data)) + "\n\n")
}

// start is what the first chunk of a stream begins with.
func (w *responsesWire) start(b []byte) []byte {
	if w.started {
		return b
	}
	w.started = true
	b = append(b, w.event("response.created", map[string]any{"response": w.object("in_progress", []any{}, nil)})...)
	return append(b, w.event("response.in_progress", map[string]any{"response": w.object("in_progress", []any{}, nil)})...)
}

func (w *responsesWire) token(model, text string) []byte {
	b := w.start(nil)
	b = append(b, w.finishReasoning()...)
	if !w.contentStarted {
		w.contentStarted = true
		b = append(b, w.event("response.output_item.added", map[string]any{"output_index": w.outputIndex,
			"item": map[string]any{"id": w.itemID, "type": "message", "status": "in_progress", "role": "assistant", "content": []any{}}})...)
		b = append(b, w.event("response.content_part.added", map[string]any{"item_id": w.itemID, "output_index": w.outputIndex,
			"content_index": 0, "part": outputText("")})...)
	}
	w.text += text
	return append(b, w.event("response.output_text.delta", map[string]any{"item_id": w.itemID, "output_index": w.outputIndex,
		"content_index": 0, "delta": text, "logprobs": []any{}})...)
}

func (w *responsesWire) thinkingToken(model, text string) []byte {
	b := w.start(nil)
	if !w.reasoningStarted {
		w.reasoningStarted = true
		w.reasoningID = fmt.Sprintf("rs_%d", rand.IntN(999999))
		b = append(b, w.event("response.output_item.added", map[string]any{"output_index": w.outputIndex,
			"item": map[string]any{"id": w.reasoningID, "type": "reasoning", "summary": []any{}}})...)
	}
	w.thinking += text
	return append(b, w.event("response.reasoning_summary_text.delta", map[string]any{"item_id": w.reasoningID,
		"output_index": w.outputIndex, "summary_index": 0, "delta": text})...)
}

func (w *responsesWire) finishReasoning() []byte {
	if !w.reasoningStarted || w.reasoningDone {
		return nil
	}
	w.reasoningDone = true
	b := w.event("response.reasoning_summary_text.done", map[string]any{"item_id": w.reasoningID,
		"output_index": w.outputIndex, "summary_index": 0, "text": w.thinking})
	b = append(b, w.event("response.output_item.done", map[string]any{"output_index": w.outputIndex,
		"item": w.reasoningItem()})...)
	w.outputIndex++
	return b
}

func (w *responsesWire) reasoningItem() map[string]any {
	return map[string]any{"id": w.reasoningID, "type": "reasoning",
		"summary": []map[string]any{{"type": "summary_text", "text": w.thinking}}, "encrypted_content": w.thinking}
}

func (w *responsesWire) messageItem() map[string]any {
	return map[string]any{"id": w.itemID, "type": "message", "status": "completed", "role": "assistant",
		"content": []map[string]any{outputText(w.text)}}
}

func outputText(text string) map[string]any {
	return map[string]any{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
}

func (w *responsesWire) final(f finalInfo) []chunk {
	b := w.start(nil)
	b = append(b, w.finishReasoning()...)
	if w.contentStarted {
		b = append(b, w.event("response.output_text.done", map[string]any{"item_id": w.itemID, "output_index": w.outputIndex,
			"content_index": 0, "text": w.text, "logprobs": []any{}})...)
		b = append(b, w.event("response.content_part.done", map[string]any{"item_id": w.itemID, "output_index": w.outputIndex,
			"content_index": 0, "part": outputText(w.text)})...)
		b = append(b, w.event("response.output_item.done", map[string]any{"output_index": w.outputIndex, "item": w.messageItem()})...)
	}
	output := []any{}
	if w.reasoningStarted {
		output = append(output, w.reasoningItem())
	}
	if w.contentStarted {
		output = append(output, w.messageItem())
	}
	usage := map[string]any{"input_tokens": f.promptTokens, "output_tokens": f.evalCount, "total_tokens": f.promptTokens + f.evalCount,
		"input_tokens_details": map[string]any{"cached_tokens": 0}, "output_tokens_details": map[string]any{"reasoning_tokens": 0}}
	resp := w.object("completed", output, usage)
	resp["completed_at"] = time.Now().Unix()
	return []chunk{{data: append(b, w.event("response.completed", map[string]any{"response": resp})...)}}
}

// object is the converter's buildResponseObject.
func (w *responsesWire) object(status string, output []any, usage map[string]any) map[string]any {
	var instructions any
	if w.req.Instructions != "" {
		instructions = w.req.Instructions
	}
	topP, temperature := 1.0, 1.0
	if w.req.TopP != nil {
		topP = *w.req.TopP
	}
	if w.req.Temperature != nil {
		temperature = *w.req.Temperature
	}
	var usageValue any
	if usage != nil {
		usageValue = usage
	}
	return map[string]any{
		"id": w.responseID, "object": "response", "created_at": time.Now().Unix(), "completed_at": nil,
		"status": status, "incomplete_details": nil, "model": w.req.Model, "previous_response_id": nil,
		"instructions": instructions, "output": output, "error": nil, "tools": []any{}, "tool_choice": "auto",
		"truncation": "disabled", "parallel_tool_calls": true, "text": map[string]any{"format": map[string]any{"type": "text"}},
		"top_p": topP, "presence_penalty": 0, "frequency_penalty": 0, "top_logprobs": 0, "temperature": temperature,
		"reasoning": nil, "usage": usageValue, "max_output_tokens": w.req.MaxOutputTokens, "max_tool_calls": nil,
		"store": false, "background": false, "service_tier": "default", "metadata": map[string]any{},
		"safety_identifier": nil, "prompt_cache_key": nil,
	}
}

// whole is openai.ToResponse, in its struct's field order.
func (w *responsesWire) whole(f finalInfo) []byte {
	type content struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
		Logprobs    []any  `json:"logprobs"`
	}
	type summary struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type item struct {
		ID               string    `json:"id"`
		Type             string    `json:"type"`
		Status           string    `json:"status,omitempty"`
		Role             string    `json:"role,omitempty"`
		Content          []content `json:"content,omitempty"`
		Summary          []summary `json:"summary,omitempty"`
		EncryptedContent string    `json:"encrypted_content,omitempty"`
	}
	var output []item
	if f.thinking != "" {
		output = append(output, item{ID: "rs_" + w.responseID, Type: "reasoning",
			Summary: []summary{{"summary_text", f.thinking}}, EncryptedContent: f.thinking})
	}
	output = append(output, item{ID: w.itemID, Type: "message", Status: "completed", Role: "assistant",
		Content: []content{{"output_text", f.text, []any{}, []any{}}}})
	var instructions *string
	if w.req.Instructions != "" {
		instructions = &w.req.Instructions
	}
	topP, temperature := 1.0, 1.0
	if w.req.TopP != nil {
		topP = *w.req.TopP
	}
	if w.req.Temperature != nil {
		temperature = *w.req.Temperature
	}
	completed := time.Now().Unix()
	type details struct {
		CachedTokens int `json:"cached_tokens"`
	}
	type outDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	}
	type usage struct {
		InputTokens         int        `json:"input_tokens"`
		OutputTokens        int        `json:"output_tokens"`
		TotalTokens         int        `json:"total_tokens"`
		InputTokensDetails  details    `json:"input_tokens_details"`
		OutputTokensDetails outDetails `json:"output_tokens_details"`
	}
	return marshalLine(struct {
		ID                 string         `json:"id"`
		Object             string         `json:"object"`
		CreatedAt          int64          `json:"created_at"`
		CompletedAt        *int64         `json:"completed_at"`
		Status             string         `json:"status"`
		IncompleteDetails  any            `json:"incomplete_details"`
		Model              string         `json:"model"`
		PreviousResponseID *string        `json:"previous_response_id"`
		Instructions       *string        `json:"instructions"`
		Output             []item         `json:"output"`
		Error              any            `json:"error"`
		Tools              []any          `json:"tools"`
		ToolChoice         any            `json:"tool_choice"`
		Truncation         string         `json:"truncation"`
		ParallelToolCalls  bool           `json:"parallel_tool_calls"`
		Text               map[string]any `json:"text"`
		TopP               float64        `json:"top_p"`
		PresencePenalty    float64        `json:"presence_penalty"`
		FrequencyPenalty   float64        `json:"frequency_penalty"`
		TopLogprobs        int            `json:"top_logprobs"`
		Temperature        float64        `json:"temperature"`
		Reasoning          any            `json:"reasoning"`
		Usage              *usage         `json:"usage"`
		MaxOutputTokens    *int           `json:"max_output_tokens"`
		MaxToolCalls       *int           `json:"max_tool_calls"`
		Store              bool           `json:"store"`
		Background         bool           `json:"background"`
		ServiceTier        string         `json:"service_tier"`
		Metadata           map[string]any `json:"metadata"`
		SafetyIdentifier   *string        `json:"safety_identifier"`
		PromptCacheKey     *string        `json:"prompt_cache_key"`
	}{ID: w.responseID, Object: "response", CreatedAt: completed, CompletedAt: &completed, Status: "completed",
		Model: w.req.Model, Instructions: instructions, Output: output, Tools: []any{}, ToolChoice: "auto",
		Truncation: "disabled", ParallelToolCalls: true, Text: map[string]any{"format": map[string]any{"type": "text"}},
		TopP: topP, Temperature: temperature,
		Usage:           &usage{InputTokens: f.promptTokens, OutputTokens: f.evalCount, TotalTokens: f.promptTokens + f.evalCount},
		MaxOutputTokens: w.req.MaxOutputTokens, ServiceTier: "default", Metadata: map[string]any{}})
}

func (*responsesWire) fail(rs *responder, status int, msg string) { rs.openAIError(status, msg) }

func (s *Server) handleResponses(rs *responder, r *http.Request) {
	start := time.Now()
	var req responsesRequest
	if !decodeOpenAI(rs, r, &req) {
		return
	}
	msgs, err := responsesInput(req)
	if err != nil {
		rs.openAIRequestError(http.StatusBadRequest, err.Error())
		return
	}
	if !s.knows(req.Model) {
		rs.openAIError(http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	stream := req.Stream != nil && *req.Stream
	if stream {
		rs.w.Header().Set("Cache-Control", "no-cache")
	}
	s.generate(rs, r, generation{start: start, model: req.Model, prompt: s.chatTemplate(msgs), userText: lastUserText(msgs),
		limit: maxTokens(req.MaxOutputTokens), stream: stream, wire: newResponsesWire(req)})
}

// responsesInput reads input as FromResponsesRequest does: a string is a
// user message; an array holds messages whose content is a string or text
// parts. Instructions become a system message first.
func responsesInput(req responsesRequest) ([]message, error) {
	var msgs []message
	if req.Instructions != "" {
		msgs = append(msgs, message{Role: "system", Content: req.Instructions})
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		return msgs, nil
	}
	var text string
	if json.Unmarshal(req.Input, &text) == nil {
		if text != "" {
			msgs = append(msgs, message{Role: "user", Content: text})
		}
		return msgs, nil
	}
	var items []struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Content any    `json:"content"`
	}
	if err := json.Unmarshal(req.Input, &items); err != nil {
		return nil, fmt.Errorf("input must be a string or array: %w", err)
	}
	for i, it := range items {
		if it.Type != "" && it.Type != "message" || it.Role == "" {
			return nil, fmt.Errorf("input[%d]: unknown input item type: %s", i, it.Type)
		}
		c, err := partsText(it.Content)
		if err != nil {
			return nil, fmt.Errorf("input[%d]: %w", i, err)
		}
		msgs = append(msgs, message{Role: it.Role, Content: c})
	}
	return msgs, nil
}

// partsText reads a message's content: a string, or parts whose text is
// joined (input_text, output_text and text parts alike).
func partsText(content any) (string, error) {
	switch c := content.(type) {
	case string:
		return c, nil
	case []any:
		var text string
		for _, part := range c {
			p, ok := part.(map[string]any)
			if !ok {
				return "", fmt.Errorf("invalid content part: %v", part)
			}
			if t, ok := p["text"].(string); ok {
				text += t
			}
		}
		return text, nil
	case nil:
		return "", nil
	default:
		return "", fmt.Errorf("invalid message content type: %T", content)
	}
}

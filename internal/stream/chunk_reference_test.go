package stream

import (
	"bytes"
	"encoding/json"
)

// The reference for inspect: the encoding/json implementation it replaced,
// kept as it was. FuzzInspectMatchesReference holds the two equal.

// refWireChunk is the union of the fields tokentrace reads from either API.
type refWireChunk struct {
	Model string `json:"model"`

	// Ollama
	Message *struct {
		Content   string          `json:"content"`
		Thinking  string          `json:"thinking"`
		ToolCalls json.RawMessage `json:"tool_calls"`
	} `json:"message"`
	Response   string `json:"response"`
	Thinking   string `json:"thinking"`
	Done       bool   `json:"done"`
	DoneReason string `json:"done_reason"`
	OllamaTimings
	// Presence of the counts: a final chunk without them gives no usage.
	PromptEvalCount *int `json:"prompt_eval_count"`
	EvalCount       *int `json:"eval_count"`

	// OpenAI
	Choices []struct {
		Delta *struct {
			Content          string          `json:"content"`
			ReasoningContent string          `json:"reasoning_content"`
			Reasoning        string          `json:"reasoning"`
			ToolCalls        json.RawMessage `json:"tool_calls"`
		} `json:"delta"`
		Message *struct {
			Content          string          `json:"content"`
			ReasoningContent string          `json:"reasoning_content"`
			ToolCalls        json.RawMessage `json:"tool_calls"`
		} `json:"message"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens            int `json:"prompt_tokens"`
		CompletionTokens        int `json:"completion_tokens"`
		CompletionTokensDetails *struct {
			ReasoningTokens *int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
		PromptTokensDetails *struct {
			CachedTokens *int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`

	Error json.RawMessage `json:"error"`
}

// inspectReference reads one chunk of the given API with encoding/json.
func inspectReference(api API, payload []byte) chunkInfo {
	var ci chunkInfo
	if api == APIOpenAI && bytes.Equal(bytes.TrimSpace(payload), doneMarker) {
		ci.final, ci.done = true, true
		return ci
	}
	var w refWireChunk
	if err := json.Unmarshal(payload, &w); err != nil {
		ci.malformed = true
		return ci
	}
	ci.model = w.Model
	if len(w.Error) > 0 && !bytes.Equal(w.Error, []byte("null")) {
		ci.isErr, ci.errMsg = true, errorMessage(w.Error)
		return ci
	}

	// Ollama
	if w.Message != nil {
		ci.text = w.Message.Content + w.Message.Thinking
		ci.content = w.Message.Content != "" || hasToolCalls(w.Message.ToolCalls)
		ci.output = ci.text != "" || hasToolCalls(w.Message.ToolCalls)
	}
	if w.Response != "" || w.Thinking != "" {
		ci.text += w.Response + w.Thinking
		ci.output = true
		ci.content = ci.content || w.Response != ""
	}
	if w.Done {
		ci.final, ci.done = true, true
		ci.finishReason = w.DoneReason
		t := w.OllamaTimings
		if w.EvalCount != nil {
			t.EvalCount = *w.EvalCount
			ci.outputTokens, ci.hasUsage = t.EvalCount, true
		}
		if w.PromptEvalCount != nil {
			t.PromptEvalCount = *w.PromptEvalCount
			ci.inputTokens = t.PromptEvalCount
		}
		ci.ollama = &t
	}

	// OpenAI
	for _, c := range w.Choices {
		switch {
		case c.Delta != nil:
			text := c.Delta.Content + c.Delta.ReasoningContent + c.Delta.Reasoning
			ci.text += text
			ci.output = ci.output || text != "" || hasToolCalls(c.Delta.ToolCalls)
			ci.content = ci.content || c.Delta.Content != "" || hasToolCalls(c.Delta.ToolCalls)
		case c.Message != nil:
			text := c.Message.Content + c.Message.ReasoningContent
			ci.text += text
			ci.output = ci.output || text != "" || hasToolCalls(c.Message.ToolCalls)
			ci.content = ci.content || c.Message.Content != "" || hasToolCalls(c.Message.ToolCalls)
		}
		if c.Text != "" {
			ci.text += c.Text
			ci.output, ci.content = true, true
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			ci.final = true
			ci.finishReason = *c.FinishReason
		}
	}
	if w.Usage != nil {
		ci.inputTokens, ci.outputTokens, ci.hasUsage = w.Usage.PromptTokens, w.Usage.CompletionTokens, true
		if d := w.Usage.CompletionTokensDetails; d != nil && d.ReasoningTokens != nil {
			ci.reasoningTokens, ci.hasReasoningTokens = *d.ReasoningTokens, true
		}
		if d := w.Usage.PromptTokensDetails; d != nil && d.CachedTokens != nil {
			ci.cachedTokens, ci.hasCachedTokens = *d.CachedTokens, true
		}
	}
	return ci
}

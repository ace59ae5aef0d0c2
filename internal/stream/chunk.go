package stream

import (
	"bytes"
	"encoding/json"
)

// API is the wire protocol of a response.
type API int

const (
	// APIOllama is Ollama's native API (/api/*).
	APIOllama API = iota
	// APIOpenAI is the OpenAI-compatible API (/v1/*).
	APIOpenAI
)

func (a API) String() string {
	if a == APIOpenAI {
		return "openai"
	}
	return "ollama"
}

// OllamaTimings are the counts and durations of Ollama's final chunk.
type OllamaTimings struct {
	TotalDuration      int64 `json:"total_duration"` // nanoseconds, as Ollama sends them
	LoadDuration       int64 `json:"load_duration"`
	PromptEvalCount    int   `json:"prompt_eval_count"`
	PromptEvalDuration int64 `json:"prompt_eval_duration"`
	EvalCount          int   `json:"eval_count"`
	EvalDuration       int64 `json:"eval_duration"`
}

// QueueWait is the time the request waited for a slot, per docs/METRICS.md:
// total − load − prompt eval − eval, clamped at 0.
func (o OllamaTimings) QueueWait() int64 {
	w := o.TotalDuration - o.LoadDuration - o.PromptEvalDuration - o.EvalDuration
	if w < 0 {
		return 0
	}
	return w
}

// DecodeSpeed is Ollama's own decode speed, eval_count / eval_duration in
// tokens per second; 0 when it cannot be computed.
func (o OllamaTimings) DecodeSpeed() float64 {
	if o.EvalCount == 0 || o.EvalDuration <= 0 {
		return 0
	}
	return float64(o.EvalCount) / (float64(o.EvalDuration) / 1e9)
}

// chunkInfo is what one chunk says.
type chunkInfo struct {
	output       bool   // carries generated text, reasoning or a tool call
	text         string // the generated and reasoning text it carries
	final        bool   // a final marker: Ollama done:true, OpenAI [DONE] or a finish_reason
	done         bool   // the stream's own end: Ollama done:true or [DONE]
	errMsg       string // an error object inside the stream
	isErr        bool
	malformed    bool // not JSON
	model        string
	finishReason string
	inputTokens  int
	outputTokens int
	hasUsage     bool
	ollama       *OllamaTimings
}

// wireChunk is the union of the fields tokentrace reads from either API.
type wireChunk struct {
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
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`

	Error json.RawMessage `json:"error"`
}

var doneMarker = []byte("[DONE]")

// inspect reads one chunk of the given API.
func inspect(api API, payload []byte) chunkInfo {
	var ci chunkInfo
	if api == APIOpenAI && bytes.Equal(bytes.TrimSpace(payload), doneMarker) {
		ci.final, ci.done = true, true
		return ci
	}
	var w wireChunk
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
		ci.output = ci.text != "" || hasToolCalls(w.Message.ToolCalls)
	}
	if w.Response != "" || w.Thinking != "" {
		ci.text += w.Response + w.Thinking
		ci.output = true
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
		case c.Message != nil:
			text := c.Message.Content + c.Message.ReasoningContent
			ci.text += text
			ci.output = ci.output || text != "" || hasToolCalls(c.Message.ToolCalls)
		}
		if c.Text != "" {
			ci.text += c.Text
			ci.output = true
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			ci.final = true
			ci.finishReason = *c.FinishReason
		}
	}
	if w.Usage != nil {
		ci.inputTokens, ci.outputTokens, ci.hasUsage = w.Usage.PromptTokens, w.Usage.CompletionTokens, true
	}
	return ci
}

func hasToolCalls(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null")) && !bytes.Equal(raw, []byte("[]"))
}

// errorMessage reads Ollama's {"error":"…"} and OpenAI's {"error":{"message":…}}.
func errorMessage(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Message != "" {
		return o.Message
	}
	return string(raw)
}

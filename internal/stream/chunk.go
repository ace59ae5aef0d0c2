package stream

import (
	"bytes"
	"encoding/json"
)

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
	content      bool   // carries the visible answer: output that is not reasoning only
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
	hasUsage     bool // both counts above are the server's
	ollama       *OllamaTimings

	// The event APIs give the counts apart: Messages the input tokens at
	// its start and the output tokens at its end.
	hasInput, hasOutput bool
	reasoningTokens     int // of the output tokens, those spent reasoning
	hasReasoningTokens  bool
	cachedTokens        int // of the input tokens, those read from a cache
	hasCachedTokens     bool
}

// inspect reads one chunk of the given API. It reads the chunk as
// encoding/json reads it into the struct of the fields used (the reference in
// chunk_reference_test.go; FuzzInspectMatchesReference holds the two equal),
// without its cost: no reflection, and strings copied only when returned.
func inspect(api API, payload []byte) chunkInfo {
	var sc chunkScanner
	return sc.inspect(api, payload, "", "", true)
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

package simulator

import "time"

// Reasoning chunks of the APIs that began before Responses and Messages
// (Config.ThinkingTokens), in the fields Ollama v0.17.4 puts a thinking
// model's reasoning in. Responses and Messages render theirs in their own
// files.

type thinkingMessage struct {
	Role     string `json:"role"`
	Content  string `json:"content"`
	Thinking string `json:"thinking,omitempty"`
}

// thinkingToken is a /api/chat chunk with message.thinking.
func (ollamaChatWire) thinkingToken(model, text string) []byte {
	return marshalLine(struct {
		Model     string          `json:"model"`
		CreatedAt time.Time       `json:"created_at"`
		Message   thinkingMessage `json:"message"`
		Done      bool            `json:"done"`
	}{model, time.Now().UTC(), thinkingMessage{Role: "assistant", Thinking: text}, false})
}

// thinkingToken is a /api/generate chunk with "thinking".
func (ollamaGenerateWire) thinkingToken(model, text string) []byte {
	return marshalLine(struct {
		Model     string    `json:"model"`
		CreatedAt time.Time `json:"created_at"`
		Response  string    `json:"response"`
		Thinking  string    `json:"thinking,omitempty"`
		Done      bool      `json:"done"`
	}{model, time.Now().UTC(), "", text, false})
}

// thinkingToken is a /v1/chat/completions chunk with delta.reasoning.
func (w openAIChatWire) thinkingToken(model, text string) []byte {
	type delta struct {
		Role      string `json:"role"`
		Content   string `json:"content"`
		Reasoning string `json:"reasoning,omitempty"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Delta        delta   `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	}
	c := w.chunk(model, "", "")
	return sse(struct {
		ID                string   `json:"id"`
		Object            string   `json:"object"`
		Created           int64    `json:"created"`
		Model             string   `json:"model"`
		SystemFingerprint string   `json:"system_fingerprint"`
		Choices           []choice `json:"choices"`
	}{c.ID, c.Object, c.Created, c.Model, c.SystemFingerprint, []choice{{Delta: delta{Role: "assistant", Reasoning: text}}}})
}

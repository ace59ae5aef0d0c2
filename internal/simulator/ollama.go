package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The shapes of Ollama v0.17.4's api package, field order included.

type ollamaMetrics struct {
	TotalDuration      time.Duration `json:"total_duration,omitempty"`
	LoadDuration       time.Duration `json:"load_duration,omitempty"`
	PromptEvalCount    int           `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration time.Duration `json:"prompt_eval_duration,omitempty"`
	EvalCount          int           `json:"eval_count,omitempty"`
	EvalDuration       time.Duration `json:"eval_duration,omitempty"`
}

type chatResponse struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Message    message   `json:"message"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	ollamaMetrics
}

type generateResponse struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Response   string    `json:"response"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	Context    []int     `json:"context,omitempty"`
	ollamaMetrics
}

func (f finalInfo) metrics() ollamaMetrics {
	return ollamaMetrics{TotalDuration: f.total, LoadDuration: f.load, PromptEvalCount: f.promptTokens,
		PromptEvalDuration: f.promptEval, EvalCount: f.evalCount, EvalDuration: f.eval}
}

func marshalLine(v any) []byte {
	b, _ := json.Marshal(v)
	return append(b, '\n')
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// ollamaChatWire is /api/chat.
type ollamaChatWire struct{}

func (ollamaChatWire) contentType(stream bool) string {
	if stream {
		return "application/x-ndjson"
	}
	return "application/json; charset=utf-8"
}

func (ollamaChatWire) token(model, text string) []byte {
	return marshalLine(chatResponse{Model: model, CreatedAt: time.Now().UTC(),
		Message: message{Role: "assistant", Content: text}})
}

func (w ollamaChatWire) final(f finalInfo) []chunk {
	return []chunk{{data: marshalLine(w.response(f, ""))}}
}

func (w ollamaChatWire) whole(f finalInfo) []byte { return marshal(w.response(f, f.text)) }

func (ollamaChatWire) response(f finalInfo, text string) chatResponse {
	return chatResponse{Model: f.model, CreatedAt: time.Now().UTC(), Message: message{Role: "assistant", Content: text},
		DoneReason: f.reason, Done: true, ollamaMetrics: f.metrics()}
}

func (ollamaChatWire) fail(rs *responder, status int, msg string) { rs.ollamaError(status, msg) }

// ollamaGenerateWire is /api/generate.
type ollamaGenerateWire struct{}

func (ollamaGenerateWire) contentType(stream bool) string {
	return ollamaChatWire{}.contentType(stream)
}

func (ollamaGenerateWire) token(model, text string) []byte {
	return marshalLine(generateResponse{Model: model, CreatedAt: time.Now().UTC(), Response: text})
}

func (w ollamaGenerateWire) final(f finalInfo) []chunk {
	return []chunk{{data: marshalLine(w.response(f, ""))}}
}

func (w ollamaGenerateWire) whole(f finalInfo) []byte { return marshal(w.response(f, f.text)) }

func (ollamaGenerateWire) response(f finalInfo, text string) generateResponse {
	return generateResponse{Model: f.model, CreatedAt: time.Now().UTC(), Response: text, Done: true,
		DoneReason: f.reason, Context: f.context, ollamaMetrics: f.metrics()}
}

func (ollamaGenerateWire) fail(rs *responder, status int, msg string) { rs.ollamaError(status, msg) }

// decodeOllama reads a request body as gin's ShouldBindJSON does and
// answers a bad one as Ollama does; false when it answered.
func decodeOllama(rs *responder, r *http.Request, v any) bool {
	err := json.NewDecoder(r.Body).Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		rs.ollamaError(http.StatusBadRequest, "missing request body")
		return false
	case err != nil:
		rs.ollamaError(http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

// numPredict reads options.num_predict; 0 (no limit) when absent or ≤ 0.
func numPredict(opts map[string]any) int {
	if v, ok := opts["num_predict"].(float64); ok && v > 0 {
		return int(v)
	}
	return 0
}

func wantsStream(p *bool) bool { return p == nil || *p }

func (s *Server) handleOllamaChat(rs *responder, r *http.Request) {
	start := time.Now()
	var req struct {
		Model     string          `json:"model"`
		Messages  []message       `json:"messages"`
		Stream    *bool           `json:"stream"`
		Options   map[string]any  `json:"options"`
		Format    json.RawMessage `json:"format"`
		KeepAlive json.RawMessage `json:"keep_alive"`
	}
	if !decodeOllama(rs, r, &req) {
		return
	}
	keepAlive, err := parseKeepAlive(req.KeepAlive)
	if err != nil {
		rs.ollamaError(http.StatusBadRequest, err.Error())
		return
	}
	if req.Model == "" {
		rs.ollamaError(http.StatusBadRequest, "model is required")
		return
	}
	if !s.knows(req.Model) {
		rs.ollamaError(http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	if len(req.Messages) == 0 { // a load or unload request
		s.loadOnly(rs, r, ollamaChatWire{}, keepAlive, func(reason string) any {
			return chatResponse{Model: req.Model, CreatedAt: time.Now().UTC(), Message: message{Role: "assistant"},
				DoneReason: reason, Done: true}
		})
		return
	}
	s.generate(rs, r, generation{start: start, model: req.Model, prompt: s.chatTemplate(req.Messages),
		userText: lastUserText(req.Messages), limit: numPredict(req.Options), stream: wantsStream(req.Stream),
		wire: ollamaChatWire{}, keepAlive: keepAlive})
}

func (s *Server) handleOllamaGenerate(rs *responder, r *http.Request) {
	start := time.Now()
	var req struct {
		Model     string          `json:"model"`
		Prompt    string          `json:"prompt"`
		System    string          `json:"system"`
		Raw       bool            `json:"raw"`
		Stream    *bool           `json:"stream"`
		Options   map[string]any  `json:"options"`
		KeepAlive json.RawMessage `json:"keep_alive"`
	}
	if !decodeOllama(rs, r, &req) {
		return
	}
	keepAlive, err := parseKeepAlive(req.KeepAlive)
	if err != nil {
		rs.ollamaError(http.StatusBadRequest, err.Error())
		return
	}
	if !s.knows(req.Model) {
		rs.ollamaError(http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	if req.Prompt == "" { // a load or unload request
		s.loadOnly(rs, r, ollamaGenerateWire{}, keepAlive, func(reason string) any {
			return generateResponse{Model: req.Model, CreatedAt: time.Now().UTC(), Done: true, DoneReason: reason}
		})
		return
	}
	prompt := req.Prompt
	if !req.Raw {
		var msgs []message
		if req.System != "" {
			msgs = append(msgs, message{Role: "system", Content: req.System})
		}
		prompt = s.chatTemplate(append(msgs, message{Role: "user", Content: req.Prompt}))
	}
	s.generate(rs, r, generation{start: start, model: req.Model, prompt: prompt, userText: req.Prompt,
		limit: numPredict(req.Options), stream: wantsStream(req.Stream), wire: ollamaGenerateWire{}, withContext: !req.Raw,
		keepAlive: keepAlive})
}

// loadOnly answers a request without a prompt: with keep_alive 0 it
// unloads the model ("unload"), else it loads it ("load").
func (s *Server) loadOnly(rs *responder, r *http.Request, wire wireFormat, keepAlive *time.Duration, done func(reason string) any) {
	if keepAlive != nil && *keepAlive == 0 {
		s.unloadIdle()
		rs.ollamaJSON(http.StatusOK, done("unload"))
		return
	}
	if err := s.acquire(r.Context()); err != nil {
		s.failRun(rs, generation{wire: wire}, err)
		return
	}
	s.release(keepAlive)
	rs.ollamaJSON(http.StatusOK, done("load"))
}

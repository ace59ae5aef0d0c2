package stream

import "testing"

func TestInspect(t *testing.T) {
	tests := []struct {
		name    string
		api     API
		payload string
		output  bool
		final   bool
		isErr   bool
		bad     bool
		text    string
		finish  string
		in, out int
	}{
		// Ollama /api/chat and /api/generate, as v0.6.5 writes them.
		{name: "ollama chat content", api: APIOllama, payload: `{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Hi"},"done":false}`, output: true, text: "Hi"},
		{name: "ollama chat thinking", api: APIOllama, payload: `{"model":"m","message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}`, output: true, text: "hmm"},
		{name: "ollama chat tool call", api: APIOllama, payload: `{"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},"done":false}`, output: true},
		{name: "ollama chat empty content", api: APIOllama, payload: `{"model":"m","message":{"role":"assistant","content":""},"done":false}`},
		{name: "ollama generate response", api: APIOllama, payload: `{"model":"m","response":" world","done":false}`, output: true, text: " world"},
		{name: "ollama final", api: APIOllama, payload: `{"model":"m","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":5,"load_duration":1,"prompt_eval_count":12,"prompt_eval_duration":1,"eval_count":40,"eval_duration":2}`, final: true, finish: "stop", in: 12, out: 40},
		{name: "ollama final without counts", api: APIOllama, payload: `{"model":"m","done_reason":"stop","done":true}`, final: true, finish: "stop"},
		{name: "ollama error line", api: APIOllama, payload: `{"error":"an error was encountered while running the model"}`, isErr: true},
		// OpenAI-compatible SSE events.
		{name: "openai role chunk", api: APIOpenAI, payload: `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`},
		{name: "openai content", api: APIOpenAI, payload: `{"id":"c","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`, output: true, text: "Hel"},
		{name: "openai reasoning", api: APIOpenAI, payload: `{"choices":[{"delta":{"reasoning_content":"think"}}]}`, output: true, text: "think"},
		{name: "openai tool call", api: APIOpenAI, payload: `{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}`, output: true},
		{name: "openai empty tool calls", api: APIOpenAI, payload: `{"choices":[{"delta":{"tool_calls":[]}}]}`},
		{name: "openai finish chunk", api: APIOpenAI, payload: `{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}`, final: true, finish: "length"},
		{name: "openai usage chunk", api: APIOpenAI, payload: `{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":30,"total_tokens":39}}`, in: 9, out: 30},
		{name: "openai done", api: APIOpenAI, payload: `[DONE]`, final: true},
		{name: "openai legacy completion", api: APIOpenAI, payload: `{"choices":[{"text":"abc","index":0,"finish_reason":null}]}`, output: true, text: "abc"},
		{name: "openai non-streaming", api: APIOpenAI, payload: `{"choices":[{"message":{"role":"assistant","content":"all"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":7}}`, output: true, final: true, text: "all", finish: "stop", in: 3, out: 7},
		{name: "openai error event", api: APIOpenAI, payload: `{"error":{"message":"boom","type":"server_error"}}`, isErr: true},
		{name: "error null is no error", api: APIOpenAI, payload: `{"error":null,"choices":[{"delta":{"content":"x"}}]}`, output: true, text: "x"},
		{name: "not json", api: APIOllama, payload: `<html>`, bad: true},
		{name: "[DONE] means nothing to ollama", api: APIOllama, payload: `[DONE]`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := inspect(tt.api, []byte(tt.payload))
			if ci.output != tt.output || ci.final != tt.final || ci.isErr != tt.isErr || ci.malformed != tt.bad {
				t.Fatalf("output=%v final=%v err=%v malformed=%v, want %v %v %v %v",
					ci.output, ci.final, ci.isErr, ci.malformed, tt.output, tt.final, tt.isErr, tt.bad)
			}
			if tt.text != "" && ci.text != tt.text {
				t.Errorf("text = %q, want %q", ci.text, tt.text)
			}
			if ci.finishReason != tt.finish {
				t.Errorf("finish reason = %q, want %q", ci.finishReason, tt.finish)
			}
			if ci.inputTokens != tt.in || ci.outputTokens != tt.out {
				t.Errorf("tokens = %d in, %d out; want %d, %d", ci.inputTokens, ci.outputTokens, tt.in, tt.out)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	for raw, want := range map[string]string{
		`"model not found"`:                  "model not found",
		`{"message":"bad","type":"invalid"}`: "bad",
		`{"code":500}`:                       `{"code":500}`,
	} {
		if got := errorMessage([]byte(raw)); got != want {
			t.Errorf("errorMessage(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestOllamaTimings(t *testing.T) {
	o := OllamaTimings{TotalDuration: 10e9, LoadDuration: 1e9, PromptEvalDuration: 2e9, EvalDuration: 4e9, EvalCount: 100}
	if got := o.QueueWait(); got != 3e9 {
		t.Errorf("QueueWait = %d, want 3e9", got)
	}
	if got := o.DecodeSpeed(); got != 25 {
		t.Errorf("DecodeSpeed = %v, want 25", got)
	}
	if got := (OllamaTimings{TotalDuration: 1, EvalDuration: 5}).QueueWait(); got != 0 {
		t.Errorf("QueueWait of overlapping durations = %d, want 0 (clamped)", got)
	}
	if got := (OllamaTimings{}).DecodeSpeed(); got != 0 {
		t.Errorf("DecodeSpeed without eval = %v, want 0", got)
	}
}

package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tokentrace/tokentrace/internal/stream"
)

func eventAPIBody(path, model string, streaming bool, limit int) string {
	if path == "/v1/responses" {
		return fmt.Sprintf(`{"model":%q,"input":[{"role":"user","content":%q}],"stream":%t,"max_output_tokens":%d}`, model, userPrompt, streaming, limit)
	}
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}],"stream":%t,"max_tokens":%d}`, model, userPrompt, streaming, limit)
}

// sseEvents cuts an SSE body into (event name, data) pairs.
func sseEvents(t *testing.T, body []byte) (names []string, data []map[string]any) {
	t.Helper()
	for _, ev := range bytes.Split(bytes.TrimSpace(body), []byte("\n\n")) {
		lines := strings.Split(string(ev), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("event %q is not an event: line and a data: line", ev)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &d); err != nil {
			t.Fatalf("event data %q: %v", lines[1], err)
		}
		name := strings.TrimPrefix(lines[0], "event: ")
		if d["type"] != name {
			t.Errorf("event %q carries type %v", name, d["type"])
		}
		names, data = append(names, name), append(data, d)
	}
	return names, data
}

// TestEventAPIsParse: /v1/responses and /v1/messages, streamed and whole,
// read by the project's own parser: exact counts, finish reasons, ground
// truth.
func TestEventAPIsParse(t *testing.T) {
	var mu sync.Mutex
	sent := map[string][]ChunkSent{}
	s, url := startServer(t, Config{Profile: "tiny", OnChunkSent: func(c ChunkSent) {
		mu.Lock()
		sent[c.RequestID] = append(sent[c.RequestID], c)
		mu.Unlock()
	}})
	wantPrompt := countTokens(s.chatTemplate([]message{{Role: "user", Content: userPrompt}}))
	const n = 7
	for _, tc := range []struct {
		path        string
		stream      bool
		contentType string
		finish      string
	}{
		// Ollama reports "completed" even when max_output_tokens stopped the reply.
		{"/v1/responses", true, "text/event-stream", "completed"},
		{"/v1/responses", false, "application/json", "completed"},
		{"/v1/messages", true, "text/event-stream", "max_tokens"},
		{"/v1/messages", false, "application/json", "max_tokens"},
	} {
		t.Run(fmt.Sprintf("%s/stream=%t", tc.path, tc.stream), func(t *testing.T) {
			r := measure(t, context.Background(), url, tc.path, eventAPIBody(tc.path, "tiny", tc.stream, n))
			m := r.m
			if !m.OK() {
				t.Fatalf("error %s: %s (body %s)", m.ErrorType, m.Error, r.body)
			}
			if m.OutputTokens != n || m.TokensEstimated || m.InputTokens != wantPrompt {
				t.Errorf("tokens in %d out %d (estimated %t), want %d and %d", m.InputTokens, m.OutputTokens, m.TokensEstimated, wantPrompt, n)
			}
			if m.FinishReason != tc.finish || m.Model != "tiny" {
				t.Errorf("finish %q model %q, want %q tiny", m.FinishReason, m.Model, tc.finish)
			}
			wantChunks := n
			if !tc.stream {
				wantChunks = 1
			}
			if m.OutputChunks != wantChunks {
				t.Errorf("output chunks = %d, want %d", m.OutputChunks, wantChunks)
			}
			var chunks []ChunkSent
			waitFor(t, "the last chunk's ground truth", func() bool {
				mu.Lock()
				defer mu.Unlock()
				chunks = sent[r.id]
				return len(chunks) > 0 && chunks[len(chunks)-1].Final
			})
			checkGroundTruth(t, chunks, n, len(r.body))
		})
	}
}

// TestResponsesStreamIsOllamas: v0.17.4's details of the Responses stream.
func TestResponsesStreamIsOllamas(t *testing.T) {
	_, url := startServer(t, Config{Profile: "tiny"})
	r := measure(t, context.Background(), url, "/v1/responses", eventAPIBody("/v1/responses", "tiny", true, 3))
	names, data := sseEvents(t, r.body)
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("events\n%v\nwant\n%v", names, want)
	}
	for i, d := range data {
		if d["sequence_number"] != float64(i) {
			t.Errorf("event %d (%s): sequence_number %v", i, names[i], d["sequence_number"])
		}
		resp, _ := d["response"].(map[string]any)
		if resp != nil && names[i] != "response.completed" && resp["usage"] != nil {
			t.Errorf("%s carries usage %v; Ollama sends it only in response.completed", names[i], resp["usage"])
		}
	}
	done := data[len(data)-1]["response"].(map[string]any)
	u := done["usage"].(map[string]any)
	if done["status"] != "completed" || done["incomplete_details"] != nil || u["output_tokens"] != float64(3) ||
		u["input_tokens_details"].(map[string]any)["cached_tokens"] != float64(0) ||
		u["output_tokens_details"].(map[string]any)["reasoning_tokens"] != float64(0) {
		t.Errorf("response.completed: status %v, incomplete %v, usage %v", done["status"], done["incomplete_details"], u)
	}
}

// TestMessagesStreamIsOllamas: v0.17.4's details of the Messages stream: no
// ping, and message_start's input count an estimate the end corrects.
func TestMessagesStreamIsOllamas(t *testing.T) {
	s, url := startServer(t, Config{Profile: "tiny"})
	r := measure(t, context.Background(), url, "/v1/messages", eventAPIBody("/v1/messages", "tiny", true, 2))
	names, data := sseEvents(t, r.body)
	want := []string{"message_start", "content_block_start", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("events\n%v\nwant\n%v (no ping)", names, want)
	}
	estimate := data[0]["message"].(map[string]any)["usage"].(map[string]any)["input_tokens"]
	final := data[5]["usage"].(map[string]any)["input_tokens"]
	wantEstimate := float64((len("user") + len(userPrompt)) / 4)
	wantPrompt := float64(countTokens(s.chatTemplate([]message{{Role: "user", Content: userPrompt}})))
	if estimate != wantEstimate || final != wantPrompt || r.m.InputTokens != int(wantPrompt) {
		t.Errorf("message_start input_tokens %v (want the estimate %v), message_delta %v and measured %d (want %v)",
			estimate, wantEstimate, final, r.m.InputTokens, wantPrompt)
	}
}

// TestThinkingTokens: with ThinkingTokens every API that has a reasoning
// field streams the first tokens as reasoning, so the parser sees a
// thinking time; the counts include them.
func TestThinkingTokens(t *testing.T) {
	_, url := startServer(t, Config{Profile: "tiny", ThinkingTokens: 3})
	const n = 6
	for _, path := range []string{"/api/chat", "/api/generate", "/v1/chat/completions", "/v1/responses", "/v1/messages"} {
		t.Run(path, func(t *testing.T) {
			body := requestBody(path, "tiny", true, true, n)
			if path == "/v1/responses" || path == "/v1/messages" {
				body = eventAPIBody(path, "tiny", true, n)
			}
			var reasoning []bool
			mt := stream.NewMeter(stream.Config{API: stream.APIOf(path), OnChunk: func(ev stream.ChunkEvent) { reasoning = append(reasoning, ev.Reasoning) }})
			r := measureWith(t, url, path, body, mt)
			m := r.m
			if !m.OK() || m.OutputTokens != n || m.OutputChunks != n {
				t.Fatalf("error %q, %d tokens in %d chunks, want %d: %s", m.ErrorType, m.OutputTokens, m.OutputChunks, n, r.body)
			}
			if fmt.Sprint(reasoning) != "[true true true false false false]" {
				t.Errorf("reasoning chunks %v, want the first 3", reasoning)
			}
			if th, ok := m.ThinkingTime(); !ok || th < 0 { // 0 when one read brought both
				t.Errorf("thinking time %v, %v", th, ok)
			}
			if path != "/v1/messages" {
				return
			}
			names, _ := sseEvents(t, r.body)
			d := "content_block_delta"
			want := []string{"message_start", "content_block_start", d, d, d, "content_block_stop",
				"content_block_start", d, d, d, "content_block_stop", "message_delta", "message_stop"}
			if strings.Join(names, " ") != strings.Join(want, " ") {
				t.Errorf("events\n%v\nwant a thinking block, then a text block\n%v", names, want)
			}
		})
	}
}

// TestEventAPIErrors: the error bodies of the Responses and Messages APIs.
func TestEventAPIErrors(t *testing.T) {
	_, url := startServer(t, Config{Profile: "tiny"})
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/v1/messages", `{"model":"tiny","messages":[{"role":"user","content":"hi"}]}`, 400, `"max_tokens is required and must be positive"`},
		{"/v1/messages", `{"model":"tiny","max_tokens":5,"messages":[]}`, 400, `"messages is required"`},
		{"/v1/messages", `{"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 404, `{"type":"error","error":{"type":"not_found_error","message":"model 'nope' not found"},"request_id":"req_`},
		{"/v1/responses", `{"model":"nope","input":"hi"}`, 404, `{"error":{"message":"model 'nope' not found","type":"api_error","param":null,"code":null}}`},
		{"/v1/responses", `{"model":"tiny","input":5}`, 400, `input must be a string or array`},
	} {
		r := measure(t, context.Background(), url, tc.path, tc.body)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %s", tc.path, tc.body, r.status, r.body, tc.status, tc.want)
		}
	}
}

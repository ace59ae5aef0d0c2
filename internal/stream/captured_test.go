package stream

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCapturedOllamaStreams reads the Responses and Messages bodies a real
// Ollama v0.17.4 sent (testdata/ollama-v0.17.4, written by the ollama
// stage's TestEventAPIsOnOllama with -capture-streams) in reads of every size
// from 1 to 64 bytes, and holds the Meter to what the bodies state, decoded
// here with encoding/json: counts, finish reason, one output chunk per delta.
func TestCapturedOllamaStreams(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "ollama-v0.17.4", "*"))
	if len(files) != 4 {
		t.Fatalf("%d captured bodies in testdata/ollama-v0.17.4, want 4: %v", len(files), files)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(file)
		api, ct := APIResponses, "text/event-stream"
		if strings.HasPrefix(name, "messages") {
			api = APIAnthropic
		}
		if strings.HasSuffix(name, ".json") {
			ct = "application/json"
		}
		in, out, deltas, finish := statedIn(t, api, ct, body)
		for step := 1; step <= 64; step++ {
			now := t0
			m := NewMeter(Config{API: api, Start: t0, Clock: func() time.Time { now = now.Add(time.Microsecond); return now }})
			m.Response(200, ct)
			for i := 0; i < len(body); i += step {
				m.Write(body[i:min(i+step, len(body))])
			}
			got := m.Finish(nil)
			if !got.OK() || got.InputTokens != in || got.OutputTokens != out || got.TokensEstimated ||
				got.OutputChunks != deltas || got.FinishReason != finish {
				t.Fatalf("%s in reads of %d: %s %q, in %d out %d (estimated %v) in %d chunks, finish %q; the body states in %d out %d, %d deltas, %q",
					name, step, got.ErrorType, got.Error, got.InputTokens, got.OutputTokens, got.TokensEstimated, got.OutputChunks,
					got.FinishReason, in, out, deltas, finish)
			}
		}
	}
}

// statedIn decodes what a captured body states, independently of the
// readers under test.
func statedIn(t *testing.T, api API, contentType string, body []byte) (in, out, deltas int, finish string) {
	t.Helper()
	type usage struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	}
	if contentType == "application/json" {
		var w struct {
			Status     string `json:"status"`
			StopReason string `json:"stop_reason"`
			Usage      usage  `json:"usage"`
		}
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatal(err)
		}
		return w.Usage.InputTokens, w.Usage.OutputTokens, 1, w.Status + w.StopReason
	}
	for _, ev := range bytes.Split(bytes.TrimSpace(body), []byte("\n\n")) {
		_, data, _ := bytes.Cut(ev, []byte("data: "))
		var e struct {
			Type     string `json:"type"`
			Delta    any    `json:"delta"`
			Response struct {
				Status string `json:"status"`
				Usage  usage  `json:"usage"`
			} `json:"response"`
			Usage usage `json:"usage"`
		}
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		switch {
		case strings.HasSuffix(e.Type, "text.delta"):
			deltas++
		case e.Type == "content_block_delta":
			d := e.Delta.(map[string]any)
			if d["text"] != nil || d["thinking"] != nil || d["partial_json"] != nil {
				deltas++
			}
		case e.Type == "response.completed":
			in, out, finish = e.Response.Usage.InputTokens, e.Response.Usage.OutputTokens, e.Response.Status
		case e.Type == "message_delta":
			in, out = e.Usage.InputTokens, e.Usage.OutputTokens
			finish = e.Delta.(map[string]any)["stop_reason"].(string)
		}
	}
	return in, out, deltas, finish
}

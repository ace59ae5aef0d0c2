package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/stream"
	"github.com/tokentrace/tokentrace/internal/testproc"
)

const userPrompt = "Why is the sky blue?"

func requestBody(path, model string, streaming, usage bool, numPredict int) string {
	switch path {
	case "/api/chat":
		return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}],"stream":%t,"options":{"num_predict":%d}}`,
			model, userPrompt, streaming, numPredict)
	case "/api/generate":
		return fmt.Sprintf(`{"model":%q,"prompt":%q,"stream":%t,"options":{"num_predict":%d}}`, model, userPrompt, streaming, numPredict)
	case "/v1/chat/completions":
		return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}],"stream":%t,"stream_options":{"include_usage":%t},"max_tokens":%d}`,
			model, userPrompt, streaming, usage, numPredict)
	default:
		return fmt.Sprintf(`{"model":%q,"prompt":%q,"stream":%t,"stream_options":{"include_usage":%t},"max_tokens":%d}`,
			model, userPrompt, streaming, usage, numPredict)
	}
}

// TestWireFormatsParse checks every inference endpoint with the project's
// own parser: exact counts from the server, final markers, timings.
func TestWireFormatsParse(t *testing.T) {
	var mu sync.Mutex
	sent := map[string][]ChunkSent{}
	s, url := startServer(t, Config{Profile: "tiny", OnChunkSent: func(c ChunkSent) {
		mu.Lock()
		sent[c.RequestID] = append(sent[c.RequestID], c)
		mu.Unlock()
	}})
	wantPrompt := countTokens(s.chatTemplate([]message{{Role: "user", Content: userPrompt}}))
	const n = 7
	tests := []struct {
		path          string
		stream, usage bool
		format        stream.Format
		estimated     bool
		contentType   string
	}{
		{"/api/chat", true, false, stream.FormatNDJSON, false, "application/x-ndjson"},
		{"/api/chat", false, false, stream.FormatJSON, false, "application/json; charset=utf-8"},
		{"/api/generate", true, false, stream.FormatNDJSON, false, "application/x-ndjson"},
		{"/api/generate", false, false, stream.FormatJSON, false, "application/json; charset=utf-8"},
		{"/v1/chat/completions", true, true, stream.FormatSSE, false, "text/event-stream"},
		{"/v1/chat/completions", true, false, stream.FormatSSE, true, "text/event-stream"},
		{"/v1/chat/completions", false, false, stream.FormatJSON, false, "application/json"},
		{"/v1/completions", true, true, stream.FormatSSE, false, "text/event-stream"},
		{"/v1/completions", false, false, stream.FormatJSON, false, "application/json"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/stream=%t/usage=%t", tc.path, tc.stream, tc.usage), func(t *testing.T) {
			r := measure(t, context.Background(), url, tc.path, requestBody(tc.path, "tiny", tc.stream, tc.usage, n))
			m := r.m
			if !m.OK() {
				t.Fatalf("error %s: %s (body %s)", m.ErrorType, m.Error, r.body)
			}
			if m.Format != tc.format || stream.FormatOf(tc.contentType) != tc.format {
				t.Errorf("format = %v, want %v", m.Format, tc.format)
			}
			if m.OutputTokens != n || m.TokensEstimated != tc.estimated {
				t.Errorf("output tokens = %d (estimated %t), want %d (estimated %t)", m.OutputTokens, m.TokensEstimated, n, tc.estimated)
			}
			if !tc.estimated && m.InputTokens != wantPrompt {
				t.Errorf("input tokens = %d, want %d", m.InputTokens, wantPrompt)
			}
			if m.FinishReason != "length" {
				t.Errorf("finish reason = %q, want length", m.FinishReason)
			}
			if m.Model != "tiny" {
				t.Errorf("model = %q, want the requested name", m.Model)
			}
			wantChunks := n
			if !tc.stream {
				wantChunks = 1
			}
			if m.OutputChunks != wantChunks {
				t.Errorf("output chunks = %d, want %d", m.OutputChunks, wantChunks)
			}
			if strings.HasPrefix(tc.path, "/api/") {
				o := m.Ollama
				if o == nil || o.EvalCount != n || o.PromptEvalCount != wantPrompt || o.EvalDuration <= 0 ||
					o.PromptEvalDuration <= 0 || o.TotalDuration < o.EvalDuration+o.PromptEvalDuration {
					t.Errorf("ollama timings = %+v", o)
				}
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

// checkGroundTruth: the chunks reported cover the body, carry every token,
// and end with one final chunk.
func checkGroundTruth(t *testing.T, chunks []ChunkSent, tokens, bodyBytes int) {
	t.Helper()
	gotTokens, gotBytes := 0, 0
	for i, c := range chunks {
		if c.Index != i || (c.Final != (i == len(chunks)-1)) {
			t.Errorf("chunk %d: index %d final %t", i, c.Index, c.Final)
		}
		if i > 0 && c.SentAt.Before(chunks[i-1].SentAt) {
			t.Errorf("chunk %d sent before chunk %d", i, i-1)
		}
		gotTokens += c.Tokens
		gotBytes += c.Bytes
	}
	if gotTokens != tokens || gotBytes != bodyBytes {
		t.Errorf("ground truth: %d tokens in %d bytes, want %d in %d", gotTokens, gotBytes, tokens, bodyBytes)
	}
}

// TestNaturalStop: without a limit the reply ends with "stop" and, as in
// Ollama, eval_count includes the end-of-sequence token.
func TestNaturalStop(t *testing.T) {
	_, url := startServer(t, Config{Profile: "tiny"})
	for _, path := range []string{"/api/chat", "/v1/chat/completions"} {
		body := strings.Replace(requestBody(path, "tiny", true, true, 0), "Why is the sky blue?", "Answer in five words.", 1)
		r := measure(t, context.Background(), url, path, body)
		if !r.m.OK() || r.m.FinishReason != "stop" || r.m.OutputChunks != 5 || r.m.OutputTokens != 6 {
			t.Errorf("%s: ok %t reason %q chunks %d tokens %d", path, r.m.OK(), r.m.FinishReason, r.m.OutputChunks, r.m.OutputTokens)
		}
	}
}

// TestGroundTruthTimes: every output chunk reached the client after the
// simulator began writing it, and soon after it flushed it.
func TestGroundTruthTimes(t *testing.T) {
	var mu sync.Mutex
	var sent []ChunkSent
	_, url := startServer(t, Config{CustomProfile: stepProfile(5*time.Millisecond, 0), OnChunkSent: func(c ChunkSent) {
		mu.Lock()
		sent = append(sent, c)
		mu.Unlock()
	}})
	var arrivals []time.Time
	req := requestBody("/api/chat", "tiny", true, false, 10)
	mt := stream.NewMeter(stream.Config{API: stream.APIOllama, OnChunk: func(ev stream.ChunkEvent) { arrivals = append(arrivals, ev.At) }})
	r := measureWith(t, url, "/api/chat", req, mt)
	if !r.m.OK() || len(arrivals) != 10 {
		t.Fatalf("ok %t, %d output chunks", r.m.OK(), len(arrivals))
	}
	mu.Lock()
	defer mu.Unlock()
	for i, at := range arrivals {
		c := sent[i]
		if c.Tokens != 1 {
			t.Fatalf("chunk %d carries %d tokens", i, c.Tokens)
		}
		if at.Before(c.WriteAt) || at.Sub(c.SentAt) > time.Second || c.SentAt.Before(c.WriteAt) {
			t.Errorf("chunk %d: written %v, sent %v, arrived %v", i, c.WriteAt, c.SentAt, at)
		}
	}
}

// TestGroundTruthLog writes JSON lines that read back as ChunkSent.
func TestGroundTruthLog(t *testing.T) {
	var buf testproc.Buffer
	_, url := startServer(t, Config{Profile: "tiny", GroundTruth: &buf})
	r := measure(t, context.Background(), url, "/api/generate", requestBody("/api/generate", "tiny", true, false, 3))
	waitFor(t, "four lines", func() bool { return strings.Count(buf.String(), "\n") >= 4 })
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), buf.String())
	}
	for i, l := range lines {
		var c ChunkSent
		if err := json.Unmarshal([]byte(l), &c); err != nil || c.RequestID != r.id || c.Index != i || c.Path != "/api/generate" {
			t.Errorf("line %d = %s (%v)", i, l, err)
		}
	}
}

// TestNaturalStopCaps: with NaturalStop a limit above the natural length
// does not lengthen the reply; a limit below it still cuts it.
func TestNaturalStopCaps(t *testing.T) {
	_, url := startServer(t, Config{Profile: "tiny", NaturalStop: true})
	body := func(n int) string {
		return fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":"Answer in five words."}],"options":{"num_predict":%d}}`, n)
	}
	long := measure(t, context.Background(), url, "/api/chat", body(256))
	short := measure(t, context.Background(), url, "/api/chat", body(3))
	if long.m.FinishReason != "stop" || long.m.OutputChunks != 5 || short.m.FinishReason != "length" || short.m.OutputTokens != 3 {
		t.Errorf("limit 256: %s after %d chunks; limit 3: %s after %d tokens", long.m.FinishReason, long.m.OutputChunks,
			short.m.FinishReason, short.m.OutputTokens)
	}
}

//go:build ollama

package ollamatest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/gguf"
	"github.com/tokentrace/tokentrace/internal/ollamatest"
)

// chatBody is a deterministic chat request: fixed seed, temperature 0.
func chatBody(model, prompt string, n int, stream bool) map[string]any {
	return map[string]any{
		"model":    model,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
		"stream":   stream,
		"options":  map[string]any{"num_predict": n, "seed": 42, "temperature": 0},
	}
}

func TestGeneratedModelServes(t *testing.T) {
	modelPath := ollamatest.Model(t)
	srv := ollamatest.Start(t, ollamatest.Options{Parallel: 2, Model: modelPath})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := &http.Client{}

	t.Run("show reports the shape", func(t *testing.T) {
		f, err := os.Open(modelPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		hdr, err := gguf.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := ollamatest.Post(ctx, client, srv.URL(), "/api/show", map[string]string{"model": srv.Model})
		if err != nil || res.Status != 200 {
			t.Fatalf("show: %v, status %v", err, res)
		}
		var show struct {
			ModelInfo map[string]any `json:"model_info"`
		}
		if err := json.Unmarshal(res.Body, &show); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"llama.context_length", "llama.block_count", "llama.embedding_length",
			"llama.attention.head_count", "llama.attention.head_count_kv", "llama.feed_forward_length"} {
			want, _ := hdr.Get(key)
			got, _ := show.ModelInfo[key].(float64)
			if w, ok := want.(uint32); !ok || float64(w) != got {
				t.Errorf("/api/show %s = %v, GGUF says %v", key, show.ModelInfo[key], want)
			}
		}
		if show.ModelInfo["general.architecture"] != "llama" {
			t.Errorf("architecture %v", show.ModelInfo["general.architecture"])
		}
	})

	for _, n := range []int{1, 12} {
		t.Run("chat eval_count "+itoa(n), func(t *testing.T) {
			res, err := ollamatest.Post(ctx, client, srv.URL(), "/api/chat", chatBody(srv.Model, "why is the sky blue?", n, true))
			if err != nil {
				t.Fatal(err)
			}
			m := res.Measurement
			if !m.OK() || m.Ollama == nil {
				t.Fatalf("chat failed: %s %s; body %s", m.ErrorType, m.Error, res.Body)
			}
			if m.Ollama.EvalCount != n || m.OutputTokens != n || m.TokensEstimated {
				t.Errorf("eval_count %d, output tokens %d (estimated %v), want %d", m.Ollama.EvalCount, m.OutputTokens, m.TokensEstimated, n)
			}
			if m.FinishReason != "length" {
				t.Errorf("finish reason %q, want length", m.FinishReason)
			}
			// v0.17 counts the first token's time in the prompt's: one
			// token has an eval_duration of 0.
			if (n > 1 && m.Ollama.EvalDuration <= 0) || m.Ollama.PromptEvalCount == 0 {
				t.Errorf("timings missing: %+v", *m.Ollama)
			}
			t.Logf("%d tokens: TTFT %v, E2E %v, server decode %.1f tok/s", n, ttft(m), m.E2E(), m.Ollama.DecodeSpeed())
		})
	}

	t.Run("openai usage", func(t *testing.T) {
		body := map[string]any{
			"model": srv.Model, "stream": true, "max_tokens": 8, "seed": 42, "temperature": 0,
			"stream_options": map[string]any{"include_usage": true},
			"messages":       []map[string]string{{"role": "user", "content": "hello world"}},
		}
		res, err := ollamatest.Post(ctx, client, srv.URL(), "/v1/chat/completions", body)
		if err != nil {
			t.Fatal(err)
		}
		m := res.Measurement
		if !m.OK() || m.OutputTokens != 8 || m.TokensEstimated {
			t.Fatalf("completion: %s %s, %d output tokens (estimated %v); body %s", m.ErrorType, m.Error, m.OutputTokens, m.TokensEstimated, res.Body)
		}
		if !strings.Contains(string(res.Body), "data: [DONE]") {
			t.Error("no [DONE]")
		}
	})

	t.Run("runner parallel", func(t *testing.T) {
		r, err := srv.WaitRunner(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.Parallel != 2 {
			t.Errorf("runner --parallel %d, want 2 (OLLAMA_NUM_PARALLEL=2); cmd %s", r.Parallel, r.Cmd)
		}
	})

	t.Run("temperature 0 with a seed is deterministic", func(t *testing.T) {
		var texts []string
		for range 2 {
			res, err := ollamatest.Post(ctx, client, srv.URL(), "/api/chat", chatBody(srv.Model, "hello world", 10, false))
			if err != nil || res.Status != 200 {
				t.Fatalf("chat: %v %v", err, res)
			}
			var r struct {
				Message struct{ Content string } `json:"message"`
			}
			if err := json.Unmarshal(res.Body, &r); err != nil {
				t.Fatal(err)
			}
			texts = append(texts, r.Message.Content)
		}
		if texts[0] != texts[1] || texts[0] == "" {
			t.Errorf("two runs gave %q and %q", texts[0], texts[1])
		}
	})
}

func TestQ4_0ModelServes(t *testing.T) {
	c := gguf.DefaultConfig()
	c.Type = gguf.Q4_0
	srv := ollamatest.Start(t, ollamatest.Options{Model: ollamatest.WriteModel(t, c)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := ollamatest.Post(ctx, &http.Client{}, srv.URL(), "/api/chat", chatBody(srv.Model, "hello", 6, true))
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Measurement; !m.OK() || m.Ollama == nil || m.Ollama.EvalCount != 6 {
		t.Fatalf("Q4_0 chat: %s %s; body %s", m.ErrorType, m.Error, res.Body)
	}
	show, err := ollamatest.Post(ctx, &http.Client{}, srv.URL(), "/api/show", map[string]string{"model": srv.Model})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(show.Body), `"quantization_level":"Q4_0"`) {
		t.Errorf("/api/show does not report Q4_0: %s", show.Body[:min(len(show.Body), 300)])
	}
}

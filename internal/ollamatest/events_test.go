//go:build ollama

package ollamatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/ollamatest"
)

// captureStreams, when set, receives the real streams TestEventAPIsOnOllama
// read (internal/stream/testdata/ollama-v0.17.4 holds the committed ones).
var captureStreams = flag.String("capture-streams", "", "write the real /v1/responses and /v1/messages bodies into this folder")

// event is one SSE event of a body.
type event struct {
	name string
	data map[string]any
}

func events(t *testing.T, body []byte) []event {
	t.Helper()
	var evs []event
	for _, raw := range bytes.Split(bytes.TrimSpace(body), []byte("\n\n")) {
		name, data, ok := bytes.Cut(raw, []byte("\ndata: "))
		if !ok || !bytes.HasPrefix(name, []byte("event: ")) {
			t.Fatalf("event %q is not an event: and a data: line", raw)
		}
		var d map[string]any
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		evs = append(evs, event{string(bytes.TrimPrefix(name, []byte("event: "))), d})
	}
	return evs
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func path(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// TestEventAPIsOnOllama holds the proxy's and the load tester's reading of
// /v1/responses and /v1/messages to a real Ollama v0.17.4: token counts as
// Ollama states them in its own events, decoded here independently, and
// the wire details the simulator imitates.
func TestEventAPIsOnOllama(t *testing.T) {
	srv := ollamatest.Start(t, ollamatest.Options{Parallel: 1})
	proxy, rec := proxyInFront(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := &http.Client{}
	const limit = 6
	model := srv.Model
	msgs := []map[string]string{{"role": "user", "content": "why is the sky blue?"}}

	for _, tc := range []struct {
		name, path, file string
		body             map[string]any
		streamed         bool
	}{
		{"responses stream", "/v1/responses", "responses-stream.sse",
			map[string]any{"model": model, "input": msgs, "stream": true, "max_output_tokens": limit, "temperature": 0}, true},
		{"responses whole", "/v1/responses", "responses-whole.json",
			map[string]any{"model": model, "input": msgs, "max_output_tokens": limit, "temperature": 0}, false},
		{"messages stream", "/v1/messages", "messages-stream.sse",
			map[string]any{"model": model, "messages": msgs, "stream": true, "max_tokens": limit, "temperature": 0}, true},
		{"messages whole", "/v1/messages", "messages-whole.json",
			map[string]any{"model": model, "messages": msgs, "max_tokens": limit, "temperature": 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct, err := ollamatest.Post(ctx, client, srv.URL(), tc.path, tc.body)
			if err != nil || direct.Status != 200 {
				t.Fatalf("direct: %v %+v", err, direct)
			}
			if *captureStreams != "" {
				if err := os.WriteFile(filepath.Join(*captureStreams, tc.file), direct.Body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			in, out, finish := stated(t, tc.path, tc.streamed, direct.Body)
			m := direct.Measurement // the load tester's reading: the same stream.Meter
			if !m.OK() || m.InputTokens != in || m.OutputTokens != out || m.TokensEstimated || m.FinishReason != finish || m.OutputChunks == 0 {
				t.Errorf("meter: %s %q, in %d out %d (estimated %v) finish %q in %d chunks; Ollama said in %d out %d finish %q",
					m.ErrorType, m.Error, m.InputTokens, m.OutputTokens, m.TokensEstimated, m.FinishReason, m.OutputChunks, in, out, finish)
			}
			// Ollama sends no delta for a token whose text is empty (the
			// generated model samples such tokens), so chunks ≤ tokens.
			if tc.streamed && (m.OutputChunks > out || m.OutputChunks == 0) {
				t.Errorf("%d output chunks for %d tokens", m.OutputChunks, out)
			}
			before := len(rec.Ended())
			via, err := ollamatest.Post(ctx, client, proxy.URL, tc.path, tc.body)
			if err != nil || via.Status != 200 {
				t.Fatalf("via proxy: %v %+v", err, via)
			}
			in, out, finish = stated(t, tc.path, tc.streamed, via.Body)
			span := waitSpan(t, rec, before)
			attrs := map[string]any{}
			for _, kv := range span.Attributes() {
				attrs[string(kv.Key)] = kv.Value.AsInterface()
			}
			api := strings.TrimPrefix(tc.path, "/v1/")
			if api == "messages" {
				api = "anthropic"
			}
			if span.Name() != "chat "+model || attrs["gen_ai.operation.name"] != "chat" || attrs["tokentrace.api"] != api ||
				attrs["gen_ai.usage.input_tokens"] != int64(in) || attrs["gen_ai.usage.output_tokens"] != int64(out) ||
				attrs["error.type"] != nil {
				t.Errorf("span %q %v; Ollama said in %d out %d", span.Name(), attrs, in, out)
			}
			if fr, _ := attrs["gen_ai.response.finish_reasons"].([]string); len(fr) != 1 || fr[0] != finish {
				t.Errorf("span finish reasons %v, want [%s]", attrs["gen_ai.response.finish_reasons"], finish)
			}
			if tc.streamed {
				checkOllamaDetails(t, tc.path, direct.Body, limit)
			}
		})
	}

	// The load tester's own requests, through the proxy.
	for _, api := range []string{"responses", "anthropic"} {
		t.Run("loadtest "+api, func(t *testing.T) {
			o := loadgen.DefaultOptions()
			o.URL, o.API, o.Model, o.MaxTokens, o.Requests, o.PromptSize, o.Timeout = proxy.URL, api, model, limit, 2, "small", 2*time.Minute
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			n := 0
			err := loadgen.Run(ctx, o, func(r *vegeta.Result) error {
				f, err := loadgen.Decode(r)
				if err != nil {
					return err
				}
				n++
				if !f.OK() || f.TokensEstimated || f.OutputTokens == 0 || f.OutputTokens > limit || f.InputTokens == 0 || f.OutputChunks > f.OutputTokens {
					t.Errorf("record %+v", f)
				}
				return nil
			})
			if err != nil || n != 2 {
				t.Fatalf("loadtest: %v, %d records", err, n)
			}
		})
	}
}

// stated decodes the counts and finish reason Ollama states in a body.
func stated(t *testing.T, path string, streamed bool, body []byte) (in, out int, finish string) {
	t.Helper()
	if !streamed {
		var w map[string]any
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatal(err)
		}
		if path == "/v1/responses" {
			return num(path2(w, "usage", "input_tokens")), num(path2(w, "usage", "output_tokens")), w["status"].(string)
		}
		return num(path2(w, "usage", "input_tokens")), num(path2(w, "usage", "output_tokens")), w["stop_reason"].(string)
	}
	for _, ev := range events(t, body) {
		switch ev.name {
		case "response.completed":
			r := ev.data["response"].(map[string]any)
			return num(path2(r, "usage", "input_tokens")), num(path2(r, "usage", "output_tokens")), r["status"].(string)
		case "message_delta":
			in, out = num(path2(ev.data, "usage", "input_tokens")), num(path2(ev.data, "usage", "output_tokens"))
			finish, _ = path2(ev.data, "delta", "stop_reason").(string)
		}
	}
	return in, out, finish
}

func path2(m map[string]any, a, b string) any { return path(m, a, b) }

// checkOllamaDetails: the v0.17.4 details the simulator reproduces.
func checkOllamaDetails(t *testing.T, p string, body []byte, limit int) {
	t.Helper()
	evs := events(t, body)
	if p == "/v1/responses" {
		for i, ev := range evs {
			if num(ev.data["sequence_number"]) != i {
				t.Errorf("event %d (%s): sequence_number %v, want numbering from 0", i, ev.name, ev.data["sequence_number"])
			}
			if r, ok := ev.data["response"].(map[string]any); ok && ev.name != "response.completed" && r["usage"] != nil {
				t.Errorf("%s carries usage %v", ev.name, r["usage"])
			}
		}
		last := evs[len(evs)-1]
		r := last.data["response"].(map[string]any)
		if last.name != "response.completed" || path(r, "usage", "input_tokens_details", "cached_tokens") == nil ||
			path(r, "usage", "output_tokens_details", "reasoning_tokens") == nil {
			t.Errorf("last event %s, usage %v", last.name, r["usage"])
		}
		if num(path(r, "usage", "output_tokens")) == limit && r["status"] != "completed" {
			t.Errorf("max_output_tokens stopped it: status %v, want Ollama's \"completed\"", r["status"])
		}
		return
	}
	var estimate, final any
	for _, ev := range evs {
		switch ev.name {
		case "ping":
			t.Error("Ollama sent a ping")
		case "message_start":
			estimate = path(ev.data, "message", "usage", "input_tokens")
		case "message_delta":
			final = path(ev.data, "usage", "input_tokens")
		}
	}
	t.Logf("message_start input_tokens %v (estimate), message_delta %v", estimate, final)
	if estimate == nil || final == nil {
		t.Errorf("input counts: start %v, delta %v", estimate, final)
	}
}

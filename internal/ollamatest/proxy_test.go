//go:build ollama

package ollamatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tokentrace/tokentrace/internal/gateway"
	"github.com/tokentrace/tokentrace/internal/ollamatest"
)

// volatile matches the fields that differ between two identical generations:
// time stamps, durations and ids. Everything else must match byte for byte.
var volatile = []*regexp.Regexp{
	regexp.MustCompile(`"created_at":"[^"]*"`),
	regexp.MustCompile(`"(total|load|prompt_eval|eval)_duration":\d+`),
	regexp.MustCompile(`"id":"[^"]*"`),
	regexp.MustCompile(`"created":\d+`),
}

func normalise(b []byte) []byte {
	for _, re := range volatile {
		b = re.ReplaceAllFunc(b, func(m []byte) []byte {
			return append(bytes.SplitN(m, []byte(":"), 2)[0], ":_"...)
		})
	}
	return b
}

// proxyCase is one streaming request sent direct and through the proxy.
type proxyCase struct {
	name, path string
	body       map[string]any
	// final decodes the final chunk's token count and, for Ollama, timings.
	final func(body []byte) (evalCount int, timings map[string]float64, err error)
}

func proxyCases(model string) []proxyCase {
	opts := map[string]any{"num_predict": 12, "seed": 42, "temperature": 0}
	return []proxyCase{
		{"api chat", "/api/chat", map[string]any{"model": model, "stream": true, "options": opts,
			"messages": []map[string]string{{"role": "user", "content": "why is the sky blue?"}}}, ollamaFinal},
		{"api generate", "/api/generate", map[string]any{"model": model, "stream": true, "options": opts,
			"prompt": "hello world, the first token"}, ollamaFinal},
		{"openai chat completions", "/v1/chat/completions", map[string]any{"model": model, "stream": true,
			"max_tokens": 12, "seed": 42, "temperature": 0, "stream_options": map[string]any{"include_usage": true},
			"messages": []map[string]string{{"role": "user", "content": "what is a token?"}}}, openAIFinal},
	}
}

func ollamaFinal(body []byte) (int, map[string]float64, error) {
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	last := lines[len(lines)-1]
	var f map[string]any
	if err := json.Unmarshal(last, &f); err != nil || f["done"] != true {
		return 0, nil, fmt.Errorf("final line %q: %v", last, err)
	}
	num := func(k string) float64 { v, _ := f[k].(float64); return v }
	timings := map[string]float64{
		"tokentrace.ollama.prompt_eval_count": num("prompt_eval_count"),
		"tokentrace.ollama.eval_count":        num("eval_count"),
	}
	for _, k := range []string{"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"} {
		timings["tokentrace.ollama."+k] = num(k) / 1e9
	}
	return int(num("eval_count")), timings, nil
}

func openAIFinal(body []byte) (int, map[string]float64, error) {
	for _, ev := range bytes.Split(body, []byte("\n\n")) {
		data, ok := bytes.CutPrefix(bytes.TrimSpace(ev), []byte("data: "))
		if !ok || bytes.Equal(data, []byte("[DONE]")) {
			continue
		}
		var c struct {
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal(data, &c) == nil && c.Usage != nil {
			return c.Usage.CompletionTokens, nil, nil
		}
	}
	return 0, nil, fmt.Errorf("no usage chunk in %q", body)
}

func TestThroughProxy(t *testing.T) {
	srv := ollamatest.Start(t, ollamatest.Options{Parallel: 1})
	proxy, rec := proxyInFront(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := &http.Client{}

	for _, tc := range proxyCases(srv.Model) {
		t.Run(tc.name, func(t *testing.T) {
			post := func(base string) *ollamatest.Result {
				t.Helper()
				res, err := ollamatest.Post(ctx, client, base, tc.path, tc.body)
				if err != nil || res.Status != 200 || !res.Measurement.OK() {
					t.Fatalf("%s%s: %v %+v", base, tc.path, err, res)
				}
				return res
			}
			// The first run fills the slot's prompt cache; the two compared
			// runs then take the same path through the engine.
			cold := post(srv.URL())
			direct := post(srv.URL())
			t.Logf("the run that filled the prompt cache generated the same bytes as the cached run: %v",
				bytes.Equal(normalise(cold.Body), normalise(direct.Body)))
			before := len(rec.Ended())
			viaProxy := post(proxy.URL)
			if got, want := viaProxy.Header.Get("Content-Type"), direct.Header.Get("Content-Type"); got != want {
				t.Errorf("content type via proxy %q, direct %q", got, want)
			}
			if d, p := normalise(direct.Body), normalise(viaProxy.Body); !bytes.Equal(d, p) {
				again := post(srv.URL())
				t.Errorf("body via proxy differs from direct (Ollama itself repeats: %v)\ndirect: %s\nproxy:  %s",
					bytes.Equal(d, normalise(again.Body)), d, p)
			}
			evalCount, timings, err := tc.final(viaProxy.Body)
			if err != nil {
				t.Fatal(err)
			}
			span := waitSpan(t, rec, before)
			attrs := map[string]any{}
			for _, kv := range span.Attributes() {
				attrs[string(kv.Key)] = kv.Value.AsInterface()
			}
			if got := attrs["gen_ai.usage.output_tokens"]; got != int64(evalCount) {
				t.Errorf("span gen_ai.usage.output_tokens = %v, Ollama's count %d", got, evalCount)
			}
			for k, want := range timings {
				got, ok := attrs[k]
				var g float64
				switch v := got.(type) {
				case float64:
					g = v
				case int64:
					g = float64(v)
				}
				if !ok || math.Abs(g-want) > 1e-9 {
					t.Errorf("span %s = %v, Ollama sent %v", k, got, want)
				}
			}
			t.Logf("%s: %d tokens; span %q", tc.path, evalCount, span.Name())
		})
	}
}

// waitSpan waits (bounded) for the span of the request that followed
// `before` ended spans: the gateway ends it just after the body's last byte.
func waitSpan(t *testing.T, rec *tracetest.SpanRecorder, before int) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if spans := rec.Ended(); len(spans) > before {
			for _, s := range spans[before:] {
				for _, kv := range s.Attributes() {
					if kv.Key == "gen_ai.usage.output_tokens" {
						return s
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span with gen_ai.usage.output_tokens ended; %d spans", len(rec.Ended()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxyInFront serves the gateway in front of upstream, recording its spans,
// until the test ends.
func proxyInFront(t *testing.T, upstream string) (*httptest.Server, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	gw, err := gateway.New(gateway.Config{Upstreams: []string{upstream}, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(gw)
	t.Cleanup(func() {
		proxy.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
	})
	return proxy, rec
}

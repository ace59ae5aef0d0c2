//go:build sdk

package sdktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.uber.org/goleak"

	"github.com/tokentrace/tokentrace/internal/gateway"
	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/stats"
)

// ttftP99 holds the proxy's first-token time to the ground truth at p99;
// `make test-sdk` sets 1ms. Left at 0 (a plain run beside other work) the
// error is logged and only held to a wide bound.
var ttftP99 = flag.Duration("ttft-p99", 0, "hold the proxy's TTFT error to this p99")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	requests  = 40
	maxTokens = 8
	thinking  = 3 // reasoning tokens before every answer
)

// sent is the ground truth of one output chunk: written no earlier than
// write, flushed by sent.
type sent struct {
	write, sent time.Time
	reasoning   bool
}

// truth is one request as the upstream served it.
type truth struct {
	chunks          []sent
	outputTokens    int
	reasoningTokens int // as the upstream reported them; -1 when it reports none
}

// sdkResult is one JSON line of client.cjs.
type sdkResult struct {
	Text            string `json:"text"`
	Reasoning       string `json:"reasoning"`
	InputTokens     int    `json:"input_tokens"`
	OutputTokens    int    `json:"output_tokens"`
	ReasoningTokens *int   `json:"reasoning_tokens"`
}

func TestSDKsThroughProxy(t *testing.T) {
	modules := os.Getenv("TOKENTRACE_SDK_NODE_MODULES")
	if modules == "" {
		t.Skip("TOKENTRACE_SDK_NODE_MODULES is not set; run `make test-sdk`")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var ttftErrs []float64
	for _, up := range []string{"simulator", "fake"} {
		for _, sdk := range []string{"openai", "anthropic"} {
			t.Run(up+"/"+sdk, func(t *testing.T) {
				url, truths := startUpstream(t, up, sdk)
				proxyURL, spans, gw := startProxy(t, url)
				results := runSDK(t, node, modules, sdk, proxyURL)
				waitIdle(t, gw)
				ss := chatSpans(spans.Ended())
				ts := truths()
				if len(results) != requests || len(ss) != requests || len(ts) != requests {
					t.Fatalf("%d SDK results, %d spans, %d upstream records; want %d each", len(results), len(ss), len(ts), requests)
				}
				for i := range ss {
					ttftErrs = append(ttftErrs, check(t, i, sdk, ss[i], ts[i], results[i]))
				}
			})
		}
	}
	s := stats.Summarize(ttftErrs)
	t.Logf("proxy TTFT error vs ground truth: p50 %.0fµs p99 %.0fµs max %.0fµs over %d requests", s.P50*1e6, s.P99*1e6, s.Max*1e6, s.Count)
	bound := 250 * time.Millisecond // a loaded machine; the make stage sets 1 ms
	if *ttftP99 > 0 {
		bound = *ttftP99
	}
	if s.P99 > bound.Seconds() {
		t.Errorf("TTFT error p99 %.3f ms, want ≤ %s", s.P99*1e3, bound)
	}
}

// check compares one request's span and SDK view with the truth and returns
// the TTFT error in seconds.
func check(t *testing.T, i int, sdk string, s sdktrace.ReadOnlySpan, tr truth, r sdkResult) float64 {
	t.Helper()
	a := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		a[kv.Key] = kv.Value
	}
	if e, ok := a[semconv.ErrorTypeKey]; ok {
		t.Fatalf("request %d: error.type %s", i, e.Emit())
	}
	if got := int(a[semconv.GenAIUsageOutputTokensKey].AsInt64()); got != tr.outputTokens || r.OutputTokens != tr.outputTokens {
		t.Errorf("request %d: output tokens: proxy %d, SDK %d, truth %d", i, got, r.OutputTokens, tr.outputTokens)
	}
	rt, reported := a[semconv.GenAIUsageReasoningOutputTokensKey]
	switch {
	case tr.reasoningTokens < 0 && reported:
		t.Errorf("request %d: reasoning tokens %d recorded, but the upstream reports none", i, rt.AsInt64())
	case tr.reasoningTokens >= 0 && (!reported || int(rt.AsInt64()) != tr.reasoningTokens):
		t.Errorf("request %d: reasoning tokens %v (%v), truth %d", i, rt.Emit(), reported, tr.reasoningTokens)
	case tr.reasoningTokens >= 0 && (r.ReasoningTokens == nil || *r.ReasoningTokens != tr.reasoningTokens):
		t.Errorf("request %d: the SDK saw reasoning tokens %v, truth %d", i, r.ReasoningTokens, tr.reasoningTokens)
	}
	if r.Text == "" || r.Reasoning == "" {
		t.Errorf("request %d: the SDK saw text %q and reasoning %q", i, r.Text, r.Reasoning)
	}
	if api := a["tokentrace.api"].AsString(); api != map[string]string{"openai": "responses", "anthropic": "anthropic"}[sdk] {
		t.Errorf("request %d: tokentrace.api %q", i, api)
	}
	var firstToken, firstContent time.Time
	for _, e := range s.Events() {
		switch e.Name {
		case "first_token":
			firstToken = e.Time
		case "first_content":
			firstContent = e.Time
		}
	}
	if firstToken.IsZero() || firstContent.IsZero() || len(tr.chunks) != tr.outputTokens {
		t.Fatalf("request %d: first_token %v, first_content %v, %d chunks for %d tokens", i, firstToken, firstContent, len(tr.chunks), tr.outputTokens)
	}
	if !tr.chunks[0].reasoning || tr.chunks[thinking].reasoning {
		t.Fatalf("request %d: the upstream's chunks are not %d reasoning then the answer", i, thinking)
	}
	if e := outside(firstContent, tr.chunks[thinking]); e > 0.25 {
		t.Errorf("request %d: first_content %.1f ms off the truth", i, e*1e3)
	}
	return outside(firstToken, tr.chunks[0])
}

// outside is how far x lies outside [write, sent], in seconds.
func outside(x time.Time, c sent) float64 {
	switch {
	case x.Before(c.write):
		return c.write.Sub(x).Seconds()
	case x.After(c.sent):
		return x.Sub(c.sent).Seconds()
	}
	return 0
}

func chatSpans(all []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var ss []sdktrace.ReadOnlySpan
	for _, s := range all {
		if strings.HasPrefix(s.Name(), "chat ") {
			ss = append(ss, s)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].StartTime().Before(ss[j].StartTime()) })
	return ss
}

func startProxy(t *testing.T, upstream string) (string, *tracetest.SpanRecorder, *gateway.Gateway) {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	gw, err := gateway.New(gateway.Config{Upstreams: []string{upstream}, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		srv.Close()
		_ = tp.Shutdown(ctx)
	})
	return srv.URL, spans, gw
}

func waitIdle(t *testing.T, gw *gateway.Gateway) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for gw.Active() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy still serves %d requests", gw.Active())
		}
		time.Sleep(time.Millisecond)
	}
}

func runSDK(t *testing.T, node, modules, sdk, proxyURL string) []sdkResult {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(filepath.Dir(file), "client.cjs"), modules, sdk, proxyURL, "tiny",
		fmt.Sprint(requests), fmt.Sprint(maxTokens))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.cjs %s: %v\n%s", sdk, err, stderr.String())
	}
	var rs []sdkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r sdkResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("SDK output %q: %v", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	return rs
}

// startUpstream serves the simulator (reasoning first, as a thinking
// model) or the fake, and returns a function that lists the requests'
// ground truth in the order they were served.
func startUpstream(t *testing.T, kind, sdk string) (string, func() []truth) {
	t.Helper()
	var mu sync.Mutex
	byID := map[string]*truth{}
	var order []string
	record := func(id string, c sent, tokens int) {
		mu.Lock()
		defer mu.Unlock()
		tr, ok := byID[id]
		if !ok {
			tr = &truth{reasoningTokens: -1}
			byID[id] = tr
			order = append(order, id)
		}
		tr.chunks = append(tr.chunks, c)
		tr.outputTokens += tokens
	}
	list := func(reasoningTokens int) func() []truth {
		return func() []truth {
			mu.Lock()
			defer mu.Unlock()
			var ts []truth
			for _, id := range order {
				tr := *byID[id]
				tr.reasoningTokens = reasoningTokens
				ts = append(ts, tr)
			}
			return ts
		}
	}
	// The Responses API reports reasoning tokens (Ollama: 0, the fake: the
	// real count); the Messages API has no such count.
	reported := -1
	if kind == "simulator" {
		prof := simulator.Profiles["tiny"]
		prof.LoadTime, prof.RequestOverhead, prof.PrefillPerToken, prof.StepBase, prof.StepPerSeq = 0, time.Millisecond, 0, 5*time.Millisecond, 0
		n := 0
		sim, err := simulator.New(simulator.Config{CustomProfile: &prof, Parallel: 1, ThinkingTokens: thinking,
			OnChunkSent: func(c simulator.ChunkSent) {
				if c.Tokens == 0 {
					return
				}
				mu.Lock()
				n = len(byID[c.RequestID].chunksOrNil())
				mu.Unlock()
				record(c.RequestID, sent{write: c.WriteAt, sent: c.SentAt, reasoning: n < thinking}, c.Tokens)
			}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(sim)
		t.Cleanup(func() {
			srv.Close()
			sim.Close()
		})
		if sdk == "openai" {
			reported = 0
		}
		return srv.URL, list(reported)
	}
	if sdk == "openai" {
		reported = thinking
	}
	var next int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		next++
		id := fmt.Sprint(next)
		mu.Unlock()
		serveFake(w, r, sdk, func(c sent) { record(id, c, 1) })
	}))
	t.Cleanup(srv.Close)
	return srv.URL, list(reported)
}

func (tr *truth) chunksOrNil() []sent {
	if tr == nil {
		return nil
	}
	return tr.chunks
}

package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/tokentrace/tokentrace/internal/stream"
	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// named is an upstream that says who it is in a header.
func named(t *testing.T, name string) *httptest.Server {
	t.Helper()
	return fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Upstream", name)
		chunked(w, ndjson, ollamaStream(1), 0, 0)
	})
}

func TestRoundRobinAndRouteByModel(t *testing.T) {
	a, b, big := named(t, "a"), named(t, "b"), named(t, "big")
	rg := newRig(t, Config{
		Upstreams:    []string{a.URL, b.URL},
		RouteByModel: map[string][]string{"big:70b": {big.URL}},
		Providers:    map[string]string{big.URL + "/": "vllm"},
	})
	var got []string
	for _, model := range []string{"m1", "m1", "m1", "m1", "big:70b", "big:70b"} {
		resp, _ := rg.do(t, "POST", "/api/chat", `{"model":"`+model+`"}`, nil)
		got = append(got, resp.Header.Get("X-Upstream"))
	}
	if strings.Join(got, ",") != "a,b,a,b,big,big" {
		t.Errorf("upstreams chosen %v, want a,b,a,b,big,big", got)
	}
	for _, s := range rg.spans.Ended() {
		if s.Name() == "chat big:70b" && attrs(s)[semconv.GenAIProviderNameKey].AsString() != "vllm" {
			t.Errorf("provider of the routed upstream = %q", attrs(s)[semconv.GenAIProviderNameKey].AsString())
		}
	}
	// Requests that are not inferences go to the default pool.
	if resp, _ := rg.do(t, "GET", "/api/tags", "", nil); resp.Header.Get("X-Upstream") != "a" {
		t.Errorf("/api/tags went to %q", resp.Header.Get("X-Upstream"))
	}
}

func TestLabelValuesAreBounded(t *testing.T) {
	srv := named(t, "a")
	rg := newRig(t, Config{MaxModels: 2, MaxScenarios: 1}, srv.URL)
	for i, model := range []string{"m1", "m2", "m3", "m1"} {
		scenario := []string{"s1", "s2", "s1", "bad value;" + strings.Repeat("x", 100)}[i]
		rg.do(t, "POST", "/api/generate", `{"model":"`+model+`"}`, map[string]string{DefaultScenarioHeader: scenario})
	}
	models, scenarios := map[string]bool{}, map[string]bool{}
	for _, dp := range histPoints(t, rg.metrics(t), "gen_ai.client.operation.duration") {
		m, _ := dp.Attributes.Value(semconv.GenAIRequestModelKey)
		s, _ := dp.Attributes.Value(attrScenario)
		models[m.AsString()], scenarios[s.AsString()] = true, true
	}
	if len(models) != 3 || !models["m1"] || !models["m2"] || !models[overflowValue] {
		t.Errorf("model labels %v, want m1, m2 and %s", models, overflowValue)
	}
	if len(scenarios) != 2 || !scenarios["s1"] || !scenarios[overflowValue] {
		t.Errorf("scenario labels %v, want s1 and %s", scenarios, overflowValue)
	}
	// Spans keep the real model name; only labels are capped.
	found := false
	for _, s := range rg.spans.Ended() {
		found = found || s.Name() == "text_completion m3"
		if v := attrs(s)[attrScenario].AsString(); len(v) > maxLabelLen || strings.ContainsAny(v, " ;") {
			t.Errorf("scenario attribute %q not bounded", v)
		}
	}
	if !found {
		t.Error("no span for model m3")
	}
}

func TestAdminEndpoints(t *testing.T) {
	live := named(t, "a")
	ms, err := telemetry.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	gw, err := New(Config{Upstreams: []string{live.URL}, TracerProvider: tp, MeterProvider: ms.Provider})
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(gw)
	admin := httptest.NewServer(gw.AdminHandler(ms.Handler))
	t.Cleanup(func() {
		_ = gw.Shutdown(context.Background())
		proxy.Close()
		admin.Close()
		_ = tp.Shutdown(context.Background())
	})
	resp, err := http.Post(proxy.URL+"/api/chat", "application/json", strings.NewReader(`{"model":"m1"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	get := func(path, accept string) (int, string) {
		req, _ := http.NewRequest("GET", admin.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz", ""); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, body := get("/readyz", ""); code != 200 {
		t.Errorf("/readyz %d %s with a live upstream", code, body)
	}
	code, body := get("/metrics", "application/openmetrics-text;version=1.0.0")
	if code != 200 || !strings.Contains(body, "gen_ai_client_operation_time_to_first_chunk_seconds_bucket") ||
		!strings.Contains(body, `gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat"`) ||
		!strings.Contains(body, "# {trace_id=") {
		t.Errorf("/metrics lacks the TTFT histogram, token usage or exemplars:\n%s", body)
	}
	live.Close()
	if code, body := get("/readyz", ""); code != 503 || !strings.Contains(body, "no upstream reachable") {
		t.Errorf("/readyz %d %q with the upstream down", code, body)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no upstream", Config{}, "Upstreams is empty"},
		{"bad scheme", Config{Upstreams: []string{"ftp://x"}}, "scheme"},
		{"path", Config{Upstreams: []string{"http://x:1/v1"}}, "path"},
		{"route without upstream", Config{Upstreams: []string{"http://x:1"}, RouteByModel: map[string][]string{"m": nil}}, `RouteByModel["m"]`},
		{"every 0", Config{Upstreams: []string{"http://x:1"}, TokenEvents: TokenEvents{Mode: TokenEventsEveryN}}, "Every"},
		{"negative body", Config{Upstreams: []string{"http://x:1"}, MaxBodyBytes: -1}, "MaxBodyBytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if err := (Config{Upstreams: []string{"http://127.0.0.1:11434/"}}).Validate(); err != nil {
		t.Errorf("a good config: %v", err)
	}
	for _, s := range []string{"off", "all", "every:5"} {
		if _, err := ParseTokenEvents(s); err != nil {
			t.Errorf("ParseTokenEvents(%q): %v", s, err)
		}
	}
	for _, s := range []string{"every:0", "some", "every:x"} {
		if _, err := ParseTokenEvents(s); err == nil {
			t.Errorf("ParseTokenEvents(%q) accepted", s)
		}
	}
}

func FuzzReadBody(f *testing.F) {
	f.Add([]byte(`{"model":"m1","stream":false}`), int64(-1), int64(64))
	f.Add([]byte(`{"model":1}`), int64(11), int64(5))
	f.Add([]byte(""), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, body []byte, declared, limit int64) {
		if limit < 0 || limit > 1<<20 {
			t.Skip()
		}
		if declared != -1 {
			declared = int64(len(body))
		}
		got, err := readBody(bytes.NewReader(body), declared, limit)
		switch {
		case int64(len(body)) > limit:
			if err == nil {
				t.Fatalf("%d bytes read with limit %d", len(body), limit)
			}
		case err != nil:
			t.Fatalf("read %d bytes (limit %d): %v", len(body), limit, err)
		case !bytes.Equal(got, body):
			t.Fatalf("read %q, want %q", got, body)
		}
		// Whatever the bytes, reading the request from them must not panic.
		for _, path := range []string{"/api/chat", "/v1/completions"} {
			ep, _ := stream.EndpointOf(path)
			_, _ = stream.ParseRequest(ep, got)
		}
	})
}

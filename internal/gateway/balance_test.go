package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// TestLeastOutstandingAvoidsBusyUpstream: while one upstream holds a long
// stream, new requests go to the idle one (round robin would alternate).
func TestLeastOutstandingAvoidsBusyUpstream(t *testing.T) {
	release := make(chan struct{})
	var heldServed, quickServed atomic.Int64
	held := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		heldServed.Add(1)
		chunked(w, ndjson, ollamaStream(1)[:1], 0, 0)
		select {
		case <-release:
			_, _ = io.WriteString(w, ollamaStream(1)[1])
		case <-r.Context().Done():
		}
	})
	quick := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		quickServed.Add(1)
		chunked(w, ndjson, ollamaStream(1), 0, 0)
	})
	rg := newRig(t, Config{Upstreams: []string{held.URL, quick.URL}})
	// The first request goes to the first upstream (ties rotate from it) and stays.
	resp, err := rg.client.Post(rg.url+"/api/chat", "application/json", strings.NewReader(`{"model":"m1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadBytes('\n'); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		rg.do(t, "POST", "/api/chat", `{"model":"m1"}`, nil)
	}
	close(release)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rg.settle(t, 0)
	if heldServed.Load() != 1 || quickServed.Load() != 4 {
		t.Errorf("busy upstream served %d, idle one %d; want 1 and 4", heldServed.Load(), quickServed.Load())
	}
}

// TestRefusingUpstreamIsEjectedAndRequestRetried: a request whose upstream
// refuses the connection is sent to the other one and succeeds; the
// refusing upstream gets no more requests during its backoff, and the
// gauge and /readyz show it ejected.
func TestRefusingUpstreamIsEjectedAndRequestRetried(t *testing.T) {
	dead := closedURL(t)
	var served atomic.Int64
	live := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		chunked(w, ndjson, ollamaStream(2), 0, 0)
	})
	rg := newRig(t, Config{Upstreams: []string{dead, live.URL}, EjectBackoff: time.Minute})
	for i := range 4 {
		resp, body := rg.do(t, "POST", "/api/chat", `{"model":"m1","stream":true}`, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"done":true`) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if served.Load() != 4 {
		t.Errorf("the live upstream served %d of 4", served.Load())
	}
	var failed int
	for _, s := range rg.spans.Ended() {
		if s.SpanKind() == trace.SpanKindClient && s.Status().Code != 0 && attrs(s)[semconv.ErrorTypeKey].AsString() != "" {
			failed++
		}
		if s.SpanKind() == trace.SpanKindServer {
			if e, ok := attrs(s)[semconv.ErrorTypeKey]; ok {
				t.Errorf("a retried request is recorded as error %s", e.AsString())
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d failed upstream attempts, want 1 (then ejected)", failed)
	}
	deadHost, deadPort := splitHostPort(mustURL(t, dead))
	up := upstreamGauge(t, rg.metrics(t), "tokentrace.upstream.up")
	if up[deadHost+":"+itoa(deadPort)] != 0 || len(up) != 2 {
		t.Errorf("tokentrace.upstream.up = %v, want the refusing upstream at 0", up)
	}
	liveHost, livePort := splitHostPort(mustURL(t, live.URL))
	if up[liveHost+":"+itoa(livePort)] != 1 {
		t.Errorf("tokentrace.upstream.up = %v, want the live upstream at 1", up)
	}
	states := strings.Join(rg.gw.upstreamStates(), "\n")
	if !strings.Contains(states, strings.TrimPrefix(dead, "http://")+" ejected") {
		t.Errorf("upstream states do not show the ejection:\n%s", states)
	}
	if err := rg.gw.Ready(context.Background()); err != nil {
		t.Errorf("ready with one live upstream: %v", err)
	}
}

// TestNoRetryOnceTheUpstreamGotTheRequest: an upstream that read the
// request and then hung up is not retried (the request may have run).
func TestNoRetryOnceTheUpstreamGotTheRequest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
			}
			c.Close()
		}
	}()
	var served atomic.Int64
	other := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) { served.Add(1) })
	rg := newRig(t, Config{Upstreams: []string{"http://" + l.Addr().String(), other.URL}})
	resp, body := rg.do(t, "POST", "/api/chat", `{"model":"m1"}`, nil)
	if resp.StatusCode != http.StatusBadGateway || served.Load() != 0 {
		t.Errorf("status %d (%s), other upstream served %d; want 502 and 0", resp.StatusCode, body, served.Load())
	}
}

// upstreamGauge reads a per-upstream gauge as host:port → value.
func upstreamGauge(t *testing.T, ms map[string]metricdata.Metrics, name string) map[string]int64 {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Fatalf("%s not recorded", name)
	}
	out := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		h, _ := dp.Attributes.Value(semconv.ServerAddressKey)
		p, _ := dp.Attributes.Value(semconv.ServerPortKey)
		out[h.AsString()+":"+itoa(int(p.AsInt64()))] = dp.Value
	}
	return out
}

func itoa(i int) string { return attribute.IntValue(i).Emit() }

package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// BenchmarkFirstToken times the two halves of a first token's way through
// a proxy with nothing else running, one request at a time on loopback: from
// the client's request to the upstream's handler (the request path: for the
// gateway, body read and parse, spans started, metrics, the upstream
// request), and from the upstream's first chunk to the client (the first
// chunk's path), for a bare httputil.ReverseProxy and for the gateway with
// the proxy command's telemetry (spans batched to a discarding exporter, the
// metrics SDK). The upstream sends its headers and at once its first
// chunk, so the proxy handles both together. Medians over the iterations,
// in µs; ns/op is the whole exchange, the end of request included. Alone
// on the machine: a pause of the upstream between the two lets the
// machine's cores idle, and their wake-up is then most of what is timed.
// Run (the two alternating, as the machine drifts between runs):
// for i in 1 2 3 4 5 6; do for v in bare gateway; do
// go test -run '^$' -bench FirstToken/$v -benchtime 2000x ./internal/gateway; done; done
// go test -run '^$' -bench FirstToken -benchtime 2000x -count 5 ./internal/gateway
func BenchmarkFirstToken(b *testing.B) {
	type stamp struct{ in, first time.Time }
	stamps := make(chan stamp, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		first := time.Now()
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		select { // never blocks the handler, even when the benchmark has failed
		case stamps <- stamp{in, first}:
		default:
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	body := []byte(`{"model":"bench","stream":true,"messages":[{"role":"user","content":"hello there"}]}`)

	run := func(b *testing.B, proxy http.Handler) {
		srv := httptest.NewServer(proxy)
		defer srv.Close()
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		buf := make([]byte, 4096)
		var reqPath, chunkPath []time.Duration
		do := func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := resp.Body.Read(buf); n == 0 {
				b.Fatalf("no first chunk: %v", err)
			}
			got := time.Now()
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s := <-stamps
			reqPath = append(reqPath, s.in.Sub(start))
			chunkPath = append(chunkPath, got.Sub(s.first))
		}
		for range 100 { // connections and pools warm
			do()
		}
		reqPath, chunkPath = reqPath[:0], chunkPath[:0]
		b.ResetTimer()
		for range b.N {
			do()
		}
		b.StopTimer()
		med := func(ds []time.Duration) float64 {
			slices.Sort(ds)
			return float64(ds[len(ds)/2]) / 1e3
		}
		b.ReportMetric(med(reqPath), "µs-request")
		b.ReportMetric(med(chunkPath), "µs-first-chunk")
	}

	b.Run("bare", func(b *testing.B) {
		rp := &httputil.ReverseProxy{
			Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
			Transport:     newTransport(Config{}).next, // net/http's, as bare proxies have
			FlushInterval: -1,
		}
		// The guard proxybench's bare proxy has too (see declaredBody): without
		// it, Go 1.26's ReverseProxy cuts responses here.
		run(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > 0 {
				r.Body = io.NopCloser(io.LimitReader(r.Body, r.ContentLength))
			}
			rp.ServeHTTP(w, r)
		}))
	})
	b.Run("gateway", func(b *testing.B) {
		tr, err := telemetry.NewTracing(context.Background(), telemetry.TraceConfig{ServiceName: "tokentrace-proxy", Exporter: telemetry.DiscardSpans{}})
		if err != nil {
			b.Fatal(err)
		}
		tp := tr.Provider
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		g, err := New(Config{Upstreams: []string{up.URL}, TracerProvider: tp, MeterProvider: mp,
			Propagator: telemetry.Propagator(), TokenEvents: TokenEvents{Packed: true}})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = g.Shutdown(ctx)
			_ = tp.Shutdown(ctx)
			_ = mp.Shutdown(ctx)
		}()
		run(b, g)
	})
}

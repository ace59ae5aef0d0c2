package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tokentrace/tokentrace/internal/gateway"
	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// childStats is what a proxy process reports about itself.
type childStats struct {
	CPU        time.Duration // user + system, whole process
	Mallocs    uint64
	HeapInuse  uint64
	StackInuse uint64
	Goroutines int
}

// serveProxy is the child process: it serves one proxy variant in front of
// upstream until stdin closes, and answers /__bench/stats.
func serveProxy(variant, upstream, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	up, err := url.Parse(upstream)
	if err != nil {
		return fmt.Errorf("upstream %q: %w", upstream, err)
	}
	var proxy http.Handler
	var shutdown func()
	switch variant {
	case "bare":
		// The same transport settings as the gateway's own.
		d := &net.Dialer{Timeout: gateway.DefaultDialTimeout, KeepAlive: 30 * time.Second}
		tr := &http.Transport{DialContext: d.DialContext, MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024,
			IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: gateway.DefaultUpstreamTimeout,
			ExpectContinueTimeout: time.Second, DisableCompression: true, WriteBufferSize: 4 << 10, ReadBufferSize: 4 << 10}
		proxy = &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(up) },
			Transport:     tr,
			FlushInterval: -1,
		}
		// A plain ReverseProxy cuts about one streamed response in a hundred
		// on Go 1.26 when the upstream answers as soon as it has read the
		// request body (see gateway's declaredBody); the bare proxy gets the
		// same two-line guard so it can be measured at all.
		rp := proxy
		proxy = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > 0 {
				r.Body = io.NopCloser(io.LimitReader(r.Body, r.ContentLength))
			}
			rp.ServeHTTP(w, r)
		})
		shutdown = tr.CloseIdleConnections
	case "gateway", "gateway-events-off":
		// The real telemetry, exporting to nowhere: spans are built, queued
		// and batched as in production, metrics go to the Prometheus reader.
		bp := telemetry.NewBatchProcessor(discard{}, telemetry.BatchConfig{})
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(bp), sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit: -1, AttributeCountLimit: 128, EventCountLimit: telemetry.DefaultMaxEvents,
			LinkCountLimit: 128, AttributePerEventCountLimit: 128, AttributePerLinkCountLimit: 128}))
		ms, err := telemetry.NewMetrics(nil)
		if err != nil {
			return err
		}
		cfg := gateway.Config{Upstreams: []string{upstream}, TracerProvider: tp, MeterProvider: ms.Provider}
		if variant == "gateway-events-off" {
			cfg.TokenEvents.Mode = gateway.TokenEventsOff
		}
		gw, err := gateway.New(cfg)
		if err != nil {
			return err
		}
		proxy = gw
		shutdown = func() {
			_ = gw.Shutdown(context.Background())
			_ = tp.Shutdown(context.Background())
		}
	default:
		return fmt.Errorf("unknown proxy variant %q", variant)
	}
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.HandleFunc("/__bench/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
			runtime.GC()
		}
		_ = json.NewEncoder(w).Encode(readStats())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin)) // the parent closes stdin to stop us
	_ = srv.Close()
	shutdown()
	return nil
}

func readStats() childStats {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return childStats{
		CPU:        time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		Mallocs:    ms.Mallocs,
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		Goroutines: runtime.NumGoroutine(),
	}
}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

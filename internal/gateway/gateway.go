// Package gateway is tokentrace's proxy: a transparent reverse proxy for
// Ollama and OpenAI-compatible servers that measures every inference request
// as docs/METRICS.md defines, with a span and metrics per request.
//
// It is composed of http.Handlers: the instrumenting handler reads the
// request and owns the span; a router picks the upstream pool (by model);
// oxy's round robin picks the upstream; oxy's forwarder copies the exchange,
// flushing every chunk, while a tap on the response body feeds the stream
// parser (internal/stream). Nothing is global: providers come in Config.
package gateway

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vulcand/oxy/v2/forward"
	"github.com/vulcand/oxy/v2/roundrobin"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// Gateway is the instrumented proxy. Serve it with any http.Server; call
// Shutdown to drain it.
type Gateway struct {
	cfg       Config
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	inst      *telemetry.Instruments
	models    *boundedValues
	scenarios *boundedValues
	handler   http.Handler
	pools     []*pool
	providers map[string]string // upstream scheme://host → gen_ai.provider.name

	active   atomic.Int64
	draining atomic.Bool
	abort    context.Context // canceled when a drain runs out of time
	abortFn  context.CancelFunc
	shutOnce sync.Once
	closeIdl func()
}

// pool is a set of upstreams served round robin.
type pool struct {
	name string // "" for the default pool, else the model routed to it
	urls []string
	rr   *roundrobin.RoundRobin
}

// New builds a Gateway from cfg.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	g := &Gateway{
		cfg:       cfg,
		prop:      cfg.Propagator,
		models:    newBoundedValues(cfg.MaxModels),
		scenarios: newBoundedValues(cfg.MaxScenarios),
	}
	g.providers = make(map[string]string, len(cfg.Providers))
	for u, name := range cfg.Providers {
		pu, err := parseUpstream(u)
		if err != nil {
			return nil, fmt.Errorf("gateway config: Providers: %w", err)
		}
		g.providers[pu.Scheme+"://"+pu.Host] = name
	}
	if g.prop == nil {
		g.prop = telemetry.Propagator()
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	g.tracer = tp.Tracer(telemetry.ScopeName)
	mp := cfg.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	inst, err := telemetry.NewInstruments(mp)
	if err != nil {
		return nil, fmt.Errorf("make gateway instruments: %w", err)
	}
	g.inst = inst
	g.abort, g.abortFn = context.WithCancel(context.Background())

	base := cfg.Transport
	if base == nil {
		t := newTransport(cfg)
		base, g.closeIdl = t, t.CloseIdleConnections
	}
	fwd := forward.New(false)
	fwd.Transport = &clientTracing{base: base, tracer: g.tracer, prop: g.prop}
	fwd.FlushInterval = -1 // write every chunk to the client as it arrives
	fwd.ModifyResponse = g.tapResponse
	fwd.ErrorHandler = g.handleUpstreamError
	fwd.BufferPool = bufferPool{}
	fwd.ErrorLog = cfg.ErrorLog
	if fwd.ErrorLog == nil {
		fwd.ErrorLog = log.New(io.Discard, "", 0)
	}

	def, err := g.newPool("", cfg.Upstreams, fwd)
	if err != nil {
		return nil, err
	}
	routes := map[string]*pool{}
	for model, urls := range cfg.RouteByModel {
		if routes[model], err = g.newPool(model, urls, fwd); err != nil {
			return nil, err
		}
	}
	g.handler = &router{def: def, byModel: routes}
	return g, nil
}

func newTransport(cfg Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // the upstream is reached directly, never through HTTP_PROXY
		DialContext:           d.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.UpstreamTimeout,
		ExpectContinueTimeout: time.Second,
		// Bodies pass through as the upstream encoded them.
		DisableCompression: true,
		WriteBufferSize:    4 << 10,
		ReadBufferSize:     4 << 10,
	}
}

func (g *Gateway) newPool(name string, urls []string, next http.Handler) (*pool, error) {
	rr, err := roundrobin.New(next, roundrobin.ErrorHandler(errorHandlerFunc(g.handleUpstreamError)),
		roundrobin.RoundRobinRequestRewriteListener(g.upstreamChosen))
	if err != nil {
		return nil, fmt.Errorf("make round robin: %w", err)
	}
	for _, s := range urls {
		u, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		if err := rr.UpsertServer(u); err != nil {
			return nil, fmt.Errorf("add upstream %s: %w", s, err)
		}
	}
	p := &pool{name: name, urls: urls, rr: rr}
	g.pools = append(g.pools, p)
	return p, nil
}

// ServeHTTP forwards one request, measuring it when it is an inference.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.active.Add(1)
	defer g.active.Add(-1)
	if g.draining.Load() {
		writeAPIError(w, r.URL.Path, http.StatusServiceUnavailable, "the proxy is shutting down")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(g.abort, cancel)
	defer stop()

	// Suppress the headers net/http would add on its own (a sniffed
	// Content-Type, Date): the client sees the upstream's headers only.
	h := w.Header()
	h["Content-Type"], h["Date"] = nil, nil

	if r.ContentLength > 0 {
		r.Body = &declaredBody{r: io.LimitReader(r.Body, r.ContentLength)}
	}
	scenario := ""
	if vs := r.Header.Values(g.cfg.ScenarioHeader); len(vs) > 0 {
		scenario = boundScenario(vs[0])
		r.Header.Del(g.cfg.ScenarioHeader)
	}
	g.instrument(w, r.WithContext(ctx), scenario)
}

// Shutdown refuses new requests and waits for those in flight to finish.
// When ctx ends first, the requests still running are canceled (their
// upstream calls too) and Shutdown returns ctx's error once they unwind.
// It does not stop the listeners (http.Server.Shutdown does) or the
// providers (their owner does). It is safe to call more than once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.draining.Store(true)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
	for g.active.Load() > 0 {
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		err = fmt.Errorf("drain in-flight requests: %w", ctx.Err())
		g.abortFn()
		deadline := time.Now().Add(time.Second)
		for g.active.Load() > 0 && time.Now().Before(deadline) {
			<-tick.C
		}
		break
	}
	g.shutOnce.Do(func() {
		g.abortFn()
		if g.closeIdl != nil {
			g.closeIdl()
		}
	})
	return err
}

// Active is the number of requests being served.
func (g *Gateway) Active() int64 { return g.active.Load() }

// declaredBody ends a request body at its declared length by itself and
// leaves closing to the server. Without it, net/http's transport, after
// copying Content-Length bytes, reads once more to check for extra bytes;
// when the server has meanwhile closed the unfinished body (it does once the
// response starts), that read fails, the transport closes the upstream
// connection, and a streamed response is cut short. Seen with a plain
// httputil.ReverseProxy on Go 1.26: about one request in a hundred whose
// upstream answers as soon as it has read the body.
type declaredBody struct{ r io.Reader }

func (b *declaredBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *declaredBody) Close() error               { return nil }

// bufferPool lends the forwarder its copy buffers; a buffer is held only
// while a body is copied.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBuffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

var _ httputil.BufferPool = bufferPool{}

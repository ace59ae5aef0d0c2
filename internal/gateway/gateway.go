// Package gateway is tokentrace's proxy: a transparent reverse proxy for
// Ollama and OpenAI-compatible servers that measures every inference request
// as docs/METRICS.md defines, with a span and metrics per request.
//
// It is composed of http.Handlers: the instrumenting handler reads the
// request and owns the span; a router picks the upstream pool (by model);
// the pool's forwarder copies the exchange (an httputil.ReverseProxy
// copies other requests), flushing every chunk, through the pool as its
// transport, which picks the upstream with the fewest requests in flight,
// ejects one that refuses connections and retries elsewhere a request that
// reached none; a tap on the response body (decoding a copy when it is
// compressed) feeds the stream parser (internal/stream). Nothing is
// global: providers come in Config.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

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
	labelSets labelSets // the metric label sets requests record with
	handler   http.Handler
	pools     []*pool
	providers map[string]string // upstream scheme://host → gen_ai.provider.name

	active     atomic.Int64
	draining   atomic.Bool
	abort      context.Context // canceled when a drain runs out of time
	abortFn    context.CancelFunc
	errorLog   *log.Logger
	shutOnce   sync.Once
	closeIdl   func()
	unregister func() error // the per-upstream gauges' callback
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
	g.errorLog = cfg.ErrorLog
	if g.errorLog == nil {
		g.errorLog = log.New(io.Discard, "", 0)
	}

	base := cfg.Transport
	if base == nil {
		t := newTransport(cfg)
		base, g.closeIdl = t, t.CloseIdleConnections
	}
	traced := &clientTracing{base: base, tracer: g.tracer, prop: g.prop}
	def, err := g.newPool("", cfg.Upstreams, traced)
	if err != nil {
		return nil, err
	}
	routes := map[string]*pool{}
	for model, urls := range cfg.RouteByModel {
		if routes[model], err = g.newPool(model, urls, traced); err != nil {
			return nil, err
		}
	}
	g.handler = &router{def: def, byModel: routes}
	if g.unregister, err = g.observeUpstreams(mp); err != nil {
		return nil, err
	}
	return g, nil
}

// newTransport is the transport to upstreams: streamTransport for plain
// HTTP, over net/http's for the rest, both with the same settings.
func newTransport(cfg Config) *streamTransport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	next := &http.Transport{
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
	return &streamTransport{next: next, dial: d.DialContext, headerTimeout: next.ResponseHeaderTimeout,
		idleTimeout: next.IdleConnTimeout, maxIdle: next.MaxIdleConnsPerHost}
}

// newPool makes a pool of upstreams and the two forwarders that use it as
// their transport: the forwarder of inference exchanges (forward.go), and
// an httputil.ReverseProxy for every other request, writing every chunk to
// the client as it arrives.
func (g *Gateway) newPool(name string, urls []string, next http.RoundTripper) (*pool, error) {
	p := &pool{name: name, next: next, backoff: g.cfg.EjectBackoff, chosen: g.upstreamChosen}
	for _, s := range urls {
		u, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		host, port := splitHostPort(u)
		up := &upstream{url: u, host: host, port: port, provider: g.cfg.ProviderName}
		if name, ok := g.providers[u.Scheme+"://"+u.Host]; ok {
			up.provider = name
		}
		p.ups = append(p.ups, up)
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      p,
		FlushInterval:  -1, // write every chunk to the client as it arrives
		ModifyResponse: g.tapResponse,
		ErrorHandler:   g.handleUpstreamError,
		BufferPool:     bufferPool{},
		ErrorLog:       g.errorLog,
	}
	p.stream = &forwarder{g: g, p: p}
	g.pools = append(g.pools, p)
	return p, nil
}

// rewrite prepares the upstream request; the pool fills in the upstream.
// X-Forwarded-* and Forwarded sent by the client are dropped (net/http
// drops Forwarded and X-Forwarded-For/-Host/-Proto before this runs) and
// set afresh, unless TrustForwarded says the client is a proxy to believe.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In.Header, pr.Out.Header
	if g.cfg.TrustForwarded {
		for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v, ok := in[k]; ok {
				out[k] = v
			}
		}
		host, proto := out.Get("X-Forwarded-Host"), out.Get("X-Forwarded-Proto")
		pr.SetXForwarded() // appends the client's address to X-Forwarded-For
		if host != "" {
			out.Set("X-Forwarded-Host", host)
		}
		if proto != "" {
			out.Set("X-Forwarded-Proto", proto)
		}
	} else {
		for _, k := range untrustedForwarded {
			out.Del(k)
		}
		pr.SetXForwarded()
	}
	pr.Out.Host = "" // the upstream's own host name, as the pool sets it
}

// untrustedForwarded are forwarding headers net/http leaves for the proxy to judge.
var untrustedForwarded = []string{"X-Forwarded-Port", "X-Forwarded-Server", "X-Real-Ip"}

// ServeHTTP forwards one request, measuring it when it is an inference.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.active.Add(1)
	defer g.active.Add(-1)
	if g.draining.Load() {
		writeAPIError(w, r.URL.Path, http.StatusServiceUnavailable, "the proxy is shutting down")
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	ctx = context.WithValue(ctx, flightKey{}, &flight{cancel: cancel})
	stop := context.AfterFunc(g.abort, func() { cancel(errDrainTimeout) })
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
	g.instrument(ctx, w, r, scenario)
}

var errDrainTimeout = errors.New("the proxy's drain timed out")

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
		if g.unregister != nil {
			_ = g.unregister()
		}
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
//
// It also notes whether any byte was read, so a request whose upstream
// could not be connected to can be sent to another with the same body.
type declaredBody struct {
	r    io.Reader
	read bool
}

func (b *declaredBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.read = true
	}
	return n, err
}

func (b *declaredBody) Close() error { return nil }

// bufferPool lends the forwarder its copy buffers; a buffer is held only
// while a body is copied.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBuffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

var _ httputil.BufferPool = bufferPool{}

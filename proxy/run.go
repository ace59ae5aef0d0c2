package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/gateway"
	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// options are the command line.
type options struct {
	listen, admin   string
	upstreams       multiFlag
	routes          multiFlag
	providers       multiFlag
	provider        string
	maxBody         int64
	tokenEvents     string
	tokenEventCap   int
	captureContent  bool
	scenarioHeader  string
	maxModels       int
	upstreamTimeout time.Duration
	streamIdle      time.Duration
	clientIdle      time.Duration
	clientHeader    time.Duration
	ejectBackoff    time.Duration
	trustForwarded  bool
	drainTimeout    time.Duration
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:11435", "address the proxy serves clients on")
	fs.StringVar(&o.admin, "admin-listen", "127.0.0.1:9464", "address of /metrics, /healthz and /readyz")
	fs.Var(&o.upstreams, "upstream", "upstream base URL; repeat to balance over several, fewest in-flight requests first (default http://127.0.0.1:11434)")
	fs.Var(&o.routes, "route", "MODEL=URL: send inference requests for MODEL to URL (repeatable)")
	fs.Var(&o.providers, "upstream-provider", "URL=NAME: gen_ai.provider.name of one upstream (repeatable)")
	fs.StringVar(&o.provider, "provider", gateway.DefaultProviderName, "gen_ai.provider.name of the upstreams")
	fs.Int64Var(&o.maxBody, "max-body", gateway.DefaultMaxBodyBytes, "largest inference request body read, bytes (larger: 413)")
	fs.StringVar(&o.tokenEvents, "token-events", "all", "per-token span events: off, all or every:N")
	fs.IntVar(&o.tokenEventCap, "token-event-cap", gateway.DefaultTokenEventCap, "most token events on one span")
	fs.BoolVar(&o.captureContent, "capture-content", false, "record prompts and completions on spans (private data!)")
	fs.StringVar(&o.scenarioHeader, "scenario-header", gateway.DefaultScenarioHeader, "request header naming the scenario (not forwarded)")
	fs.IntVar(&o.maxModels, "max-models", gateway.DefaultMaxModels, "distinct model label values before overflow to _other")
	fs.DurationVar(&o.upstreamTimeout, "upstream-timeout", gateway.DefaultUpstreamTimeout, "wait for an upstream's response headers (then 504)")
	fs.DurationVar(&o.streamIdle, "stream-idle-timeout", gateway.DefaultStreamIdle, "longest wait for the next upstream byte once a response started (then the stream is cut, error.type=timeout)")
	fs.DurationVar(&o.clientIdle, "client-idle-timeout", 2*time.Minute, "close a client's keep-alive connection after this long without a request")
	fs.DurationVar(&o.clientHeader, "client-header-timeout", 30*time.Second, "longest a client may take to send a request's headers")
	fs.DurationVar(&o.ejectBackoff, "eject-backoff", gateway.DefaultEjectBackoff, "an upstream that refuses connections gets no requests this long (doubling while it keeps refusing)")
	fs.BoolVar(&o.trustForwarded, "trust-forwarded", false, "keep the Forwarded and X-Forwarded-* headers clients send (only behind a proxy you trust)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, wait this long for in-flight streams")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if len(o.upstreams) == 0 {
		o.upstreams = multiFlag{"http://127.0.0.1:11434"}
	}
	for name, d := range map[string]time.Duration{"client-idle-timeout": o.clientIdle, "client-header-timeout": o.clientHeader} {
		if d <= 0 {
			return o, fmt.Errorf("--%s %v: must be positive", name, d)
		}
	}
	return o, nil
}

func (o options) gatewayConfig() (gateway.Config, error) {
	te, err := gateway.ParseTokenEvents(o.tokenEvents)
	if err != nil {
		return gateway.Config{}, fmt.Errorf("--token-events: %w", err)
	}
	te.Cap = o.tokenEventCap
	cfg := gateway.Config{
		Upstreams:         o.upstreams,
		ProviderName:      o.provider,
		MaxBodyBytes:      o.maxBody,
		TokenEvents:       te,
		CaptureContent:    o.captureContent,
		ScenarioHeader:    o.scenarioHeader,
		MaxModels:         o.maxModels,
		UpstreamTimeout:   o.upstreamTimeout,
		StreamIdleTimeout: o.streamIdle,
		EjectBackoff:      o.ejectBackoff,
		TrustForwarded:    o.trustForwarded,
	}
	pairs := func(flagName string, vals []string) (map[string]string, error) {
		out := map[string]string{}
		for _, v := range vals {
			k, val, ok := strings.Cut(v, "=")
			if !ok || k == "" || val == "" {
				return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flagName, v)
			}
			out[k] = val
		}
		return out, nil
	}
	routes, err := pairs("route", o.routes)
	if err != nil {
		return cfg, err
	}
	if len(routes) > 0 {
		cfg.RouteByModel = map[string][]string{}
		for _, v := range o.routes {
			model, u, _ := strings.Cut(v, "=")
			cfg.RouteByModel[model] = append(cfg.RouteByModel[model], u)
		}
	}
	if cfg.Providers, err = pairs("upstream-provider", o.providers); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// run serves until a signal arrives on stop, then drains. It returns the exit code.
func run(args []string, getenv func(string) string, stderr io.Writer, stop <-chan os.Signal) int {
	logger := log.New(stderr, "proxy: ", log.LstdFlags)
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		logger.Print(err)
		return 2
	}
	cfg, err := o.gatewayConfig()
	if err != nil {
		logger.Print(err)
		return 2
	}
	tcfg, err := telemetry.TraceConfigFromEnv(getenv, "tokentrace-proxy")
	if err != nil {
		logger.Printf("OpenTelemetry environment: %v", err)
		return 2
	}
	// The span must hold the token events asked for, and the first_token event.
	if need := cfg.TokenEvents.Cap + 1; need > max(tcfg.MaxEvents, telemetry.DefaultMaxEvents) {
		tcfg.MaxEvents = need
	}
	if err := serve(o, cfg, tcfg, logger, stop); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

func serve(o options, cfg gateway.Config, tcfg telemetry.TraceConfig, logger *log.Logger, stop <-chan os.Signal) error {
	ctx := context.Background()
	tracing, err := telemetry.NewTracing(ctx, tcfg)
	if err != nil {
		return fmt.Errorf("set up tracing: %w", err)
	}
	metrics, err := telemetry.NewMetrics(tracing.Resource) // the same service.name as the spans
	if err != nil {
		return fmt.Errorf("set up metrics: %w", err)
	}
	if tracing.Processor != nil {
		if _, err := telemetry.RegisterSpanCounters(metrics.Provider, tracing.Processor); err != nil {
			return err
		}
	}
	cfg.TracerProvider, cfg.MeterProvider = tracing.Provider, metrics.Provider
	cfg.TokenEvents.Packed = true // tracing's exporters are the only span processor
	cfg.Propagator = telemetry.Propagator()
	cfg.ErrorLog = logger
	gw, err := gateway.New(cfg)
	if err != nil {
		return fmt.Errorf("set up the gateway: %w", err)
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on --listen %s: %w", o.listen, err)
	}
	aln, err := net.Listen("tcp", o.admin)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on --admin-listen %s: %w", o.admin, err)
	}
	// No ReadTimeout or WriteTimeout: a request body and a streamed answer
	// may take minutes. Idle keep-alive connections and slow headers are bounded.
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: o.clientHeader, IdleTimeout: o.clientIdle, ErrorLog: logger}
	adm := &http.Server{Handler: gw.AdminHandler(metrics.Handler), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: o.clientIdle, ErrorLog: logger}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- adm.Serve(aln) }()
	logger.Printf("serving on %s, admin on %s, upstreams %v", ln.Addr(), aln.Addr(), cfg.Upstreams)

	var serveErr error
	select {
	case s := <-stop:
		logger.Printf("%v: draining for up to %v", s, o.drainTimeout)
	case serveErr = <-errc:
		serveErr = fmt.Errorf("serve: %w", serveErr)
	}
	dctx, cancel := context.WithTimeout(ctx, o.drainTimeout)
	defer cancel()
	shutErr := make(chan error, 1)
	go func() { shutErr <- srv.Shutdown(dctx) }()
	if err := gw.Shutdown(dctx); err != nil {
		logger.Printf("drain: %v (streams still running were canceled)", err)
	}
	if err := <-shutErr; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Printf("stop the proxy listener: %v", err)
	}
	_ = srv.Close()
	_ = adm.Close()
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if err := tracing.Shutdown(fctx); err != nil {
		logger.Printf("flush spans: %v", err)
	}
	if err := metrics.Provider.Shutdown(fctx); err != nil {
		logger.Printf("stop metrics: %v", err)
	}
	return serveErr
}

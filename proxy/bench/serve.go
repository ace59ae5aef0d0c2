package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tokentrace/tokentrace/internal/gateway"
	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// childProc is a proxy in its own process: this binary with -serve (a Go
// proxy, stopped by closing its stdin) or nginx (stopped by SIGQUIT).
type childProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser // nil for nginx
	base    string
	goStats bool // answers /__bench/stats
	workers bool // its CPU time includes its child processes'
	done    chan error
	perf    *perfRecord // attached to it (-perf); stopped first
}

func (c *childProc) pid() int { return c.cmd.Process.Pid }

// startChild runs this binary as the proxy variant; it dies with us.
func startChild(variant, upstream, otlp string, o options) (*childProc, error) {
	args := []string{"-serve", variant, "-upstream", upstream, "-otlp", otlp}
	for flag, prefix := range map[string]string{"-cpuprofile": o.cpuProfile, "-memprofile": o.memProfile, "-trace": o.tracePrefix} {
		if prefix != "" {
			args = append(args, flag, prefix+"."+variant)
		}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s proxy: %w", variant, err)
	}
	c := &childProc{cmd: cmd, stdin: stdin, goStats: true, done: make(chan error, 1)}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go func() { c.done <- cmd.Wait() }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		<-c.done
		return nil, fmt.Errorf("read %s proxy address from %q: %v", variant, line, err)
	}
	c.base = "http://" + addr
	if o.perfPrefix != "" {
		if c.perf, err = startPerf(c.pid(), o.perfPrefix+"."+variant); err != nil {
			_ = c.stop()
			return nil, fmt.Errorf("%s proxy: %w", variant, err)
		}
	}
	return c, nil
}

// perfRecord is perf record attached to a proxy child (-perf).
type perfRecord struct {
	cmd  *exec.Cmd
	out  strings.Builder // what perf printed; read once it is done
	done chan error
}

// startPerf records process pid's stacks, kernel and user, to file until
// stop; it is interrupted (and so writes its file) if we die first.
func startPerf(pid int, file string) (*perfRecord, error) {
	p := &perfRecord{done: make(chan error, 1)}
	p.cmd = exec.Command("perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", file)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start perf record: %w", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	// perf prints nothing until it stops; one that cannot attach stops at once.
	select {
	case err := <-p.done:
		return nil, fmt.Errorf("perf record -p %d stopped at once (%v): %s", pid, err, strings.TrimSpace(p.out.String()))
	case <-time.After(500 * time.Millisecond):
	}
	return p, nil
}

// stop interrupts perf, which then writes its file, and waits for it.
func (p *perfRecord) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	err, killed := waitOrKill(p.cmd.Process, p.done, time.Minute)
	if killed {
		return fmt.Errorf("perf record did not stop in a minute; killed, its file is incomplete")
	}
	// perf writes its file on SIGINT, then ends by it.
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("perf record: %w: %s", err, strings.TrimSpace(p.out.String()))
	}
	return nil
}

// waitOrKill waits up to limit for a process to end, done being where its
// Wait reports; past limit it kills the process and waits for that. It
// returns what done gave, and whether the limit passed.
func waitOrKill[T any](p *os.Process, done <-chan T, limit time.Duration) (T, bool) {
	select {
	case v := <-done:
		return v, false
	case <-time.After(limit):
		_ = p.Kill()
		return <-done, true
	}
}

func (c *childProc) stop() error {
	var perfErr error
	if c.perf != nil {
		perfErr, c.perf = c.perf.stop(), nil
	}
	if c.stdin != nil {
		_ = c.stdin.Close()
	} else {
		_ = c.cmd.Process.Signal(syscall.SIGQUIT) // nginx: graceful shutdown
	}
	err, killed := waitOrKill(c.cmd.Process, c.done, 20*time.Second)
	switch {
	case killed:
		return errors.Join(errors.New("proxy child did not stop; killed"), perfErr)
	case err != nil:
		return errors.Join(fmt.Errorf("proxy child: %w", err), perfErr)
	}
	return perfErr
}

// childStats is what a proxy process reports about itself.
type childStats struct {
	CPU        time.Duration // user + system, whole process
	Mallocs    uint64
	HeapInuse  uint64
	StackInuse uint64
	Goroutines int
	// SpansDropped are the spans the batch processor dropped (queue full
	// or export failed); 0 for the bare proxy.
	SpansDropped uint64
}

// serveProxy is the child process: it serves one proxy variant in front of
// o.upstream until stdin closes, and answers /__bench/stats.
func serveProxy(o options) error {
	variant, upstream := o.serve, o.upstream
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if o.tracePrefix != "" {
		f, err := os.Create(o.tracePrefix)
		if err != nil {
			return fmt.Errorf("create execution trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("start execution trace: %w", err)
		}
		defer trace.Stop()
	}
	if o.memProfile != "" {
		defer func() {
			if err := writeAllocs(o.memProfile); err != nil {
				fmt.Fprintln(os.Stderr, "bench child:", err)
			}
		}()
	}
	up, err := url.Parse(upstream)
	if err != nil {
		return fmt.Errorf("upstream %q: %w", upstream, err)
	}
	var proxy http.Handler
	var shutdown func()
	switch variant {
	case "bare", "bare-again":
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
		// The telemetry the proxy command sets up: spans exported over
		// OTLP/gRPC to the collector at o.otlp through the batch processor,
		// metrics to the Prometheus reader. Without a collector, spans are
		// built, queued and batched alike and handed to a discarding exporter.
		defer gateway.TuneGC()() // as the proxy command runs
		tp, res, err := benchTracing(o.otlp)
		if err != nil {
			return err
		}
		ms, err := telemetry.NewMetrics(res)
		if err != nil {
			return err
		}
		cfg := gateway.Config{Upstreams: []string{upstream}, TracerProvider: tp, MeterProvider: ms.Provider,
			Propagator: telemetry.Propagator(), TokenEvents: gateway.TokenEvents{Packed: true}} // as the proxy command
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
	// As the proxy command serves (proxy/run.go): no read or write timeout.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
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
		CPU:          time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		Mallocs:      ms.Mallocs,
		HeapInuse:    ms.HeapInuse,
		StackInuse:   ms.StackInuse,
		Goroutines:   runtime.NumGoroutine(),
		SpansDropped: spansDropped(),
	}
}

// benchTracing is the proxy command's tracer provider, exporting to the
// collector at otlp; with otlp empty, to a discarding exporter.
// processor is the gateway child's batch processor, for its drop count.
var processor atomic.Pointer[telemetry.BatchProcessor]

func spansDropped() uint64 {
	if p := processor.Load(); p != nil {
		return p.Dropped()
	}
	return 0
}

func benchTracing(otlp string) (*sdktrace.TracerProvider, *resource.Resource, error) {
	cfg := telemetry.TraceConfig{ServiceName: "tokentrace-proxy", Endpoint: otlp, Insecure: true}
	if otlp == "" {
		cfg.Exporter = telemetry.DiscardSpans{}
	}
	t, err := telemetry.NewTracing(context.Background(), cfg)
	if err != nil {
		return nil, nil, err
	}
	processor.Store(t.Processor)
	return t.Provider, t.Resource, nil
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create allocation profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("write allocation profile: %w", err)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

func init() {
	commands["simulate"] = command{
		Summary: "serve a simulated Ollama (no model, no GPU) with ground-truth chunk times",
		Run:     runSimulate,
	}
}

// simulateOptions are the flags of `supervisor simulate`.
type simulateOptions struct {
	listen      string
	cfg         simulator.Config
	memoryLimit string
	groundTruth string
	exitOnOOM   bool
	keepAlive   string
}

// simulateEnv lists the variables of `ollama serve` the simulator honours;
// flags given on the command line win over them.
var simulateEnv = []string{"OLLAMA_HOST", "OLLAMA_NUM_PARALLEL", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_MAX_QUEUE", "OLLAMA_KEEP_ALIVE"}

func runSimulate(args []string) error {
	opts, err := parseSimulate(args, os.Getenv)
	if err != nil {
		return err
	}
	return serveSimulator(context.Background(), opts, os.Stderr, nil)
}

func parseSimulate(args []string, getenv func(string) string) (simulateOptions, error) {
	var o simulateOptions
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: supervisor simulate [flags]\n\nServes Ollama's API like `ollama serve`, "+
			"honouring %s.\nProfiles: %s.\n\nFlags:\n", strings.Join(simulateEnv, ", "), strings.Join(simulator.ProfileNames(), ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", "", "address to listen on (default $OLLAMA_HOST, else 127.0.0.1:11434)")
	fs.StringVar(&o.cfg.Profile, "profile", simulator.DefaultProfile, "model and machine to simulate: a built-in profile or a profile file (supervisor calibrate writes one)")
	fs.StringVar(&o.cfg.Model, "model", "", "model name to serve (default: the profile's)")
	fs.IntVar(&o.cfg.Parallel, "parallel", 0, "parallel slots (default $OLLAMA_NUM_PARALLEL, else 4)")
	fs.IntVar(&o.cfg.MaxQueue, "max-queue", 0, "requests that may wait for a slot (default $OLLAMA_MAX_QUEUE, else 512)")
	fs.IntVar(&o.cfg.ContextLength, "ctx", 0, "context tokens per slot (default $OLLAMA_CONTEXT_LENGTH, else the profile's)")
	fs.Float64Var(&o.cfg.TimeScale, "time-scale", 1, "multiply every simulated duration (0.1 = ten times faster)")
	fs.StringVar(&o.memoryLimit, "memory-limit", "", "fail the model load when weights + KV caches exceed this (e.g. 6GiB, 512MiB, bytes)")
	fs.BoolVar(&o.cfg.Allocate, "allocate", false, "really hold the model's memory (scaled weights + every slot's KV cache)")
	fs.Float64Var(&o.cfg.WeightsScale, "weights-scale", simulator.DefaultWeightsScale, "share of the weights --allocate holds")
	fs.StringVar(&o.groundTruth, "ground-truth", "", "write every chunk's send time to this JSONL file")
	fs.StringVar(&o.keepAlive, "keep-alive", "", "how long an idle model stays loaded: a duration or seconds, negative for ever, 0 to unload at once (default $OLLAMA_KEEP_ALIVE, else 5m)")
	fs.BoolVar(&o.cfg.NaturalStop, "natural-stop", false, "let num_predict/max_tokens only cap replies, which end at their natural length")
	fs.IntVar(&o.cfg.ThinkingTokens, "thinking-tokens", 0, "send the first N tokens of every reply as reasoning before the answer (a thinking model)")
	fs.BoolVar(&o.exitOnOOM, "exit-on-oom", false, "exit with status 1 when the model does not fit, like a runner killed for memory")
	applyProfile := profileOverrides(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, subcommand.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return o, subcommand.UsageError{Err: fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, env := range []struct {
		flag, name string
		dst        *int
	}{
		{"parallel", "OLLAMA_NUM_PARALLEL", &o.cfg.Parallel},
		{"max-queue", "OLLAMA_MAX_QUEUE", &o.cfg.MaxQueue},
		{"ctx", "OLLAMA_CONTEXT_LENGTH", &o.cfg.ContextLength},
	} {
		if v := getenv(env.name); v != "" && !set[env.flag] {
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return o, subcommand.UsageError{Err: fmt.Errorf("%s=%q: not a count: %w", env.name, v, err)}
			}
			*env.dst = int(n)
		}
	}
	if o.listen == "" {
		o.listen = ollamaHost(getenv("OLLAMA_HOST"))
	}
	if o.keepAlive == "" {
		o.keepAlive = getenv("OLLAMA_KEEP_ALIVE")
	}
	if o.keepAlive != "" {
		d, err := parseKeepAlive(o.keepAlive)
		if err != nil {
			return o, subcommand.UsageError{Err: fmt.Errorf("keep-alive: %w", err)}
		}
		o.cfg.KeepAlive = d
	}
	if o.memoryLimit != "" {
		n, err := parseBytes(o.memoryLimit)
		if err != nil {
			return o, subcommand.UsageError{Err: fmt.Errorf("--memory-limit: %w", err)}
		}
		o.cfg.MemoryLimit = n
	}
	if err := applyProfile(&o.cfg); err != nil {
		return o, subcommand.UsageError{Err: err}
	}
	if err := o.cfg.Validate(); err != nil {
		return o, subcommand.UsageError{Err: err}
	}
	return o, nil
}

// ollamaHost reads OLLAMA_HOST as `ollama serve` does: [scheme://]host[:port],
// default 127.0.0.1:11434.
func ollamaHost(s string) string {
	s = strings.TrimSpace(s)
	defaultPort := "11434"
	scheme, hostport, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		hostport = s
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	}
	hostport, _, _ = strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = "127.0.0.1", defaultPort
		if hostport != "" {
			host = strings.Trim(hostport, "[]")
		}
	}
	return net.JoinHostPort(host, port)
}

// parseBytes reads 6GiB, 512MiB, 4GB, 1000 (bytes).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (like 6GiB, 512MiB or a number of bytes)", s)
	}
	return int64(v * mult), nil
}

// serveSimulator serves until ctx ends or SIGINT/SIGTERM arrives, then shuts
// down gracefully. ready, when not nil, receives the bound address.
func serveSimulator(ctx context.Context, o simulateOptions, logw io.Writer, ready chan<- string) error {
	logger := slog.New(slog.NewTextHandler(logw, nil))
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := o.cfg
	cfg.Logger = logger
	oom := make(chan error, 1)
	if o.exitOnOOM {
		cfg.OnLoadFailure = func(err error) {
			select {
			case oom <- err:
			default:
			}
		}
	}
	if o.groundTruth != "" {
		f, err := os.Create(o.groundTruth)
		if err != nil {
			return fmt.Errorf("open the ground-truth log: %w", err)
		}
		defer f.Close()
		cfg.GroundTruth = f
	}
	sim, err := simulator.New(cfg)
	if err != nil {
		return subcommand.UsageError{Err: err}
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	p, c := sim.Profile(), sim.Config()
	logger.Info("Listening on "+ln.Addr().String()+" (simulator)", "profile", p.Name, "model", p.Model,
		"OLLAMA_NUM_PARALLEL", c.Parallel, "OLLAMA_MAX_QUEUE", c.MaxQueue, "OLLAMA_CONTEXT_LENGTH", c.ContextLength,
		"time_scale", c.TimeScale, "size", sim.Memory().Total(), "allocate", c.Allocate)
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	var result error
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case err := <-oom:
		result = fmt.Errorf("llama runner process has terminated: %w", err)
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	// Cut the streams in flight first (like Ollama's runner going away), then
	// let the HTTP server finish what it has written.
	sim.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	<-served
	return result
}

// parseKeepAlive reads OLLAMA_KEEP_ALIVE as Ollama does: a duration or a
// number of seconds; negative keeps the model loaded for ever; 0 unloads it
// as soon as it is idle (the simulator's Config keeps 0 for "default", so
// that is one nanosecond).
func parseKeepAlive(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 64)
		if nerr != nil {
			return 0, fmt.Errorf("%q is not a duration or a number of seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	switch {
	case d < 0:
		return -1, nil
	case d == 0:
		return time.Nanosecond, nil
	}
	return d, nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/gateway"
	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/stream"
	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// engineFlags are the flags that choose and start the engine, shared by
// run and cache-test.
type engineFlags struct {
	backend     string
	model       string
	ollamaBin   string
	cmd         string
	url         string
	api         string
	readyPath   string
	port        int
	simFlags    stringList
	readyWait   time.Duration
	loadWait    time.Duration
	otlpEnpoint string
}

func (f *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.backend, "backend", "ollama", "engine: ollama (`ollama serve`), sim (the built-in simulator), command (--cmd) or external (--url, not restarted)")
	fs.StringVar(&f.model, "model", "", "model to load and measure (default qwen2.5:7b-instruct; the simulator's own model for --backend sim)")
	fs.StringVar(&f.ollamaBin, "ollama-bin", "ollama", "the ollama program (--backend ollama)")
	fs.StringVar(&f.cmd, "cmd", "", "engine command line for --backend command, with {parallel}, {ctx} and {port}, e.g. 'llama-server -m m.gguf -np {parallel} -c {ctx} --port {port}'")
	fs.StringVar(&f.url, "url", "", "the engine's URL for --backend external")
	fs.StringVar(&f.api, "api", "", "wire API the load uses: ollama, openai, responses or anthropic (default ollama; openai for command and external)")
	fs.StringVar(&f.readyPath, "ready-path", "", "path polled until the engine answers 200 (default /api/version for --api ollama, /v1/models for the others, /health for command)")
	fs.IntVar(&f.port, "port", 0, "loopback port for the engine (default: a free one)")
	fs.Var(&f.simFlags, "sim-flag", "flag passed to `supervisor simulate` (repeatable), e.g. --sim-flag=-time-scale=0.1")
	fs.DurationVar(&f.readyWait, "ready-timeout", 2*time.Minute, "how long the engine may take to answer after a start")
	fs.DurationVar(&f.loadWait, "load-timeout", 10*time.Minute, "how long the model's first load may take")
	fs.StringVar(&f.otlpEnpoint, "otlp-endpoint", "", "OTLP/gRPC endpoint (host:port) for the proxy's and load's traces; none when empty")
}

// validate checks the engine flags before anything starts and fills defaults.
func (f *engineFlags) validate() error {
	switch f.backend {
	case "ollama":
		path, err := exec.LookPath(f.ollamaBin)
		if err != nil {
			return fmt.Errorf("ollama binary %q not found: install Ollama (https://ollama.com/download) or pass --ollama-bin PATH: %w", f.ollamaBin, err)
		}
		f.ollamaBin = path
	case "sim":
		if f.model == "" {
			f.model = simulator.Profiles[simulator.DefaultProfile].Model
		}
	case "command":
		words, err := splitCommand(f.cmd)
		if err != nil {
			return fmt.Errorf("--cmd: %w", err)
		}
		if len(words) == 0 {
			return errors.New("--backend command needs --cmd")
		}
		if !strings.Contains(f.cmd, "{port}") {
			return errors.New("--cmd must contain {port}, where the engine is told to listen")
		}
		if !strings.Contains(f.cmd, "{parallel}") {
			return errors.New("--cmd must contain {parallel}, where the engine is told its parallel slots: without it every setting runs the same engine")
		}
		if _, err := exec.LookPath(words[0]); err != nil {
			return fmt.Errorf("--cmd: program %q not found: %w", words[0], err)
		}
	case "external":
		if f.url == "" {
			return errors.New("--backend external needs --url")
		}
	default:
		return fmt.Errorf("unknown --backend %q: want ollama, sim, command or external", f.backend)
	}
	if f.model == "" {
		f.model = "qwen2.5:7b-instruct"
	}
	if f.api == "" {
		f.api = "ollama"
		if f.backend == "command" || f.backend == "external" {
			f.api = "openai"
		}
	}
	if _, ok := stream.WireNamed(f.api); !ok {
		return fmt.Errorf("unknown --api %q: want one of %s", f.api, strings.Join(stream.WireNames(), ", "))
	}
	if f.readyPath == "" {
		// The API's own path: an OpenAI-compatible server (vLLM, llama.cpp,
		// SGLang) has no /api/version, but every one lists /v1/models.
		switch {
		case f.backend == "command":
			f.readyPath = "/health"
		case f.api != "ollama":
			f.readyPath = "/v1/models"
		default:
			f.readyPath = "/api/version"
		}
	}
	if f.backend != "external" {
		if f.port < 0 || f.port > 65535 {
			return fmt.Errorf("--port %d: not a port", f.port)
		}
		port, err := reservePort(f.port)
		if err != nil {
			return err
		}
		f.port = port
	}
	return nil
}

// reservePort checks that the port is free (or picks a free one for 0).
func reservePort(port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, fmt.Errorf("port %d is in use (pick another with --port): %w", port, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// commandLine is the engine's command line as the header records it.
func (f *engineFlags) commandLine() string {
	switch f.backend {
	case "ollama":
		return "OLLAMA_NUM_PARALLEL={parallel} OLLAMA_CONTEXT_LENGTH={ctx} OLLAMA_HOST=127.0.0.1:{port} " + f.ollamaBin + " serve"
	case "sim":
		return "OLLAMA_NUM_PARALLEL={parallel} OLLAMA_CONTEXT_LENGTH={ctx} OLLAMA_HOST=127.0.0.1:{port} supervisor simulate -allocate " + strings.Join(f.simFlags, " ")
	}
	return f.cmd
}

// engine builds the engine the flags describe; logDir receives its logs.
func (f *engineFlags) engine(logDir string) (matrix.Engine, string, error) {
	if f.backend == "external" {
		return &matrix.ExternalEngine{URL: f.url, Model: f.model, OllamaAPI: f.api == "ollama", ReadyPath: f.readyPath}, f.url, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find the supervisor's own binary: %w", err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", f.port)
	e := &matrix.ProcessEngine{URL: url, Model: f.model, ReadyPath: f.readyPath, LogDir: logDir,
		ReadyTimeout: f.readyWait, LoadTimeout: f.loadWait, StopTimeout: 10 * time.Second,
		Guard: []string{self, guardCommand}}
	ollamaEnv := func(s matrix.Setting) []string {
		return append(environWithout("OLLAMA_HOST", "OLLAMA_NUM_PARALLEL", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_KEEP_ALIVE", "OLLAMA_MAX_LOADED_MODELS"),
			fmt.Sprintf("OLLAMA_HOST=127.0.0.1:%d", f.port),
			fmt.Sprintf("OLLAMA_NUM_PARALLEL=%d", s.Parallel),
			fmt.Sprintf("OLLAMA_CONTEXT_LENGTH=%d", s.NumCtx),
			"OLLAMA_KEEP_ALIVE=24h", "OLLAMA_MAX_LOADED_MODELS=1")
	}
	switch f.backend {
	case "ollama":
		e.Name, e.Path, e.OllamaAPI, e.Env = "ollama", f.ollamaBin, true, ollamaEnv
		e.Args = func(matrix.Setting) []string { return []string{"serve"} }
	case "sim":
		e.Name, e.Path, e.OllamaAPI, e.Env = "simulator", self, true, ollamaEnv
		// -allocate: the simulator really holds its KV caches, so memory
		// sampling sees every slot as it would see Ollama's.
		e.Args = func(matrix.Setting) []string { return append([]string{"simulate", "-allocate"}, f.simFlags...) }
	case "command":
		words, _ := splitCommand(f.cmd)
		e.Name, e.Path, e.OllamaAPI = commandName(words[0]), words[0], f.api == "ollama"
		e.Env = func(matrix.Setting) []string { return os.Environ() }
		e.Args = func(s matrix.Setting) []string {
			r := strings.NewReplacer("{parallel}", strconv.Itoa(s.Parallel), "{ctx}", strconv.Itoa(s.NumCtx*s.Parallel),
				"{ctx_per_slot}", strconv.Itoa(s.NumCtx), "{port}", strconv.Itoa(f.port))
			out := make([]string, len(words)-1)
			for i, w := range words[1:] {
				out[i] = r.Replace(w)
			}
			return out
		}
	}
	return e, url, nil
}

func commandName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	return path
}

// environWithout is this process's environment without the named variables.
func environWithout(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// proxy is the in-process gateway in front of the engine.
type proxy struct {
	gw      *gateway.Gateway
	srv     *http.Server
	url     string
	tracing *telemetry.Tracing
	done    chan error
}

func startProxy(ctx context.Context, upstream, otlpEndpoint string) (*proxy, error) {
	p := &proxy{done: make(chan error, 1)}
	cfg := gateway.Config{Upstreams: []string{upstream}}
	if otlpEndpoint != "" {
		t, err := telemetry.NewTracing(ctx, telemetry.TraceConfig{Endpoint: otlpEndpoint, Insecure: true, ServiceName: "tokentrace-supervisor"})
		if err != nil {
			return nil, fmt.Errorf("set up tracing: %w", err)
		}
		p.tracing, cfg.TracerProvider = t, t.Provider
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("start the proxy: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the proxy: %w", err)
	}
	p.gw, p.srv, p.url = gw, &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}, "http://"+l.Addr().String()
	go func() { p.done <- p.srv.Serve(l) }()
	return p, nil
}

// tracerProvider is the one the load's CLIENT spans use, so one trace
// shows load → proxy → engine; nil without --otlp-endpoint.
func (p *proxy) tracerProvider() trace.TracerProvider {
	if p.tracing == nil {
		return nil
	}
	return p.tracing.Provider
}

func (p *proxy) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	p.gw.Shutdown(ctx)
	<-p.done
	if p.tracing != nil {
		p.tracing.Shutdown(ctx)
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// guardCommand is the hidden subcommand that kills an engine's process
// group when the supervisor dies (see backend.GuardMain).
const guardCommand = "engine-guard"

func init() {
	commands[guardCommand] = command{Summary: "(internal) kill an engine's process group when the supervisor dies",
		Run: func(args []string) error { return backend.GuardMain(args, os.Stdin) }}
}

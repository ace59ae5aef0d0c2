package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/memsample"
	"github.com/tokentrace/tokentrace/internal/studyreport"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

func init() {
	commands["run"] = command{Summary: "run the parallelism matrix: restart the engine per parallel setting, load it through the proxy, report", Run: runMain}
}

type runFlags struct {
	engineFlags
	concurrency string
	rates       string
	slo         string
	search      string
	maxConc     int
	nvidiaSMI   string
	maxRate     float64
	minRate     float64
	sizes       string
	parallel    string
	numCtx      string
	duration    time.Duration
	warmup      time.Duration
	maxTokens   int
	vary        bool
	out         string
	resume      string
	retryFailed bool
	timeout     time.Duration
}

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	fs.StringVar(&f.concurrency, "concurrency", "1,4", "concurrent users, comma-separated")
	fs.StringVar(&f.rates, "rates", "", "open-loop request rates (requests/s, Poisson arrivals), comma-separated; run after --concurrency")
	fs.StringVar(&f.slo, "slo", "", "latency limits goodput counts against, e.g. ttft_p95=2s,tpot_p95=100ms,e2e_p95=30s")
	fs.StringVar(&f.search, "search", "", "find each setting's capacity under --slo instead of running fixed loads: concurrency (closed loop) or rate (open loop, Poisson)")
	fs.IntVar(&f.maxConc, "max-concurrency", 64, "upper bound of --search concurrency")
	fs.Float64Var(&f.maxRate, "max-rate", 64, "upper bound of --search rate, requests/s")
	fs.Float64Var(&f.minRate, "min-rate", 0.5, "first rate --search rate probes, requests/s")
	fs.StringVar(&f.nvidiaSMI, "nvidia-smi", "auto", "nvidia-smi to sample the engine's GPU memory with: auto (found on PATH, else none), none, or a path")
	fs.StringVar(&f.sizes, "prompt-sizes", "small,medium,large,xlarge", "prompt sizes, comma-separated: "+strings.Join(loadgen.PromptSizes(), ", "))
	fs.StringVar(&f.parallel, "num-parallel", "1,2,4", "OLLAMA_NUM_PARALLEL values, comma-separated; the engine restarts for each")
	fs.StringVar(&f.numCtx, "num-ctx", "4096", "context length per slot (OLLAMA_CONTEXT_LENGTH), comma-separated")
	fs.DurationVar(&f.duration, "duration", 60*time.Second, "measured time per scenario")
	fs.DurationVar(&f.warmup, "warmup", 5*time.Second, "load before each scenario's measurement, not counted")
	fs.IntVar(&f.maxTokens, "max-tokens", 0, "cap on each answer's tokens (0: the model decides, as in the original study)")
	fs.BoolVar(&f.vary, "vary-prompts", false, "give every request a unique prefix so no prompt cache can hit")
	fs.StringVar(&f.out, "out", "", "run folder for results, logs, report and charts (default out/run-<time>)")
	fs.StringVar(&f.resume, "resume", "", "continue the run in this folder: only the scenarios it lacks run, with its saved settings; "+
		"--concurrency, --rates, --num-parallel, --num-ctx and --prompt-sizes add to them")
	fs.BoolVar(&f.retryFailed, "retry-failed", false, "with --resume: run again the scenarios recorded as oom, crash, failed or skipped")
	fs.DurationVar(&f.timeout, "request-timeout", 10*time.Minute, "bound on each request")
	if err := fs.Parse(args); err != nil {
		return subcommand.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return subcommand.UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	settings, store, err := f.prepare(set)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return f.execute(ctx, settings, store)
}

// prepare validates everything and opens the run folder; nothing has
// started when it fails. set names the flags given on the command line.
func (f *runFlags) prepare(set map[string]bool) (matrix.Settings, *matrix.Store, error) {
	s, err := f.matrixSettings()
	if err != nil {
		return s, nil, subcommand.UsageError{Err: err}
	}
	var saved matrix.Header
	if f.retryFailed && f.resume == "" {
		return s, nil, subcommand.UsageError{Err: errors.New("--retry-failed needs --resume DIR")}
	}
	if f.resume != "" {
		if saved, _, _, err = matrix.Load(f.resume); err != nil {
			return s, nil, subcommand.UsageError{Err: fmt.Errorf("--resume: %w", err)}
		}
		if s, err = f.resumeSettings(saved.Settings, s, set); err != nil {
			return s, nil, subcommand.UsageError{Err: fmt.Errorf("--resume %s: %w", f.resume, err)}
		}
		if added := describeAdded(saved.Settings, s); added != "" {
			fmt.Fprintf(os.Stderr, "resuming %s with %s added\n", f.resume, added)
		}
		f.out = f.resume
	}
	if err := f.engineFlags.validate(); err != nil {
		return s, nil, subcommand.UsageError{Err: err}
	}
	switch f.nvidiaSMI {
	case "auto":
		f.nvidiaSMI, _ = exec.LookPath("nvidia-smi") // none: no NVIDIA GPU to sample
	case "none":
		f.nvidiaSMI = ""
	}
	s.Backend, s.Model, s.API, s.URL, s.SimArgs = f.backend, f.model, f.api, f.url, f.simFlags
	s.Command = f.commandLine()
	if err := s.Validate(loadgen.PromptSizes()); err != nil {
		return s, nil, subcommand.UsageError{Err: err}
	}
	if f.out == "" {
		f.out = filepath.Join("out", "run-"+time.Now().Format("20060102-150405"))
	}
	if err := matrix.CheckWritable(f.out); err != nil {
		return s, nil, subcommand.UsageError{Err: err}
	}
	if f.resume != "" {
		saved.Settings = s // with the additions
		store, _, err := matrix.Resume(f.out, f.retryFailed)
		if err == nil {
			err = store.WriteHeader(saved)
		}
		return s, store, err
	}
	machine := matrix.ThisMachine(context.Background())
	if f.nvidiaSMI != "" {
		gpus, err := memsample.GPUs(context.Background(), f.nvidiaSMI)
		if err != nil {
			return s, nil, subcommand.UsageError{Err: fmt.Errorf("--nvidia-smi: %w", err)}
		}
		machine.GPUs = gpus
	}
	store, err := matrix.Create(f.out, matrix.Header{Started: time.Now().UTC(), Settings: s,
		Engine: matrix.EngineInfo{Name: f.backend, Restartable: f.backend != "external"}, Machine: machine})
	if err != nil {
		return s, nil, subcommand.UsageError{Err: err}
	}
	return s, store, nil
}

func (f *runFlags) execute(ctx context.Context, s matrix.Settings, store *matrix.Store) error {
	engine, engineURL, err := f.engine(store.Dir())
	if err != nil {
		return err
	}
	px, err := startProxy(ctx, engineURL, f.otlpEnpoint)
	if err != nil {
		return err
	}
	defer px.shutdown()
	fmt.Fprintf(os.Stderr, "run folder %s; engine %s at %s behind the proxy at %s\n", store.Dir(), f.backend, engineURL, px.url)

	headerDone := false
	eng := &headerUpdater{Engine: engine, update: func() {
		if headerDone {
			return
		}
		headerDone = true
		if err := updateHeader(store, engine, s); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
	}}
	progress := matrix.NewProgress(os.Stderr, isTerminal(os.Stderr), s.Duration.D()+s.Warmup.D())
	r := &matrix.Runner{Settings: s, Engine: eng, Store: store, Log: progress.Wrap(os.Stderr),
		Progress: progress, NvidiaSMI: f.nvidiaSMI, Load: matrix.LoadGenerator(px.url, s, f.timeout, px.tracerProvider())}
	err = r.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: the finished scenarios are in %s; run `supervisor run --resume %s` for the rest", store.Dir(), store.Dir())
	}
	if err != nil {
		return err
	}
	d, err := studyreport.Write(store.Dir())
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if len(d.Capacity) > 0 {
		fmt.Printf("\nReport: %s\n\n%s\n", filepath.Join(store.Dir(), studyreport.ReportFile), d.CapacityAnswer())
		return nil
	}
	fmt.Printf("\nReport: %s\n\n%s", filepath.Join(store.Dir(), studyreport.ReportFile), d.Summary())
	return nil
}

// headerUpdater rewrites the run header after the engine's first start,
// when its version and the model's details are known.
type headerUpdater struct {
	matrix.Engine
	update func()
}

func (h *headerUpdater) Start(ctx context.Context, s matrix.Setting) (matrix.SettingFacts, error) {
	facts, err := h.Engine.Start(ctx, s)
	if err == nil {
		h.update()
	}
	return facts, err
}

func updateHeader(store *matrix.Store, engine matrix.Engine, s matrix.Settings) error {
	h, _, _, err := matrix.Load(store.Dir())
	if err != nil {
		return err
	}
	switch e := engine.(type) {
	case *matrix.ProcessEngine:
		h.Engine.Name, h.Engine.Version, h.Model = e.Name, e.Version, e.ModelInfo
	case *matrix.ExternalEngine:
		h.Engine.Name, h.Engine.Version, h.Model = "external", e.Version, e.ModelInfo
	}
	if h.Model.Name == "" {
		h.Model.Name = s.Model
	}
	if e, ok := engine.(*matrix.ProcessEngine); ok && e.Env != nil {
		h.EngineEnv = matrix.OllamaEnv(e.Env(matrix.Setting{Parallel: s.NumParallel[0], NumCtx: s.NumCtx[0]}))
	}
	h.KVCacheType = matrix.KVCacheType(h.EngineEnv)
	h.KVBytesPerSlot = map[string]int64{}
	for _, c := range s.NumCtx {
		if kv, ok := matrix.KVBytesPerSlot(h.Model.ModelInfo, c, h.EngineEnv); ok {
			h.KVBytesPerSlot[strconv.Itoa(c)] = kv
		}
	}
	return store.WriteHeader(h)
}

// matrixSettings reads the matrix flags.
func (f *runFlags) matrixSettings() (matrix.Settings, error) {
	var s matrix.Settings
	var err error
	if f.concurrency != "" || f.rates == "" {
		if s.Concurrency, err = parseInts("concurrency", f.concurrency); err != nil {
			return s, err
		}
	}
	if s.NumParallel, err = parseInts("num-parallel", f.parallel); err != nil {
		return s, err
	}
	if s.NumCtx, err = parseInts("num-ctx", f.numCtx); err != nil {
		return s, err
	}
	if f.rates != "" {
		if s.Rates, err = parseRates(f.rates); err != nil {
			return s, err
		}
	}
	if s.SLO, err = matrix.ParseSLO(f.slo); err != nil {
		return s, fmt.Errorf("--slo: %w", err)
	}
	switch f.search {
	case matrix.SearchConcurrency:
		s.Search = matrix.Search{Kind: f.search, Max: float64(f.maxConc), Start: 1}
	case matrix.SearchRate:
		s.Search = matrix.Search{Kind: f.search, Max: f.maxRate, Start: f.minRate, Precision: 0.1}
	case "":
	default:
		return s, fmt.Errorf("--search %q: must be %s or %s", f.search, matrix.SearchConcurrency, matrix.SearchRate)
	}
	if s.Search.Kind != "" {
		s.Concurrency, s.Rates = nil, nil // the search picks the loads
	}
	s.PromptSizes = splitList(f.sizes)
	s.Duration, s.Warmup = matrix.Duration(f.duration), matrix.Duration(f.warmup)
	s.MaxTokens, s.VaryPrompts = f.maxTokens, f.vary
	return s, nil
}

func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a whole number", name, p)
		}
		if n <= 0 {
			return nil, fmt.Errorf("--%s: %d must be at least 1", name, n)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s: no values", name)
	}
	return out, nil
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, p := range splitList(s) {
		r, err := strconv.ParseFloat(p, 64)
		if err != nil || !(r > 0) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("--rates: %q is not a positive number of requests per second", p)
		}
		out = append(out, r)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

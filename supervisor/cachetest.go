package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/stats"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

func init() {
	commands["cache-test"] = command{Summary: "measure the prompt cache: cold start, warm prefix, cold prefix and the benefit", Run: cacheTestMain}
}

// cachePhase is one phase of the cache test: the TTFTs of its requests.
type cachePhase struct {
	Name     string        `json:"name"`
	What     string        `json:"what"`
	TTFTMs   []float64     `json:"ttft_ms"`
	Summary  stats.Summary `json:"summary"`
	Errors   int           `json:"errors"`
	LastErr  string        `json:"last_error,omitempty"`
	Requests int           `json:"requests"`
}

type cacheResult struct {
	Started   time.Time           `json:"started"`
	Settings  map[string]any      `json:"settings"`
	Facts     matrix.SettingFacts `json:"engine"`
	Phases    []cachePhase        `json:"phases"`
	BenefitMs float64             `json:"benefit_ms"`
	Speedup   float64             `json:"speedup"`
}

func cacheTestMain(args []string) error {
	fs := flag.NewFlagSet("cache-test", flag.ContinueOnError)
	var f engineFlags
	f.register(fs)
	iterations := fs.Int("iterations", 10, "requests in each of the warm-prefix and cold-prefix phases")
	size := fs.String("prompt-size", "large", "prompt size: "+strings.Join(loadgen.PromptSizes(), ", "))
	parallel := fs.Int("num-parallel", 1, "OLLAMA_NUM_PARALLEL of the engine")
	numCtx := fs.Int("num-ctx", 4096, "context per slot (OLLAMA_CONTEXT_LENGTH)")
	maxTokens := fs.Int("max-tokens", 16, "cap on each answer (the test measures time to first token)")
	out := fs.String("out", "", "folder for the engine's log and cache-test.json (default out/cache-<time>)")
	if err := fs.Parse(args); err != nil {
		return subcommand.UsageError{Err: err}
	}
	switch {
	case fs.NArg() > 0:
		return subcommand.UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	case *iterations <= 0:
		return subcommand.UsageError{Err: fmt.Errorf("--iterations %d: must be at least 1", *iterations)}
	case !slices.Contains(loadgen.PromptSizes(), *size):
		return subcommand.UsageError{Err: fmt.Errorf("unknown prompt size %q: want one of %v", *size, loadgen.PromptSizes())}
	case *parallel <= 0 || *numCtx <= 0 || *maxTokens < 0:
		return subcommand.UsageError{Err: errors.New("--num-parallel and --num-ctx must be positive, --max-tokens not negative")}
	}
	if err := f.validate(); err != nil {
		return subcommand.UsageError{Err: err}
	}
	if *out == "" {
		*out = filepath.Join("out", "cache-"+time.Now().Format("20060102-150405"))
	}
	if err := matrix.CheckWritable(*out); err != nil {
		return subcommand.UsageError{Err: err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	engine, engineURL, err := f.engine(*out)
	if err != nil {
		return err
	}
	if pe, ok := engine.(*matrix.ProcessEngine); ok {
		pe.Cold = true
	}
	defer engine.Stop(context.Background())
	res := cacheResult{Started: time.Now().UTC(), Settings: map[string]any{"backend": f.backend, "model": f.model,
		"prompt_size": *size, "iterations": *iterations, "num_parallel": *parallel, "num_ctx": *numCtx, "max_tokens": *maxTokens}}
	res.Facts, err = engine.Start(ctx, matrix.Setting{Parallel: *parallel, NumCtx: *numCtx})
	if err != nil {
		return fmt.Errorf("start the engine: %w", err)
	}
	px, err := startProxy(ctx, engineURL, f.otlpEnpoint)
	if err != nil {
		return err
	}
	defer px.shutdown()

	phase := func(name, what string, n int, vary bool) (cachePhase, error) {
		o := loadgen.DefaultOptions()
		o.URL, o.API, o.Model, o.MaxTokens, o.PromptSize = px.url, f.api, f.model, *maxTokens, *size
		o.Concurrency, o.Requests, o.VaryPrompts, o.Timeout = 1, uint64(n), vary, f.loadWait
		o.Name, o.Scenario, o.Abort = "cache-"+name, "cache-"+name, ctx.Done()
		p := cachePhase{Name: name, What: what}
		err := loadgen.Run(ctx, o, func(r *vegeta.Result) error {
			fig, err := loadgen.Decode(r)
			if err != nil {
				return nil
			}
			p.Requests++
			if ttft, ok := fig.TTFT(); ok && fig.OK() {
				p.TTFTMs = append(p.TTFTMs, float64(ttft)/float64(time.Millisecond))
			} else {
				p.Errors++
				p.LastErr = fig.ErrorType + ": " + fig.Error
			}
			return nil
		})
		p.Summary = stats.Summarize(p.TTFTMs)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		return p, err
	}
	for _, ph := range []struct {
		name, what string
		n          int
		vary       bool
	}{
		{"cold start", "the first request after a restart: the model loads, nothing is cached", 1, false},
		{"warm prefix", "the same prompt again: its prefix is in the slot's cache", *iterations, false},
		{"cold prefix", "a different prompt each time (unique prefix): nothing to reuse", *iterations, true},
	} {
		p, err := phase(ph.name, ph.what, ph.n, ph.vary)
		if err != nil {
			return fmt.Errorf("cache test, %s: %w", ph.name, err)
		}
		res.Phases = append(res.Phases, p)
	}
	warm, cold := res.Phases[1].Summary.P50, res.Phases[2].Summary.P50
	res.BenefitMs = cold - warm
	if warm > 0 {
		res.Speedup = cold / warm
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "cache-test.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write cache-test.json: %w", err)
	}
	writeCacheTable(os.Stdout, res)
	fmt.Printf("\nResults: %s\n", filepath.Join(*out, "cache-test.json"))
	return nil
}

func writeCacheTable(w io.Writer, r cacheResult) {
	fmt.Fprintf(w, "| phase | requests | errors | TTFT p50 ms | TTFT mean ms | TTFT min ms | TTFT max ms |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Phases {
		s := p.Summary
		fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f |\n", p.Name, p.Requests, p.Errors, s.P50, s.Mean, s.Min, s.Max)
	}
	fmt.Fprintf(w, "\nPrefix-cache benefit: %.1f ms less to first token with a warm prefix (p50), %.1f× faster.\n", r.BenefitMs, r.Speedup)
}

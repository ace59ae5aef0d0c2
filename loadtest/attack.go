package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/stream"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

// attackOptions are attack's flags beyond loadgen.Options.
type attackOptions struct {
	gen         loadgen.Options
	promptsFile string
	warmup      string
	headers     headerFlag
	output      string
	encoding    string
	shard       shardOptions
}

func attackFlags(o *attackOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("loadtest attack", flag.ContinueOnError)
	g := &o.gen
	*g = loadgen.DefaultOptions()
	fs.StringVar(&g.URL, "url", "", "server or proxy to attack, e.g. http://localhost:11434 (the endpoint's path is added when the URL has none)")
	fs.StringVar(&g.API, "api", g.API, "wire API: "+strings.Join(stream.WireNames(), ", "))
	fs.StringVar(&g.Endpoint, "endpoint", g.Endpoint, "chat or generate (ollama), chat or completions (openai), chat (responses, anthropic)")
	fs.StringVar(&g.Model, "model", g.Model, "model to ask for")
	fs.IntVar(&g.MaxTokens, "max-tokens", g.MaxTokens, "output limit per request (0: the server's)")
	fs.Var(&o.headers, "header", "request header \"Name: value\" (repeatable)")
	fs.DurationVar(&g.Timeout, "timeout", g.Timeout, "limit per request, body included")
	fs.StringVar(&g.Scenario, "scenario", "", "scenario name, sent as "+loadgen.ScenarioHeader)
	fs.StringVar(&g.Name, "name", g.Name, "attack name recorded in every result (plots draw a series per name)")
	fs.StringVar(&g.PromptSize, "prompt-size", g.PromptSize, "built-in prompt: "+strings.Join(loadgen.PromptSizes(), ", "))
	fs.StringVar(&o.promptsFile, "prompts", "", "JSONL file of prompts (\"…\", {\"prompt\":…} or {\"messages\":[…]} per line), sent in turn")
	fs.BoolVar(&g.VaryPrompts, "vary-prompts", false, "prefix every prompt uniquely so no prefix cache can hit")
	fs.IntVar(&g.Concurrency, "concurrency", g.Concurrency, "requests in flight (closed loop); with -rate, the most in flight (0: unbounded)")
	fs.Float64Var(&g.Rate, "rate", 0, "requests per second (open loop); 0 for a closed loop of -concurrency")
	fs.StringVar(&g.Arrival, "arrival", g.Arrival, "arrivals of -rate: constant or poisson")
	fs.Uint64Var(&g.Seed, "seed", 0, "seed of Poisson arrivals and prompt prefixes (0: from the clock)")
	fs.DurationVar(&g.Duration, "duration", 0, "length of the measured window (0: until -requests or SIGINT)")
	fs.Uint64Var(&g.Requests, "requests", 0, "measured requests (0: until -duration or SIGINT)")
	fs.StringVar(&o.warmup, "warmup", "0", "warm-up excluded from results: a duration (30s) or a request count (20)")
	fs.StringVar(&o.output, "output", "stdout", "file to write results to")
	fs.StringVar(&o.encoding, "encoding", "gob", "result encoding: gob, json or csv (vegeta's)")
	shardFlags(fs, &o.shard)
	return fs
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// parseWarmup reads -warmup: an integer is a request count, else a duration.
func parseWarmup(s string) (time.Duration, uint64, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return 0, n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, 0, fmt.Errorf("-warmup %q: want a duration (30s) or a request count (20)", s)
	}
	return d, 0, nil
}

func (o *attackOptions) resolve(getenv func(string) string) error {
	var err error
	if o.gen.Warmup, o.gen.WarmupRequests, err = parseWarmup(o.warmup); err != nil {
		return subcommand.UsageError{Err: err}
	}
	if _, ok := encodings[o.encoding]; !ok {
		return subcommand.Usagef("-encoding %q: must be gob, json or csv", o.encoding)
	}
	if len(o.headers) > 0 {
		o.gen.Headers = http.Header{}
		for _, h := range o.headers {
			k, v, _ := strings.Cut(h, ":")
			o.gen.Headers.Add(k, v)
		}
	}
	if o.promptsFile != "" {
		f, err := os.Open(o.promptsFile)
		if err != nil {
			return subcommand.Usagef("-prompts: %w", err)
		}
		defer f.Close()
		if o.gen.Prompts, err = loadgen.ReadPrompts(f); err != nil {
			return subcommand.Usagef("-prompts %s: %w", o.promptsFile, err)
		}
	}
	if err := o.shard.resolve(getenv, &o.gen); err != nil {
		return err
	}
	if err := o.gen.Validate(); err != nil {
		return subcommand.UsageError{Err: err}
	}
	return nil
}

func runAttack(env *environment, args []string) error {
	var o attackOptions
	fs := attackFlags(&o)
	fs.SetOutput(env.stderr)
	if err := subcommand.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return subcommand.Usagef("unexpected arguments %q", fs.Args())
	}
	if o.gen.Rate > 0 && !flagSet(fs, "concurrency") {
		o.gen.Concurrency = 0 // an open loop is not capped unless asked
	}
	if err := o.resolve(env.getenv); err != nil {
		return err
	}
	tracing, err := newTracing(env)
	if err != nil {
		return err
	}
	if tracing != nil {
		o.gen.TracerProvider = tracing.Provider
		defer shutdownTracing(env, tracing)
	}

	out, closeOut, err := createOutput(env, o.output)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	enc := encodings[o.encoding](bw)

	// The first SIGINT stops new requests and waits for those in flight;
	// the second cancels them. Either way every record is written whole.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	abort := make(chan struct{})
	o.gen.Abort = abort
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var aborted bool
	var sigWG sync.WaitGroup
	finished := make(chan struct{})
	sigWG.Add(1)
	go func() {
		defer sigWG.Done()
		select {
		case <-sigs:
			fmt.Fprintln(env.stderr, "loadtest attack: stopping; waiting for requests in flight (interrupt again to cancel them)")
			stop()
		case <-finished:
			return
		}
		select {
		case <-sigs:
			aborted = true
			close(abort)
		case <-finished:
		}
	}()

	var runErr error
	if s := o.shard.s; s != nil {
		runErr = waitForStart(ctx, s, func(msg string) { fmt.Fprintln(env.stderr, msg) })
	}
	prog := newProgress(env)
	if runErr == nil {
		runErr = loadgen.Run(ctx, o.gen, func(r *vegeta.Result) error {
			prog.add(r)
			if s := o.shard.s; s != nil {
				if err := s.Encode(r.Headers); err != nil {
					return err
				}
			}
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("write result: %w", err)
			}
			return bw.Flush()
		})
	}
	prog.stop()
	close(finished)
	sigWG.Wait()
	if err := bw.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("write results: %w", err)
	}
	if err := closeOut(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close output: %w", err)
	}
	if runErr != nil {
		if o.shard.s != nil && o.shard.s.Started.IsZero() && o.output != "" && o.output != "stdout" && o.output != "-" {
			_ = os.Remove(o.output) // stopped before -start-at: no file rather than an empty one
		}
		return runErr
	}
	if aborted {
		return fmt.Errorf("interrupted twice: requests in flight were cancelled (recorded as %q errors)", "canceled")
	}
	return nil
}

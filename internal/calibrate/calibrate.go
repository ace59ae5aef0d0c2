package calibrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/simulator"
)

// Config is one calibration.
type Config struct {
	// Engine is the real engine, restarted for each parallel setting; URL
	// is where it listens and Model what it serves.
	Engine matrix.Engine
	URL    string
	Model  string
	// Parallel are the settings probed (each at every concurrency from 1
	// to its slots, and the prompt lengths at concurrency 1).
	Parallel []int
	// NumCtx is each slot's context.
	NumCtx int
	// PromptWords are the prompt lengths at concurrency 1 (at least two).
	PromptWords []int
	// MaxTokens is every probe's output length; Rounds how often each
	// probe repeats.
	MaxTokens int
	Rounds    int
	// JoinWords, when positive, adds a join probe at each parallel setting
	// above 1, JoinRounds times: a first request whose prompt of JoinWords
	// words takes more than one batch of the engine's tokens, and a second
	// with a prompt of JoinFollowerWords words (0: JoinWords) sent
	// JoinDelay after it, while the runner reads the first one's first
	// batch. Sent within simulator.TogetherWindow and with a long prompt,
	// it measures the late-join rate of long prompts sent together;
	// otherwise that of any other join (join.go). The follower's prompt
	// needs at least as many batches as the first one's, less one, for the
	// count to tell. It is left out of the decode fit.
	JoinWords         int
	JoinFollowerWords int
	JoinDelay         time.Duration
	JoinRounds        int
	// HeldOut are checked, not fitted: the real engine runs each
	// HeldOutRounds times (0: Rounds), then more rounds, up to
	// HeldOutMaxRounds, while the standard error of its round means of
	// TTFT or tok/s is above HeldOutPrecision of the mean (0: no more
	// rounds); the fitted simulator runs as many rounds as the engine did.
	// Their Parallel must be among Parallel.
	HeldOut          []Scenario
	HeldOutRounds    int
	HeldOutMaxRounds int
	HeldOutPrecision float64
	// HeldOutTimeScale runs the fitted simulator's side of the held-out
	// scenarios that much faster (its TimeScale; 0 means 1, real time),
	// its timings divided by it.
	HeldOutTimeScale float64
	// Base gives the fitted profile its model shape and names.
	Base simulator.Profile
	// Log receives progress lines.
	Log io.Writer
}

// Validate checks the configuration before anything starts.
func (c Config) Validate() error {
	switch {
	case c.Engine == nil || c.URL == "":
		return errors.New("calibrate: no engine")
	case c.Model == "":
		return errors.New("calibrate: no model")
	case len(c.Parallel) == 0:
		return errors.New("calibrate: no parallel setting")
	case c.NumCtx <= 0:
		return fmt.Errorf("calibrate: context %d per slot: must be positive", c.NumCtx)
	case len(c.PromptWords) < 2:
		return fmt.Errorf("calibrate: %d prompt lengths: the prefill fit needs at least 2", len(c.PromptWords))
	case c.MaxTokens < 2:
		return fmt.Errorf("calibrate: max tokens %d: decode speed needs at least 2", c.MaxTokens)
	case c.Rounds <= 0:
		return fmt.Errorf("calibrate: rounds %d: must be positive", c.Rounds)
	case c.HeldOutTimeScale < 0 || c.HeldOutTimeScale > 1 || math.IsNaN(c.HeldOutTimeScale):
		return fmt.Errorf("calibrate: held-out time scale %v: must be in (0, 1], or 0 for real time", c.HeldOutTimeScale)
	case c.HeldOutRounds < 0:
		return fmt.Errorf("calibrate: held-out rounds %d: must not be negative", c.HeldOutRounds)
	case c.HeldOutMaxRounds < 0:
		return fmt.Errorf("calibrate: held-out max rounds %d: must not be negative", c.HeldOutMaxRounds)
	case !(c.HeldOutPrecision >= 0 && c.HeldOutPrecision < 1):
		return fmt.Errorf("calibrate: held-out precision %v: must be a fraction of the mean from 0 (no extra rounds) to below 1", c.HeldOutPrecision)
	case c.JoinWords < 0 || c.JoinFollowerWords < 0 || c.JoinDelay < 0:
		return fmt.Errorf("calibrate: join probe of %d and %d words after %v: must not be negative", c.JoinWords, c.JoinFollowerWords, c.JoinDelay)
	case c.JoinWords > 0 && c.JoinDelay < time.Millisecond:
		return fmt.Errorf("calibrate: join probe delay %v: give at least 1ms, so the second request comes while the first one's prompt is read", c.JoinDelay)
	case c.JoinWords > 0 && c.JoinRounds <= 0:
		return fmt.Errorf("calibrate: join probe rounds %d: must be positive", c.JoinRounds)
	}
	for _, p := range c.Parallel {
		if p <= 0 {
			return fmt.Errorf("calibrate: parallel %d: must be at least 1", p)
		}
	}
	if slices.Max(c.Parallel) < 2 {
		return errors.New("calibrate: the decode fit needs two numbers of busy slots: give a parallel setting above 1")
	}
	for _, w := range c.PromptWords {
		if w <= 0 {
			return fmt.Errorf("calibrate: prompt of %d words: must be positive", w)
		}
	}
	for _, h := range c.HeldOut {
		if !slices.Contains(c.Parallel, h.Parallel) || h.Concurrency <= 0 || h.PromptWords <= 0 {
			return fmt.Errorf("calibrate: held-out scenario %s: its parallel must be probed, concurrency and words positive", h)
		}
	}
	return nil
}

// joinFollowerWords is the join probe's second prompt in words.
func (c Config) joinFollowerWords() int { return cmp.Or(c.JoinFollowerWords, c.JoinWords) }

func (c Config) heldOutRounds() int { return cmp.Or(c.HeldOutRounds, c.Rounds) }

// heldOutMaxRounds is the most rounds the engine runs a held-out scenario.
func (c Config) heldOutMaxRounds() int {
	if c.HeldOutPrecision == 0 {
		return c.heldOutRounds()
	}
	return max(c.HeldOutMaxRounds, c.heldOutRounds())
}

// preciseEnough tells whether the engine's figures of a held-out scenario
// need no more rounds.
func (c Config) preciseEnough(o Outcome) bool {
	ttft, tok := o.RoundErrors()
	return ttft <= c.HeldOutPrecision && tok <= c.HeldOutPrecision
}

// batchSize is the engine's batch in its tokens: the base profile's.
func (c Config) batchSize() int { return cmp.Or(c.Base.BatchSize, 512) }

// Comparison is a held-out scenario on the engine and on the simulator.
type Comparison struct {
	Real, Sim Outcome
	// TTFTErr and TokPerSecErr are (simulator − engine) / engine.
	TTFTErr, TokPerSecErr float64
}

// Result is a calibration's outcome.
type Result struct {
	Params  Params
	Profile simulator.Profile
	// Probes are the scenarios the fit used; HeldOut the checks.
	Probes  []Outcome
	HeldOut []Comparison
	// Tokens maps the simulator's prompt tokens to the engine's.
	Tokens TokenMap
	// Facts are what the engine said at each parallel setting.
	Facts map[int]matrix.SettingFacts
	// Started and Took bound the calibration.
	Started time.Time
	Took    time.Duration
}

// Run probes the engine, fits the profile and checks it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := &Result{Facts: map[int]matrix.SettingFacts{}, Started: time.Now()}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Minute}
	defer client.CloseIdleConnections()
	real := &prober{client: client, url: cfg.URL, model: cfg.Model, maxTokens: cfg.MaxTokens}
	var samples Samples
	heldReal := map[Scenario]Outcome{}
	defer cfg.Engine.Stop(context.WithoutCancel(ctx))
	for _, p := range cfg.Parallel {
		fmt.Fprintf(cfg.Log, "engine with %d slots of %d tokens: starting\n", p, cfg.NumCtx)
		facts, err := cfg.Engine.Start(ctx, matrix.Setting{Parallel: p, NumCtx: cfg.NumCtx})
		if err != nil {
			return nil, fmt.Errorf("start the engine with %d slots: %w", p, err)
		}
		res.Facts[p] = facts
		client.CloseIdleConnections() // connections to the engine before its restart
		fmt.Fprintf(cfg.Log, "  loaded in %.2fs (engine: %.2fs), verified: %s\n", facts.ColdLoadS, facts.ServerLoadS, facts.Verified)
		// v0.17's load-only answer carries no load_duration: then the load
		// as the supervisor timed it.
		if load := cmp.Or(facts.ServerLoadS, facts.ColdLoadS); load > 0 {
			samples.Loads = append(samples.Loads, load)
		}
		if facts.IdleMemBytes > 0 {
			samples.Memory = append(samples.Memory, Point{float64(p * cfg.NumCtx), float64(facts.IdleMemBytes)})
		}
		// The prompt lengths run on every setting, so the prefill fit spans
		// the whole calibration, as the held-out scenarios do: a slow spell
		// of the machine while the first setting ran weighs a third.
		var probes []Scenario
		for _, w := range cfg.PromptWords {
			probes = append(probes, Scenario{Parallel: p, Concurrency: 1, PromptWords: w})
		}
		for c := 2; c <= p; c++ {
			probes = append(probes, Scenario{Parallel: p, Concurrency: c, PromptWords: cfg.PromptWords[0]})
		}
		if cfg.JoinWords > 0 && p > 1 {
			probes = append(probes, Scenario{Parallel: p, Concurrency: 2, PromptWords: cfg.joinFollowerWords(), FirstWords: cfg.JoinWords,
				DelayMs: int(cfg.JoinDelay / time.Millisecond)})
		}
		for _, sc := range probes {
			rounds := cfg.Rounds
			if sc.DelayMs > 0 {
				rounds = cfg.JoinRounds
			}
			o, err := real.run(ctx, sc, rounds)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(cfg.Log, "  probe %s: TTFT p50 %.0f ms, %.1f tok/s, %.0f prompt tokens\n", sc, o.TTFTP50Ms, o.TokPerSecAvg, o.PromptTokens)
			res.Probes = append(res.Probes, o)
			if sc.Concurrency > 1 {
				samples.Joins = samples.Joins.Add(o.joins(cfg.batchSize()))
			}
			if sc.DelayMs > 0 {
				continue // the join probe: its decode steps sit beside prompt chunks
			}
			for _, ob := range o.Observations {
				if sc.Concurrency == 1 {
					samples.Prefill = append(samples.Prefill, Point{float64(ob.PromptTokens), ob.TTFT.Seconds()})
				}
				// The median gap, or the mean when most chunks carried
				// several tokens.
				if step := cmp.Or(ob.Step, ob.TPOT); step > 0 {
					busy := float64(sc.Concurrency)
					context := busy * (float64(ob.PromptTokens) + float64(ob.OutputTokens)/2)
					samples.Decode = append(samples.Decode, DecodeSample{busy, context, step.Seconds()})
				}
			}
		}
		for _, h := range cfg.HeldOut {
			if h.Parallel != p {
				continue
			}
			o, err := real.runUntil(ctx, h, cfg.heldOutRounds(), cfg.heldOutMaxRounds(), cfg.preciseEnough)
			if err != nil {
				return nil, err
			}
			ttftErr, tokErr := o.RoundErrors()
			fmt.Fprintf(cfg.Log, "  held out %s: TTFT p50 %.0f ms, %.1f tok/s, %d rounds (standard error of the round means %.1f%% / %.1f%%)\n",
				h, o.TTFTP50Ms, o.TokPerSecAvg, o.Rounds, 100*ttftErr, 100*tokErr)
			heldReal[h] = o
		}
	}
	if err := cfg.Engine.Stop(ctx); err != nil {
		return nil, fmt.Errorf("stop the engine: %w", err)
	}
	params, err := Fit(samples)
	if err != nil {
		return nil, fmt.Errorf("fit the profile: %w", err)
	}
	res.Params = params
	res.Profile, err = profileFrom(ctx, cfg, params, res)
	if err != nil {
		return nil, err
	}
	for _, h := range cfg.HeldOut {
		r := heldReal[h]
		sim, err := runSimulated(ctx, res.Profile, cfg, h, r.Rounds)
		if err != nil {
			return nil, err
		}
		c := Comparison{Real: r, Sim: sim, TTFTErr: relErr(sim.TTFTP50Ms, r.TTFTP50Ms), TokPerSecErr: relErr(sim.TokPerSecAvg, r.TokPerSecAvg)}
		fmt.Fprintf(cfg.Log, "held out %s: TTFT p50 %.0f ms real, %.0f ms simulated (%+.0f%%); %.1f tok/s real, %.1f simulated (%+.0f%%)\n",
			h, r.TTFTP50Ms, sim.TTFTP50Ms, 100*c.TTFTErr, r.TokPerSecAvg, sim.TokPerSecAvg, 100*c.TokPerSecErr)
		res.HeldOut = append(res.HeldOut, c)
	}
	res.Took = time.Since(res.Started)
	return res, nil
}

func relErr(sim, real float64) float64 {
	if real == 0 {
		return math.Inf(1)
	}
	return (sim - real) / real
}

// profileFrom is the base profile with the fitted parameters, the engine's
// KV cache per token and the tokenizer ratio.
func profileFrom(ctx context.Context, cfg Config, p Params, res *Result) (simulator.Profile, error) {
	prof := cfg.Base
	prof.Model = cfg.Model
	prof.ContextLength = cfg.NumCtx
	prof.StepBase, prof.StepPerSeq, prof.PrefillPerToken = p.StepBase, p.StepPerSeq, p.PrefillPerToken
	prof.AttentionPerPair, prof.DecodePerContextToken = p.AttentionPerPair, p.DecodePerContextToken
	prof.RequestOverhead, prof.LoadTime = p.RequestOverhead, p.LoadTime
	prof.KVBytesPerToken = p.KVBytesPerToken
	prof.LateJoinRate, prof.LateJoinRateTogether = p.LateJoinRate, p.LateJoinRateTogether
	// The engine's own KV cache figure beats the memory fit.
	for _, f := range res.Facts {
		if kv, ok := KVFromLog(f.RunnerLog); ok {
			prof.KVBytesPerToken = kv
		}
	}
	tokens, err := tokenMap(ctx, cfg, prof, res.Probes)
	if err != nil {
		return prof, err
	}
	res.Tokens = tokens
	prof.PromptTokenRatio, prof.PromptTokenOffset = tokens.Ratio, tokens.Offset
	return prof, nil
}

// tokenMap fits the engine's prompt tokens to the simulator's, from the
// prompt-length probes sent again to a fast simulator (the same lengths in
// words, each prompt new as on the engine).
func tokenMap(ctx context.Context, cfg Config, prof simulator.Profile, probes []Outcome) (TokenMap, error) {
	var pts []Point
	// Without a token line the simulator counts its own tokens (with one it
	// reports the engine's).
	prof.PromptTokenRatio, prof.PromptTokenOffset = 0, 0
	err := withSimulator(prof, 1, cfg.NumCtx, 0.001, func(url string) error {
		p := &prober{client: &http.Client{Timeout: time.Minute}, url: url, model: cfg.Model, maxTokens: 2}
		for _, o := range probes {
			if o.Scenario.Concurrency != 1 || o.Scenario.Parallel != probes[0].Scenario.Parallel {
				continue // one setting's prompt lengths: the others repeat them
			}
			s, err := p.run(ctx, Scenario{Parallel: 1, Concurrency: 1, PromptWords: o.Scenario.PromptWords}, 2)
			if err != nil {
				return err
			}
			pts = append(pts, Point{s.PromptTokens, o.PromptTokens})
		}
		return nil
	})
	if err != nil {
		return TokenMap{}, fmt.Errorf("count the simulator's prompt tokens: %w", err)
	}
	m, err := FitTokenMap(pts)
	if err != nil {
		return m, fmt.Errorf("map the simulator's prompt tokens to the engine's: %w", err)
	}
	return m, nil
}

// runSimulated runs a held-out scenario on the fitted simulator, after one
// warm-up request (the engine had its load and warm-up), at the held-out
// time scale, its timings then divided by the scale.
func runSimulated(ctx context.Context, prof simulator.Profile, cfg Config, sc Scenario, rounds int) (Outcome, error) {
	var out Outcome
	scale := cmp.Or(cfg.HeldOutTimeScale, 1)
	err := withSimulator(prof, sc.Parallel, cfg.NumCtx, scale, func(url string) error {
		p := &prober{client: &http.Client{Timeout: 5 * time.Minute}, url: url, model: cfg.Model, maxTokens: cfg.MaxTokens}
		if _, err := p.run(ctx, Scenario{Parallel: sc.Parallel, Concurrency: 1, PromptWords: 1}, 1); err != nil {
			return err
		}
		var err error
		out, err = p.run(ctx, sc, rounds)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("simulate held-out scenario %s: %w", sc, err)
	}
	return unscaled(out, scale), nil
}

// unscaled is an outcome measured at a time scale with its timings
// divided by the scale.
func unscaled(o Outcome, scale float64) Outcome {
	if scale == 1 || len(o.Observations) == 0 {
		return o
	}
	d := func(t time.Duration) time.Duration { return time.Duration(float64(t) / scale) }
	obs := make([]Observation, len(o.Observations))
	for i, ob := range o.Observations {
		ob.TTFT, ob.TPOT, ob.Step, ob.Start = d(ob.TTFT), d(ob.TPOT), d(ob.Step), d(ob.Start)
		chunks := make([]time.Duration, len(ob.Chunks))
		for k, c := range ob.Chunks {
			chunks[k] = d(c)
		}
		ob.Chunks = chunks
		obs[i] = ob
	}
	return summarize(o.Scenario, obs)
}

// withSimulator serves the profile on a loopback port while fn runs.
func withSimulator(prof simulator.Profile, parallel, numCtx int, scale float64, fn func(url string) error) error {
	sim, err := simulator.New(simulator.Config{CustomProfile: &prof, Parallel: parallel, ContextLength: numCtx, TimeScale: scale})
	if err != nil {
		return fmt.Errorf("start the simulator: %w", err)
	}
	defer sim.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	defer func() { srv.Close(); <-done }()
	return fn("http://" + l.Addr().String())
}

// KVFromLog is the KV bytes per token of one slot the engine's log gives;
// false when it gives none.
func KVFromLog(rl *backend.RunnerArgs) (int64, bool) {
	if rl == nil || rl.KVBytes <= 0 || rl.Cells <= 0 {
		return 0, false
	}
	return rl.KVBytes / int64(rl.Cells), true
}

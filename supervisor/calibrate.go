package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/load"

	"github.com/tokentrace/tokentrace/internal/calibrate"
	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

func init() {
	commands["calibrate"] = command{
		Summary: "fit a simulator profile to a real engine (short probes, least squares) and check it on held-out scenarios",
		Run:     runCalibrate,
	}
}

type calibrateFlags struct {
	engineFlags
	parallel    string
	numCtx      int
	promptWords string
	maxTokens   int
	rounds      int
	joinWords   int
	joinFollow  int
	joinDelay   time.Duration
	joinRounds  int
	heldOut     string
	heldRounds  int
	heldMax     int
	heldPrec    float64
	heldScale   float64
	base        string
	name        string
	out         string
}

func runCalibrate(args []string) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	var f calibrateFlags
	f.register(fs)
	fs.StringVar(&f.parallel, "num-parallel", "1,2,4", "OLLAMA_NUM_PARALLEL values probed, comma-separated; the engine restarts for each")
	fs.IntVar(&f.numCtx, "num-ctx", 2048, "context length per slot (OLLAMA_CONTEXT_LENGTH)")
	fs.StringVar(&f.promptWords, "prompt-words", "4,48,128,256", "prompt lengths in words at concurrency 1, comma-separated (the prefill fit)")
	fs.IntVar(&f.maxTokens, "max-tokens", 32, "output tokens of every probe request")
	fs.IntVar(&f.rounds, "rounds", 3, "repeats of every probe")
	fs.IntVar(&f.joinWords, "join-prompt-words", 104, "the join probe at each parallel setting above 1 (the late-join rate of long prompts sent together): its first request's prompt in words, more than one batch of the engine's tokens; 0 leaves it out")
	fs.IntVar(&f.joinFollow, "join-follower-words", 0, "the join probe's second request's prompt in words (0: --join-prompt-words)")
	fs.DurationVar(&f.joinDelay, "join-delay", time.Millisecond, fmt.Sprintf("how long after the first request the join probe sends the second (while the first one's first batch runs; within %v counts as together)", simulator.TogetherWindow))
	fs.IntVar(&f.joinRounds, "join-rounds", 10, "repeats of the join probe")
	fs.StringVar(&f.heldOut, "held-out", "p1-c2-w64,p2-c2-w192,p4-c3-w96,p4-c4-w32", "scenarios checked, not fitted: p<parallel>-c<concurrency>-w<prompt words>, comma-separated")
	fs.IntVar(&f.heldRounds, "held-out-rounds", 8, "repeats of every held-out scenario on the engine, at least (0: --rounds); the simulator runs as many as the engine did. Fewer than 8 lets --held-out-precision stop a scenario whose rounds happened to fall the same way")
	fs.IntVar(&f.heldMax, "held-out-max-rounds", 16, "the most repeats of a held-out scenario on the engine (never fewer than --held-out-rounds): it adds rounds while its figures are less precise than --held-out-precision")
	fs.Float64Var(&f.heldPrec, "held-out-precision", 0.05, "the standard error of the engine's round means of TTFT and of tok/s, as a share of the mean, below which a held-out scenario needs no more rounds (0: exactly --held-out-rounds)")
	fs.Float64Var(&f.heldScale, "held-out-time-scale", 0.25, "the fitted simulator runs the held-out scenarios this much faster (its --time-scale), its timings divided by it; 1 is real time")
	fs.StringVar(&f.base, "base-profile", "cpu-25m", "built-in profile or profile file whose model shape and names the fitted profile keeps")
	fs.StringVar(&f.name, "name", "", "the fitted profile's name (default: calibrated-<model>)")
	fs.StringVar(&f.out, "out", "", "folder for profile.json, calibration.md and calibration.json (default out/calibrate-<time>)")
	if err := fs.Parse(args); err != nil {
		return subcommand.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return subcommand.UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg, err := f.config()
	if err != nil {
		return subcommand.UsageError{Err: err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Log = os.Stderr
	before := loadAverage()
	res, err := calibrate.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return f.write(cfg, res, fmt.Sprintf("1-minute load average %s at the start, %s at the end, on %d cores", before, loadAverage(), runtime.NumCPU()))
}

// config checks every flag and builds the calibration; nothing has started
// when it fails.
func (f *calibrateFlags) config() (calibrate.Config, error) {
	var cfg calibrate.Config
	var err error
	if cfg.Parallel, err = parseInts("num-parallel", f.parallel); err != nil {
		return cfg, err
	}
	if cfg.PromptWords, err = parseInts("prompt-words", f.promptWords); err != nil {
		return cfg, err
	}
	if cfg.HeldOut, err = parseScenarios(f.heldOut); err != nil {
		return cfg, err
	}
	base, ok := simulator.Profiles[f.base]
	if !ok {
		if !isProfileFile(f.base) {
			return cfg, fmt.Errorf("--base-profile %q is not one of %v, nor a profile file", f.base, simulator.ProfileNames())
		}
		if base, err = simulator.ReadProfileFile(f.base); err != nil {
			return cfg, fmt.Errorf("--base-profile: %w", err)
		}
	}
	if f.backend == "external" || f.backend == "command" {
		return cfg, fmt.Errorf("--backend %s: calibrate restarts an Ollama-API engine per setting: use ollama or sim", f.backend)
	}
	if err := f.engineFlags.validate(); err != nil {
		return cfg, err
	}
	if f.out == "" {
		f.out = filepath.Join("out", "calibrate-"+time.Now().Format("20060102-150405"))
	}
	if err := matrix.CheckWritable(f.out); err != nil {
		return cfg, err
	}
	logs := filepath.Join(f.out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return cfg, fmt.Errorf("log folder: %w", err)
	}
	engine, url, err := f.engine(logs)
	if err != nil {
		return cfg, err
	}
	base.Name = f.name
	if base.Name == "" {
		base.Name = "calibrated-" + strings.TrimSuffix(f.model, ":latest")
	}
	cfg.Engine, cfg.URL, cfg.Model, cfg.Base = engine, url, f.model, base
	cfg.NumCtx, cfg.MaxTokens, cfg.Rounds = f.numCtx, f.maxTokens, f.rounds
	cfg.JoinWords, cfg.JoinFollowerWords, cfg.JoinDelay, cfg.JoinRounds, cfg.HeldOutRounds = f.joinWords, f.joinFollow, f.joinDelay, f.joinRounds, f.heldRounds
	cfg.HeldOutTimeScale, cfg.HeldOutMaxRounds, cfg.HeldOutPrecision = f.heldScale, f.heldMax, f.heldPrec
	return cfg, cfg.Validate()
}

var scenarioName = regexp.MustCompile(`^p(\d+)-c(\d+)-w(\d+)$`)

func parseScenarios(s string) ([]calibrate.Scenario, error) {
	var out []calibrate.Scenario
	for _, name := range splitList(s) {
		m := scenarioName.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("--held-out: %q is not p<parallel>-c<concurrency>-w<words>, e.g. p2-c2-w64", name)
		}
		n := make([]int, 3)
		for i := range n {
			v, err := strconv.Atoi(m[i+1])
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("--held-out: %q: numbers must be at least 1", name)
			}
			n[i] = v
		}
		out = append(out, calibrate.Scenario{Parallel: n[0], Concurrency: n[1], PromptWords: n[2]})
	}
	return out, nil
}

// write puts the profile, the report and the raw result into the folder,
// each written whole to a temporary file and renamed into place.
func (f *calibrateFlags) write(cfg calibrate.Config, res *calibrate.Result, loadNote string) error {
	prof, err := simulator.MarshalProfile(res.Profile)
	if err != nil {
		return err
	}
	var report bytes.Buffer
	if err := calibrate.WriteReport(&report, cfg, res, loadNote); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(map[string]any{"params": res.Params, "prompt_tokens": res.Tokens, "probes": res.Probes, "held_out": res.HeldOut,
		"facts": res.Facts, "machine_load": loadNote}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the calibration: %w", err)
	}
	for _, file := range []struct {
		name string
		b    []byte
	}{{"profile.json", prof}, {"calibration.md", report.Bytes()}, {"calibration.json", raw}} {
		if err := writeFileAtomic(filepath.Join(f.out, file.name), file.b); err != nil {
			return err
		}
	}
	fmt.Printf("profile: %s\nreport:  %s\nlargest held-out error %.1f%% (bound %.0f%%); the simulator with this profile is a simulation, not a measurement\n"+
		"use it: supervisor simulate --profile %s, or supervisor run --backend sim --sim-flag=--profile=%s\n",
		filepath.Join(f.out, "profile.json"), filepath.Join(f.out, "calibration.md"), 100*res.WorstError(), 100*calibrate.Bound,
		filepath.Join(f.out, "profile.json"), filepath.Join(f.out, "profile.json"))
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func loadAverage() string {
	if avg, err := load.Avg(); err == nil {
		return fmt.Sprintf("%.1f", avg.Load1)
	}
	return "unknown"
}

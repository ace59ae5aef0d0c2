package matrix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/tokentrace/tokentrace/internal/memsample"
)

// Engine is the backend under test, one setting at a time.
type Engine interface {
	// Start (re)starts the engine with the setting and prepares it: ready,
	// model present, loaded and warm, its parallelism verified. An error
	// wrapped in *SettingError fails only this setting; any other error
	// ends the run (a missing model, for one).
	Start(ctx context.Context, s Setting) (SettingFacts, error)
	// Restartable is false for an external engine.
	Restartable() bool
	// Pid is the root of the engine's process tree; 0 when unknown.
	Pid() int
	// Health tells whether the engine has exited (and how), and how many
	// of its log lines spoke of memory so far (and the last one).
	Health() (exited bool, how string, memLines int, lastMem string)
	// PS is what the engine says its loaded models take (/api/ps), in all
	// and on the GPU; zero when it cannot tell.
	PS(ctx context.Context) PSSize
	// Stop stops the engine; idempotent.
	Stop(ctx context.Context) error
}

// SettingError is a setting the engine could not run; Status is StatusOOM
// or StatusFailed.
type SettingError struct {
	Status string
	Err    error
}

func (e *SettingError) Error() string { return e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// LoadFunc drives one scenario: the warm-up and then, without a pause, the
// measured window, as one continuous load. It calls onWindow once when the
// window is known (before the first measured request ends) and onRequest
// with every measured (non-warm-up) request.
type LoadFunc func(ctx context.Context, sc Scenario, onWindow func(Window), onRequest func(Request)) error

// Runner runs a matrix.
type Runner struct {
	Settings Settings
	Engine   Engine
	Load     LoadFunc
	Store    *Store
	// Progress receives the progress bar; Log one line per event.
	Progress *Progress
	Log      io.Writer
	// MemInterval is the memory sampling interval; 250 ms when 0.
	MemInterval time.Duration
	// NvidiaSMI, when set, is the nvidia-smi that samples the engine's GPU
	// memory (per process tree) beside its RAM.
	NvidiaSMI string
}

var (
	// memoryExit matches how an engine exited when memory killed it (the
	// kernel's OOM killer sends SIGKILL).
	memoryExit = regexp.MustCompile(`(?i)killed|memory`)
	blanks     = regexp.MustCompile(`\s+`)
)

// Run runs every scenario that the store does not have yet. An interrupted
// run (ctx cancelled) records nothing of the scenario it was in.
func (r *Runner) Run(ctx context.Context) error {
	if r.MemInterval <= 0 {
		r.MemInterval = 250 * time.Millisecond
	}
	all := r.Settings.Scenarios()
	if !r.Engine.Restartable() {
		first := all[0].Setting
		fmt.Fprintf(r.Log, "the external engine cannot be restarted: running concurrency × prompt size only, "+
			"with whatever parallelism and context it runs (labelled %s)\n", first)
		var keep []Scenario
		for _, sc := range all {
			if sc.Setting == first {
				keep = append(keep, sc)
			}
		}
		all = keep
	}
	var todo []Scenario
	for _, sc := range all {
		if !r.Store.Done(sc.Name()) {
			todo = append(todo, sc)
		}
	}
	if r.Progress != nil {
		r.Progress.Begin(len(all), len(all)-len(todo))
		defer r.Progress.End()
	}
	defer r.Engine.Stop(context.Background())
	for i := 0; i < len(todo); {
		setting := todo[i].Setting
		j := i
		for j < len(todo) && todo[j].Setting == setting {
			j++
		}
		if err := r.runSetting(ctx, setting, todo[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

func (r *Runner) runSetting(ctx context.Context, s Setting, scenarios []Scenario) error {
	fmt.Fprintf(r.Log, "starting engine: parallel %d, context %d\n", s.Parallel, s.NumCtx)
	facts, err := r.Engine.Start(ctx, s)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *SettingError
	if errors.As(err, &se) {
		fmt.Fprintf(r.Log, "setting %s: %s: %v\n", s, se.Status, se.Err)
		for _, sc := range scenarios {
			note := "engine start: " + oneLine(se.Err.Error())
			if sc.Search != "" {
				err = r.recordSearchFailure(sc, se.Status, note)
			} else {
				err = r.record(sc, se.Status, note, facts)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("start engine with parallel %d, context %d: %w", s.Parallel, s.NumCtx, err)
	}
	fmt.Fprintf(r.Log, "engine ready in %.2fs, model loaded in %.2fs, verified: %s\n", facts.TimeToReadyS, facts.ColdLoadS, facts.Verified)
	if facts.RunnerLog != nil {
		fmt.Fprintf(r.Log, "engine says: %s\n", facts.RunnerLog.Summary())
	}
	for k, sc := range scenarios {
		run := r.runScenario
		if sc.Search != "" {
			run = r.runSearch
		}
		died, err := run(ctx, sc, facts)
		if err != nil {
			return err
		}
		if died != "" {
			for _, rest := range scenarios[k+1:] {
				note := "engine died in " + sc.Name() + ": " + died
				if rest.Search != "" {
					err = r.recordSearchFailure(rest, StatusSkipped, note)
				} else {
					err = r.record(rest, StatusSkipped, note, facts)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	return nil
}

// runScenario runs one scenario and records it; died says how the engine
// died in it.
func (r *Runner) runScenario(ctx context.Context, sc Scenario, facts SettingFacts) (died string, err error) {
	if r.Progress != nil {
		r.Progress.Start(sc.Name())
	}
	res, reqs, died, err := r.measure(ctx, sc, facts)
	if err != nil {
		return "", err
	}
	if _, err := r.write(res, reqs); err != nil {
		return "", err
	}
	return died, nil
}

// measure runs one scenario: its result (figures not yet computed) and
// requests; died says how the engine died in it.
func (r *Runner) measure(ctx context.Context, sc Scenario, facts SettingFacts) (res Result, reqs []Request, died string, err error) {
	_, _, memBefore, _ := r.Engine.Health()
	var sampler *memsample.Sampler
	if pid := r.Engine.Pid(); pid > 0 {
		sampler = memsample.StartGPU(pid, r.MemInterval, r.NvidiaSMI)
	}
	loadCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var psPeak PSSize
	wg.Add(1)
	go func() { // watch the engine: a dead engine ends the scenario
		defer wg.Done()
		t := time.NewTicker(r.MemInterval)
		defer t.Stop()
		for n := 0; ; n++ {
			if exited, _, _, _ := r.Engine.Health(); exited {
				cancel()
				return
			}
			if n%4 == 0 {
				ps := r.Engine.PS(loadCtx)
				psPeak.Bytes, psPeak.VRAMBytes = max(psPeak.Bytes, ps.Bytes), max(psPeak.VRAMBytes, ps.VRAMBytes)
			}
			select {
			case <-loadCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	started := time.Now()
	var mu sync.Mutex
	var window Window
	var warmupMem memsample.Result
	var warmupTimer *time.Timer
	restarted := make(chan struct{})
	attempt := newAttempt()
	loadErr := r.Load(loadCtx, sc, func(w Window) {
		mu.Lock()
		window = w
		mu.Unlock()
		if sampler != nil { // the warm-up's memory is its own period
			warmupTimer = time.AfterFunc(time.Until(w.Start), func() { warmupMem = sampler.Restart(); close(restarted) })
		}
	}, func(q Request) {
		q.Scenario, q.Attempt = sc.Name(), attempt
		mu.Lock()
		reqs = append(reqs, q)
		mu.Unlock()
	})
	cancel()
	wg.Wait()
	if warmupTimer != nil && !warmupTimer.Stop() {
		<-restarted // it fired: wait until the warm-up's period is in warmupMem
	}
	var mem memsample.Result
	if sampler != nil {
		mem, _ = sampler.Stop()
	}
	exited, how, memAfter, lastMem := r.Engine.Health()
	if ctx.Err() != nil && !exited {
		return res, nil, "", ctx.Err()
	}
	status, note := StatusOK, ""
	switch {
	case exited && (memAfter > memBefore || memoryWords(how)):
		status, note = StatusOOM, "engine exited: "+how+memNote(lastMem)
	case exited:
		status, note = StatusCrash, "engine exited: "+how
	case memAfter > memBefore:
		status, note = StatusOOM, "engine log: "+lastMem
	}
	// An error response that speaks of memory is not evidence by itself
	// (a client's text, a proxy's): OOM comes from the engine, its exit or
	// its log; such errors stay counted in the scenario's figures.
	switch {
	case loadErr != nil && status == StatusOK:
		status, note = StatusFailed, "load: "+loadErr.Error()
	case measured(reqs) == 0 && status == StatusOK:
		status, note = StatusFailed, "no request was measured: none started inside the window"
		if len(reqs) > 0 {
			note += fmt.Sprintf(" (%d warm-up requests were still running; answers take longer than --warmup and --duration)", len(reqs))
		}
	}
	res = r.result(sc, status, oneLine(note), facts, started, mem, psPeak)
	res.WarmupPeakMemBytes = warmupMem.PeakBytes
	if !window.Start.IsZero() {
		if window.End.IsZero() || window.End.After(time.Now()) {
			window.End = time.Now() // the load ended early
		}
		res.Window = window
	}
	if exited {
		died = how
	}
	return res, reqs, died, nil
}

func memoryWords(s string) bool { return memoryExit.MatchString(s) }

func memNote(last string) string {
	if last == "" {
		return ""
	}
	return "; log: " + last
}

// record writes a scenario that measured nothing.
func (r *Runner) record(sc Scenario, status, note string, facts SettingFacts) error {
	_, err := r.write(r.result(sc, status, note, facts, time.Now(), memsample.Result{}, PSSize{}), nil)
	return err
}

func (r *Runner) result(sc Scenario, status, note string, facts SettingFacts, started time.Time,
	mem memsample.Result, psPeak PSSize) Result {
	return Result{Scenario: sc, Name: sc.Name(), Attempt: newAttempt(), Status: status, Note: note,
		Started: started.UTC(), SettingFacts: facts,
		PeakMemBytes: mem.PeakBytes, MeanMemBytes: mem.MeanBytes, MemSamples: mem.Samples, PSPeakBytes: psPeak.Bytes,
		PSPeakVRAMBytes: psPeak.VRAMBytes, PeakVRAMBytes: mem.PeakVRAMBytes}
}

// write computes the figures of a scenario's requests over its window
// and appends both to the store.
func (r *Runner) write(res Result, reqs []Request) (Result, error) {
	if len(reqs) > 0 {
		res.Attempt = reqs[0].Attempt
	}
	if res.Window.Start.IsZero() {
		res.Window = DrainedWindow(reqs, r.Settings.Duration.D())
	}
	res.Figures = Compute(reqs, res.Window, r.Settings.SLO.PerRequest())
	res.WindowS = res.Window.Length().Seconds()
	if err := r.Store.Append(res, reqs); err != nil {
		return res, err
	}
	if r.Progress != nil {
		r.Progress.Finish(res)
	}
	fmt.Fprintf(r.Log, "%s: %s %s\n", res.Name, res.Status, summaryLine(res))
	return res, nil
}

func summaryLine(r Result) string {
	if r.Status != StatusOK {
		return r.Note
	}
	return fmt.Sprintf("%d requests (%d errors), TTFT p50 %.0f ms, %.1f tok/s per request, %.1f tok/s total, peak memory %s",
		r.Requests, r.Errors, r.TTFTP50Ms, r.TokPerSecMean, r.OutputTokPerSec, HumanBytes(r.PeakMemBytes))
}

func oneLine(s string) string {
	s = blanks.ReplaceAllString(s, " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func newAttempt() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// HumanBytes writes a byte count in MiB or GiB.
func HumanBytes(b uint64) string {
	switch {
	case b >= 10<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	default:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
}

// measured counts the requests started inside the window.
func measured(reqs []Request) int {
	n := 0
	for _, q := range reqs {
		if !q.Warmup {
			n++
		}
	}
	return n
}

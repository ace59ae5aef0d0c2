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
	// PSBytes is what the engine says its loaded models take (/api/ps);
	// 0 when it cannot tell.
	PSBytes(ctx context.Context) int64
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

// LoadFunc drives one scenario for the warm-up and the duration and reports
// every measured (non-warm-up) request.
type LoadFunc func(ctx context.Context, sc Scenario, onRequest func(Request)) error

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
}

var (
	// memoryError matches error responses that say memory ran out.
	memoryError = regexp.MustCompile(`(?i)memory|\boom\b|alloc`)
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
			if err := r.record(sc, se.Status, "engine start: "+oneLine(se.Err.Error()), facts, time.Now(), nil, memsample.Result{}, 0); err != nil {
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
		died, err := r.runScenario(ctx, sc, facts)
		if err != nil {
			return err
		}
		if died != "" {
			for _, rest := range scenarios[k+1:] {
				if err := r.record(rest, StatusSkipped, "engine died in "+sc.Name()+": "+died, facts, time.Now(), nil, memsample.Result{}, 0); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return nil
}

// runScenario runs one scenario; died says how the engine died in it.
func (r *Runner) runScenario(ctx context.Context, sc Scenario, facts SettingFacts) (died string, err error) {
	if r.Progress != nil {
		r.Progress.Start(sc.Name())
	}
	_, _, memBefore, _ := r.Engine.Health()
	var sampler *memsample.Sampler
	if pid := r.Engine.Pid(); pid > 0 {
		sampler = memsample.Start(pid, r.MemInterval)
	}
	loadCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var psPeak int64
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
				psPeak = max(psPeak, r.Engine.PSBytes(loadCtx))
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
	var reqs []Request
	attempt := newAttempt()
	loadErr := r.Load(loadCtx, sc, func(q Request) {
		q.Scenario, q.Attempt = sc.Name(), attempt
		mu.Lock()
		reqs = append(reqs, q)
		mu.Unlock()
	})
	cancel()
	wg.Wait()
	var mem memsample.Result
	if sampler != nil {
		mem, _ = sampler.Stop()
	}
	exited, how, memAfter, lastMem := r.Engine.Health()
	if ctx.Err() != nil && !exited {
		return "", ctx.Err()
	}
	status, note := StatusOK, ""
	switch {
	case exited && (memAfter > memBefore || memoryWords(how)):
		status, note = StatusOOM, "engine exited: "+how+memNote(lastMem)
	case exited:
		status, note = StatusCrash, "engine exited: "+how
	case memAfter > memBefore:
		status, note = StatusOOM, "engine log: "+lastMem
	default:
		for _, q := range reqs {
			if !q.OK && memoryError.MatchString(q.Error) {
				status, note = StatusOOM, "error response: "+q.Error
				break
			}
		}
	}
	switch {
	case loadErr != nil && status == StatusOK:
		status, note = StatusFailed, "load: "+loadErr.Error()
	case len(reqs) == 0 && status == StatusOK:
		status, note = StatusFailed, "no request was measured"
	}
	if err := r.record(sc, status, oneLine(note), facts, started, reqs, mem, psPeak); err != nil {
		return "", err
	}
	if exited {
		return how, nil
	}
	return "", nil
}

func memoryWords(s string) bool { return memoryExit.MatchString(s) }

func memNote(last string) string {
	if last == "" {
		return ""
	}
	return "; log: " + last
}

func (r *Runner) record(sc Scenario, status, note string, facts SettingFacts, started time.Time,
	reqs []Request, mem memsample.Result, psPeak int64) error {
	res := Result{Scenario: sc, Name: sc.Name(), Attempt: newAttempt(), Status: status, Note: note,
		Started: started.UTC(), SettingFacts: facts,
		PeakMemBytes: mem.PeakBytes, MeanMemBytes: mem.MeanBytes, MemSamples: mem.Samples, PSPeakBytes: psPeak}
	if len(reqs) > 0 {
		res.Attempt = reqs[0].Attempt
	}
	var window time.Duration
	res.Figures, window = Compute(reqs, r.Settings.Duration.D())
	res.WindowS = window.Seconds()
	if err := r.Store.Append(res, reqs); err != nil {
		return err
	}
	if r.Progress != nil {
		r.Progress.Finish(res)
	}
	fmt.Fprintf(r.Log, "%s: %s %s\n", sc.Name(), status, summaryLine(res))
	return nil
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

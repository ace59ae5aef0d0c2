package matrix

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokentrace/tokentrace/internal/loadreport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func settings() Settings {
	return Settings{Backend: "sim", Model: "m", API: "ollama", Concurrency: []int{1, 2}, PromptSizes: []string{"small"},
		NumParallel: []int{1, 2}, NumCtx: []int{512}, Duration: Duration(time.Second)}
}

func TestValidate(t *testing.T) {
	sizes := []string{"small", "large"}
	for _, tc := range []struct {
		name   string
		change func(*Settings)
		want   string
	}{
		{"ok", func(*Settings) {}, ""},
		{"zero concurrency", func(s *Settings) { s.Concurrency = []int{0} }, "concurrency 0"},
		{"negative parallel", func(s *Settings) { s.NumParallel = []int{-1} }, "num-parallel -1"},
		{"unknown size", func(s *Settings) { s.PromptSizes = []string{"huge"} }, `unknown prompt size "huge"`},
		{"no duration", func(s *Settings) { s.Duration = 0 }, "duration"},
		{"no model", func(s *Settings) { s.Model = "" }, "model"},
		{"empty list", func(s *Settings) { s.NumCtx = nil }, "at least one value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings()
			tc.change(&s)
			err := s.Validate(sizes)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestScenariosRestartOncePerSetting(t *testing.T) {
	s := settings()
	s.NumCtx = []int{512, 1024}
	got := s.Scenarios()
	if len(got) != 8 {
		t.Fatalf("%d scenarios, want 8", len(got))
	}
	changes := 0
	for i := 1; i < len(got); i++ {
		if got[i].Setting != got[i-1].Setting {
			changes++
		}
	}
	if changes != 3 {
		t.Errorf("%d setting changes, want 3 (one per setting after the first)", changes)
	}
	if got[0].Name() != "p1-ctx512-c1-small" {
		t.Errorf("first scenario %s", got[0].Name())
	}
}

func req(start time.Time, ttft, e2e float64, tokens int, ok bool) Request {
	q := Request{Start: start, OK: ok, TTFTMs: ttft, HasTTFT: ok, E2EMs: e2e, OutputTokens: tokens}
	if ok && tokens > 1 {
		q.TPOTMs = (e2e - ttft) / float64(tokens-1)
		q.TokPerSec = float64(tokens-1) / ((e2e - ttft) / 1000)
	} else if !ok {
		q.ErrorType, q.Error = "500", "boom"
	}
	return q
}

func TestComputeFigures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	reqs := []Request{
		req(t0, 100, 1100, 11, true),
		req(t0.Add(time.Second), 300, 1300, 11, true),
		req(t0.Add(2*time.Second), 0, 5, 0, false),
		req(t0.Add(2*time.Second), 200, 2000, 21, true),
	}
	// The last request ends 4 s after the first start: the window grows
	// from the 2 s duration to 4 s.
	w := DrainedWindow(reqs, 2*time.Second)
	f := Compute(reqs, w, loadreport.SLO{})
	if w.Length() != 4*time.Second {
		t.Errorf("window %v, want 4s", w.Length())
	}
	if f.Requests != 4 || f.Errors != 1 || f.ErrorTypes != "500:1" {
		t.Errorf("counts %+v", f)
	}
	if f.TTFTP50Ms != 200 || f.E2EP50Ms != 1300 {
		t.Errorf("TTFT p50 %v, E2E p50 %v; want 200 and 1300", f.TTFTP50Ms, f.E2EP50Ms)
	}
	if f.OutputTokens != 43 || f.OutputTokPerSec != 43.0/4 || f.ReqPerSec != 3.0/4 {
		t.Errorf("throughput %v tok/s, %v req/s from %d tokens", f.OutputTokPerSec, f.ReqPerSec, f.OutputTokens)
	}
	if want := (10.0 + 10.0 + 20.0/1.8) / 3; f.TokPerSecMean < want-1e-9 || f.TokPerSecMean > want+1e-9 {
		t.Errorf("tok/s mean %v, want %v", f.TokPerSecMean, want)
	}
}

func TestComputeOneRequest(t *testing.T) {
	reqs := []Request{req(time.Unix(0, 0), 10, 500, 10, true)}
	w := DrainedWindow(reqs, time.Second)
	f := Compute(reqs, w, loadreport.SLO{})
	if w.Length() != time.Second || f.OutputTokPerSec != 10 {
		t.Errorf("one request: window %v, %v tok/s; want 1s and 10", w.Length(), f.OutputTokPerSec)
	}
}

func TestStoreAppendLoadResume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	st, err := Create(dir, Header{Settings: settings()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, Header{}); err == nil {
		t.Error("a second run was created in the same folder")
	}
	sc := Scenario{Setting: Setting{1, 512}, Concurrency: 1, PromptSize: "small"}
	reqs := []Request{{Scenario: sc.Name(), Attempt: "a1", OK: true, E2EMs: 5}}
	if err := st.Append(Result{Scenario: sc, Name: sc.Name(), Attempt: "a1", Status: StatusOK}, reqs); err != nil {
		t.Fatal(err)
	}
	// An interrupted scenario: requests without a result, and a torn line.
	sc2 := Scenario{Setting: Setting{1, 512}, Concurrency: 2, PromptSize: "small"}
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	f, _ := os.OpenFile(filepath.Join(dir, RequestsFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"scenario":"` + sc2.Name() + `","attempt":"lost","ok":true}` + "\n" + `{"scenario":"torn`)
	f.Close()
	f, _ = os.OpenFile(filepath.Join(dir, ResultsFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"scenario":"torn`)
	f.Close()

	st2, h, err := Resume(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if h.Settings.Model != "m" || !st2.Done(sc.Name()) || st2.Done(sc2.Name()) {
		t.Fatalf("resume: model %q, done %v/%v", h.Settings.Model, st2.Done(sc.Name()), st2.Done(sc2.Name()))
	}
	if err := st2.Append(Result{Scenario: sc2, Name: sc2.Name(), Attempt: "a2", Status: StatusOOM, Note: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	_, results, got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[1].Status != StatusOOM {
		t.Errorf("results %+v", results)
	}
	if len(got) != 1 || got[0].Attempt != "a1" {
		t.Errorf("requests of finished attempts only: got %+v", got)
	}
	csv, _ := os.ReadFile(filepath.Join(dir, ResultsCSV))
	if lines := strings.Count(string(csv), "\n"); lines != 3 {
		t.Errorf("results.csv has %d lines, want a header and 2 rows:\n%s", lines, csv)
	}
}

// fakeEngine scripts an engine's behaviour per setting.
type fakeEngine struct {
	mu       sync.Mutex
	startErr map[int]error // by parallel
	dieIn    string        // scenario name in which the engine exits
	exited   bool
	memLines int
	current  string
	stops    int
}

func (e *fakeEngine) Start(_ context.Context, s Setting) (SettingFacts, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.exited = false
	return SettingFacts{Verified: "yes", RunnerParallel: s.Parallel}, e.startErr[s.Parallel]
}
func (e *fakeEngine) Restartable() bool { return true }
func (e *fakeEngine) Pid() int          { return os.Getpid() }
func (e *fakeEngine) Health() (bool, string, int, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exited, "exit status 2", e.memLines, ""
}
func (e *fakeEngine) PS(context.Context) PSSize { return PSSize{Bytes: 1 << 20} }
func (e *fakeEngine) Stop(context.Context) error {
	e.mu.Lock()
	e.stops++
	e.mu.Unlock()
	return nil
}

func (e *fakeEngine) load(ctx context.Context, sc Scenario, _ func(Window), on func(Request)) error {
	now := time.Now()
	if sc.Name() == e.dieIn {
		e.mu.Lock()
		e.exited = true
		e.mu.Unlock()
		<-ctx.Done() // the runner notices and ends the load
		on(Request{Start: now, ErrorType: "transport", Error: "connection refused", E2EMs: 1})
		return nil
	}
	if sc.Concurrency == 2 && sc.Parallel == 2 {
		on(Request{Start: now, ErrorType: "500", Error: "model requires more system memory", E2EMs: 1})
	}
	if sc.Concurrency == 2 && sc.Parallel == 3 { // the engine's own log says memory ran out
		e.mu.Lock()
		e.memLines++
		e.mu.Unlock()
	}
	on(Request{Start: now, OK: true, TTFTMs: 1, HasTTFT: true, E2EMs: 2, OutputTokens: 2, TokPerSec: 1000})
	return nil
}

func TestRunnerRecordsOOMAndCrashAndGoesOn(t *testing.T) {
	s := settings()
	s.NumParallel = []int{4, 2, 1, 3}
	eng := &fakeEngine{startErr: map[int]error{4: &SettingError{Status: StatusOOM, Err: errors.New("memory")}},
		dieIn: "p1-ctx512-c1-small"}
	st, err := Create(t.TempDir(), Header{Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	r := &Runner{Settings: s, Engine: eng, Store: st, Load: eng.load, Log: &log, MemInterval: 10 * time.Millisecond}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, results, _, err := Load(st.Dir())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, res := range results {
		got[res.Name] = res.Status
	}
	want := map[string]string{
		"p4-ctx512-c1-small": StatusOOM, "p4-ctx512-c2-small": StatusOOM, // the engine could not load
		// An error response that speaks of memory is no evidence: the
		// engine neither logged it nor exited, so the errors are counted.
		"p2-ctx512-c1-small": StatusOK, "p2-ctx512-c2-small": StatusOK,
		"p1-ctx512-c1-small": StatusCrash, "p1-ctx512-c2-small": StatusSkipped, // exited, no memory said
		"p3-ctx512-c1-small": StatusOK, "p3-ctx512-c2-small": StatusOOM, // the engine's log said memory; the matrix went on
	}
	for name, st := range want {
		if got[name] != st {
			t.Errorf("%s: %q, want %q", name, got[name], st)
		}
	}
	if eng.stops == 0 {
		t.Error("the engine was never stopped")
	}
}

func TestRunnerInterruptedRecordsNothingOfTheScenario(t *testing.T) {
	s := settings()
	st, err := Create(t.TempDir(), Header{Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	eng := &fakeEngine{}
	load := func(ctx context.Context, sc Scenario, onWindow func(Window), on func(Request)) error {
		if sc.Concurrency == 2 {
			cancel()
			<-ctx.Done()
		}
		return eng.load(ctx, sc, onWindow, on)
	}
	r := &Runner{Settings: s, Engine: eng, Store: st, Load: load, Log: &strings.Builder{}, MemInterval: 10 * time.Millisecond}
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v, want context.Canceled", err)
	}
	_, results, _, _ := Load(st.Dir())
	if len(results) != 1 || results[0].Name != "p1-ctx512-c1-small" {
		t.Errorf("results after the interrupt: %+v", results)
	}
}

func TestProgressETA(t *testing.T) {
	var b strings.Builder
	p := NewProgress(&b, false, 10*time.Second)
	p.Begin(4, 1)
	if eta := p.ETA(); eta != 30*time.Second {
		t.Errorf("ETA before any scenario %v, want 30s (3 left × 10s)", eta)
	}
	p.Start("x")
	p.Finish(Result{})
	p.End()
	if !strings.Contains(b.String(), "1/4") {
		t.Errorf("progress line %q", b.String())
	}
}

func TestResumeRetriesFailedOnlyWhenAsked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	st, err := Create(dir, Header{Settings: settings()})
	if err != nil {
		t.Fatal(err)
	}
	ok := Scenario{Setting: Setting{1, 512}, Concurrency: 1, PromptSize: "small"}
	oom := Scenario{Setting: Setting{2, 512}, Concurrency: 1, PromptSize: "small"}
	for _, r := range []Result{{Scenario: ok, Name: ok.Name(), Status: StatusOK}, {Scenario: oom, Name: oom.Name(), Status: StatusOOM}} {
		if err := st.Append(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	search := Capacity{Name: "p4-ctx512-capacity-small", Status: StatusCrash}
	if err := st.AppendCapacity(search); err != nil {
		t.Fatal(err)
	}
	for _, retry := range []bool{false, true} {
		st, _, err := Resume(dir, retry)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Done(ok.Name()) || st.Done(oom.Name()) != !retry || st.Done(search.Name) != !retry {
			t.Errorf("retry %v: done ok %v, oom %v, crashed search %v", retry, st.Done(ok.Name()), st.Done(oom.Name()), st.Done(search.Name))
		}
	}
}

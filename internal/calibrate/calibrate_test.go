package calibrate

import (
	"bytes"
	"context"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/matrix"
	"github.com/tokentrace/tokentrace/internal/simulator"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// simEngine is a matrix.Engine that serves the simulator on one port,
// restarted with the setting's slots, and logs a known KV cache.
type simEngine struct {
	prof    simulator.Profile
	url     string
	mu      sync.Mutex
	sim     *simulator.Server
	srv     *http.Server
	done    chan struct{}
	started []matrix.Setting
}

func (e *simEngine) Start(_ context.Context, s matrix.Setting) (matrix.SettingFacts, error) {
	e.Stop(context.Background())
	sim, err := simulator.New(simulator.Config{CustomProfile: &e.prof, Parallel: s.Parallel, ContextLength: s.NumCtx})
	if err != nil {
		return matrix.SettingFacts{}, err
	}
	l, err := net.Listen("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		sim.Close()
		return matrix.SettingFacts{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sim, e.srv, e.done = sim, &http.Server{Handler: sim}, make(chan struct{})
	go func(srv *http.Server, done chan struct{}) { srv.Serve(l); close(done) }(e.srv, e.done)
	e.started = append(e.started, s)
	cells := s.Parallel * s.NumCtx
	return matrix.SettingFacts{Verified: "yes", ServerLoadS: 0.25, RunnerLog: &backend.RunnerArgs{
		Parallel: s.Parallel, CtxSize: cells, Cells: cells, KVBytes: int64(cells) * 512}}, nil
}

func (e *simEngine) Stop(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
		<-e.done
		e.sim.Close()
		e.srv = nil
	}
	return nil
}

func (e *simEngine) Restartable() bool                   { return true }
func (e *simEngine) Pid() int                            { return 0 }
func (e *simEngine) Health() (bool, string, int, string) { return false, "", 0, "" }
func (e *simEngine) PS(context.Context) matrix.PSSize    { return matrix.PSSize{} }

// A whole calibration against the simulator: what it runs and records is
// checked, not how close the fit comes (that depends on the machine's load).
func TestRunAgainstTheSimulator(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	eng := &simEngine{prof: simulator.Profiles["tiny"], url: url}
	cfg := Config{Engine: eng, URL: url, Model: "tiny:latest", Parallel: []int{1, 2}, NumCtx: 512,
		PromptWords: []int{4, 40}, MaxTokens: 6, Rounds: 2, Base: simulator.Profiles["tiny"],
		JoinWords: 80, JoinDelay: 20 * time.Millisecond, JoinRounds: 3,
		HeldOut: []Scenario{{Parallel: 2, Concurrency: 2, PromptWords: 20}}, HeldOutRounds: 3, HeldOutTimeScale: 0.5,
		// A precision no engine reaches: the engine runs the most rounds,
		// and the simulator as many.
		HeldOutMaxRounds: 4, HeldOutPrecision: 1e-9}
	cfg.Base.Name = "fitted"
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(eng.started) != 2 || eng.started[0] != (matrix.Setting{Parallel: 1, NumCtx: 512}) || eng.started[1].Parallel != 2 {
		t.Errorf("engine settings %v, want p1 then p2 at 512", eng.started)
	}
	var names []string
	for _, o := range res.Probes {
		names = append(names, o.Scenario.String())
		if o.Requests != 2*o.Scenario.Concurrency && o.Scenario.DelayMs == 0 {
			t.Errorf("probe %s: %d requests, want %d", o.Scenario, o.Requests, 2*o.Scenario.Concurrency)
		}
	}
	if got := strings.Join(names, " "); got != "p1-c1-w4 p1-c1-w40 p2-c1-w4 p2-c1-w40 p2-c2-w4 p2-c2-w80-f80-d20" {
		t.Errorf("probes %s", got)
	}
	// The join probe sends its second request the delay after the round starts.
	join := res.Probes[len(res.Probes)-1].Observations
	if len(join) != 6 {
		t.Errorf("join probe: %d requests, want 2 in each of 3 rounds", len(join))
	}
	for i := 0; i+1 < len(join); i += 2 {
		if d := join[i+1].Start; d < 20*time.Millisecond {
			t.Errorf("join probe round %d: second request sent %v after the round started, want at least 20ms", join[i].Round, d)
		}
	}
	if len(res.HeldOut) != 1 || res.HeldOut[0].Real.Requests != 8 || res.HeldOut[0].Sim.Requests != 8 || res.HeldOut[0].Sim.Rounds != 4 {
		t.Fatalf("held out %+v", res.HeldOut)
	}
	// Every request's timeline is kept: its round, and a time for each of
	// its chunks after it was sent.
	for _, o := range res.HeldOut[0].Real.Observations {
		if len(o.Chunks) == 0 || o.Chunks[0] < o.Start || o.Round < 0 || o.Round > 3 {
			t.Errorf("held-out request: round %d, sent at %v, chunks %v", o.Round, o.Start, o.Chunks)
		}
		// The engine's own timings are kept too.
		if o.Eval <= 0 || o.PromptEval <= 0 {
			t.Errorf("held-out request: prompt eval %v, eval %v from the engine, want both", o.PromptEval, o.Eval)
		}
	}
	if r := res.Params.LateJoinRate; r < 0 || r > 1 || r != res.Profile.LateJoinRate {
		t.Errorf("late join rate %v, profile's %v", r, res.Profile.LateJoinRate)
	}
	if r := res.Params.LateJoinRateTogether; r < 0 || r > 1 || r != res.Profile.LateJoinRateTogether {
		t.Errorf("together late join rate %v, profile's %v", r, res.Profile.LateJoinRateTogether)
	}
	p := res.Profile
	if p.Name != "fitted" || p.Model != "tiny:latest" || p.ContextLength != 512 || p.KVBytesPerToken != 512 ||
		p.LoadTime.Seconds() != 0.25 || res.Params.Loads != 2 {
		t.Errorf("profile %+v", p)
	}
	// The engine is the simulator: the same prompts count the same tokens
	// but for the digits of each prompt's serial number.
	if p.PromptTokenRatio < 0.8 || p.PromptTokenRatio > 1.25 || math.Abs(p.PromptTokenOffset) > 5 {
		t.Errorf("prompt tokens: engine = %g + %g × simulator, want about 0 + 1", p.PromptTokenOffset, p.PromptTokenRatio)
	}
	if _, err := simulator.UnmarshalProfile(must(simulator.MarshalProfile(p))); err != nil {
		t.Errorf("the fitted profile does not load: %v", err)
	}
	var report bytes.Buffer
	if err := WriteReport(&report, cfg, res, "test"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**simulation**", "| p2-c2-w20 |", "the engine's log: KV cache size / cells", "Largest held-out error",
		"| late join rate |", "| late join rate together |", "| p2-c2-w80-f80-d20 |", "Held-out scenarios: 3 rounds each on the engine, and more, up to 4, while the standard error",
		"the simulator ran as many rounds, at time scale 0.5", "| p2-c2-w20 | 4 |"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Engine: &simEngine{}, URL: "http://x", Model: "m", Parallel: []int{1, 2}, NumCtx: 512,
		PromptWords: []int{4, 40}, MaxTokens: 6, Rounds: 1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"one prompt length", func(c *Config) { c.PromptWords = []int{4} }, "at least 2"},
		{"one busy count", func(c *Config) { c.Parallel = []int{1} }, "two numbers of busy slots"},
		{"held out parallel not probed", func(c *Config) { c.HeldOut = []Scenario{{Parallel: 3, Concurrency: 1, PromptWords: 5}} }, "must be probed"},
		{"max tokens", func(c *Config) { c.MaxTokens = 1 }, "max tokens"},
		{"no engine", func(c *Config) { c.Engine = nil }, "no engine"},
		{"join probe without a delay", func(c *Config) { c.JoinWords, c.JoinRounds = 100, 2 }, "join probe delay"},
		{"join probe without rounds", func(c *Config) { c.JoinWords, c.JoinDelay = 100, time.Second }, "join probe rounds"},
		{"negative held-out rounds", func(c *Config) { c.HeldOutRounds = -1 }, "held-out rounds"},
		{"negative held-out max rounds", func(c *Config) { c.HeldOutMaxRounds = -1 }, "held-out max rounds"},
		{"held-out precision of 1", func(c *Config) { c.HeldOutPrecision = 1 }, "held-out precision"},
		{"negative held-out precision", func(c *Config) { c.HeldOutPrecision = -0.1 }, "held-out precision"},
		{"held-out time scale above 1", func(c *Config) { c.HeldOutTimeScale = 2 }, "held-out time scale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// The decode step is the median gap, so one long step (another slot's
// prompt read in the same batch) does not move it; when most chunks carry
// several tokens there is no step to read.
func TestMedianStep(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		gaps   []time.Duration
		tokens int
		want   time.Duration
	}{
		{"steady with one long step", []time.Duration{10 * ms, 10 * ms, 600 * ms, 11 * ms, 10 * ms}, 6, 10 * ms},
		{"even count", []time.Duration{10 * ms, 12 * ms, 14 * ms, 600 * ms}, 5, 13 * ms},
		{"chunks of several tokens", []time.Duration{20 * ms, 20 * ms}, 8, 0},
		{"no gaps", nil, 1, 0},
	} {
		if got := medianStep(tc.gaps, tc.tokens); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A held-out scenario simulated at a time scale has every timing divided by
// it, and its summary made again from them.
func TestUnscaled(t *testing.T) {
	ms := time.Millisecond
	o := summarize(Scenario{Parallel: 2, Concurrency: 2, PromptWords: 8}, []Observation{
		{TTFT: 100 * ms, TPOT: 10 * ms, Step: 10 * ms, Start: ms, Chunks: []time.Duration{101 * ms, 111 * ms}},
		{TTFT: 300 * ms, TPOT: 20 * ms, Step: 20 * ms, Chunks: []time.Duration{300 * ms, 320 * ms}}})
	got := unscaled(o, 0.25)
	if got.TTFTP50Ms != 800 || got.StepP50Ms != 60 || got.TokPerSecAvg != (25+12.5)/2 {
		t.Errorf("unscaled summary: TTFT p50 %v ms, step %v ms, %v tok/s; want 800, 60, 18.75", got.TTFTP50Ms, got.StepP50Ms, got.TokPerSecAvg)
	}
	if ob := got.Observations[0]; ob.Start != 4*ms || ob.Chunks[1] != 444*ms || o.Observations[0].Chunks[1] != 111*ms {
		t.Errorf("unscaled timeline %+v (the original's chunks must stay)", ob)
	}
	if same := unscaled(o, 1); same.TTFTP50Ms != o.TTFTP50Ms {
		t.Errorf("scale 1 changed the outcome")
	}
}

// The standard error over rounds of the rounds' means, as a share of their
// mean: a coin tossed once a round shows in it, a spread within rounds
// does not.
func TestRoundErrors(t *testing.T) {
	ms := time.Millisecond
	var obs []Observation
	// Rounds alternate 10 and 20 tok/s (two requests each, equal), TTFT
	// 100 and 300 ms within every round.
	for r, tpot := range []time.Duration{100 * ms, 50 * ms, 100 * ms, 50 * ms} {
		obs = append(obs, Observation{Round: r, TTFT: 100 * ms, TPOT: tpot}, Observation{Round: r, TTFT: 300 * ms, TPOT: tpot})
	}
	o := summarize(Scenario{Parallel: 2, Concurrency: 2, PromptWords: 8}, obs)
	ttft, tok := o.RoundErrors()
	// tok/s round means 10, 20, 10, 20: mean 15, standard deviation
	// sqrt(100/3), standard error sqrt(100/3)/2.
	if want := math.Sqrt(100.0/3) / 2 / 15; o.Rounds != 4 || ttft != 0 || math.Abs(tok-want) > 1e-12 {
		t.Errorf("%d rounds, standard errors %v / %v, want 4, 0 / %v", o.Rounds, ttft, tok, want)
	}
	one := summarize(o.Scenario, obs[:2])
	if ttft, tok := one.RoundErrors(); !math.IsInf(ttft, 1) || !math.IsInf(tok, 1) {
		t.Errorf("one round: standard errors %v / %v, want +Inf (unknown)", ttft, tok)
	}
}

// The engine's side of a held-out scenario stops adding rounds when its
// figures are precise enough, and never runs fewer than the least.
func TestRunUntilPrecise(t *testing.T) {
	prof := simulator.Profiles["tiny"]
	sc := Scenario{Parallel: 1, Concurrency: 1, PromptWords: 4}
	err := withSimulator(prof, 1, 512, 0.1, func(url string) error {
		p := &prober{client: &http.Client{Timeout: time.Minute}, url: url, model: prof.Model, maxTokens: 3}
		var asked []int
		o, err := p.runUntil(context.Background(), sc, 2, 6, func(o Outcome) bool {
			asked = append(asked, o.Rounds)
			return o.Rounds >= 3
		})
		if err != nil {
			return err
		}
		if o.Rounds != 3 || o.Requests != 3 || !slices.Equal(asked, []int{2, 3}) {
			t.Errorf("%d rounds, %d requests, asked after %v rounds; want 3, 3, [2 3]", o.Rounds, o.Requests, asked)
		}
		o, err = p.runUntil(context.Background(), sc, 2, 3, func(Outcome) bool { return false })
		if err != nil {
			return err
		}
		if o.Rounds != 3 {
			t.Errorf("never precise: %d rounds, want the most, 3", o.Rounds)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

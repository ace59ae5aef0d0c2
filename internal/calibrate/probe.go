package calibrate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokentrace/tokentrace/internal/stats"
	"github.com/tokentrace/tokentrace/internal/stream"
)

// Scenario is one probe: Concurrency requests sent together, Rounds times,
// to an engine with Parallel slots, each with a new prompt of about
// PromptWords words (no prefix cache hits) and MaxTokens output tokens.
// A join probe (DelayMs > 0) gives the first request a prompt of
// FirstWords words and sends the others DelayMs milliseconds after it, so
// they reach the runner while it reads the first one's prompt and never
// share its first batch.
type Scenario struct {
	Parallel    int `json:"parallel"`
	Concurrency int `json:"concurrency"`
	PromptWords int `json:"prompt_words"`
	FirstWords  int `json:"first_prompt_words,omitempty"`
	DelayMs     int `json:"delay_ms,omitempty"`
}

func (s Scenario) String() string {
	if s.DelayMs > 0 {
		return fmt.Sprintf("p%d-c%d-w%d-f%d-d%d", s.Parallel, s.Concurrency, s.PromptWords, s.FirstWords, s.DelayMs)
	}
	return fmt.Sprintf("p%d-c%d-w%d", s.Parallel, s.Concurrency, s.PromptWords)
}

// Observation is one measured request.
type Observation struct {
	TTFT time.Duration
	// TPOT is the mean time per output token after the first.
	TPOT time.Duration
	// Step is the median time between output chunks: one decode step with
	// every slot of the scenario generating. The mean (TPOT) also carries
	// the steps in which another slot read its prompt, which the simulator
	// plays by itself; 0 when fewer than half the chunks carry one token.
	Step         time.Duration
	PromptTokens int
	OutputTokens int
	// Round is the round the request was sent in; Start is when it was
	// sent and Chunks when each output chunk arrived, both from the start
	// of its round (the timeline that shows which batch each request's
	// tokens came out of).
	Round  int
	Start  time.Duration
	Chunks []time.Duration
	// PromptEval and Eval are the engine's own prompt_eval_duration and
	// eval_duration (0 when it sent none): the last chunk less Eval is
	// when the engine sampled the first token, even when a byte-level
	// vocabulary held that token back for a later chunk.
	PromptEval, Eval time.Duration
}

// MarshalJSON writes an observation with its timings in milliseconds.
func (o Observation) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)/100) / 10 }
	chunks := make([]float64, len(o.Chunks))
	for i, c := range o.Chunks {
		chunks[i] = ms(c)
	}
	return json.Marshal(struct {
		Round        int       `json:"round"`
		StartMs      float64   `json:"start_ms"`
		TTFTMs       float64   `json:"ttft_ms"`
		StepMs       float64   `json:"step_ms"`
		PromptTokens int       `json:"prompt_tokens"`
		OutputTokens int       `json:"output_tokens"`
		ChunksMs     []float64 `json:"chunks_ms"`
		PromptEvalMs float64   `json:"prompt_eval_ms,omitempty"`
		EvalMs       float64   `json:"eval_ms,omitempty"`
	}{o.Round, ms(o.Start), ms(o.TTFT), ms(o.Step), o.PromptTokens, o.OutputTokens, chunks, ms(o.PromptEval), ms(o.Eval)})
}

// Outcome summarises a scenario's requests.
type Outcome struct {
	Scenario     Scenario `json:"scenario"`
	Rounds       int      `json:"rounds"`
	Requests     int      `json:"requests"`
	TTFTP50Ms    float64  `json:"ttft_p50_ms"`
	TokPerSecAvg float64  `json:"tok_per_s_mean"`
	// StepP50Ms is the median of the requests' decode steps (Observation.Step).
	StepP50Ms    float64       `json:"step_p50_ms"`
	PromptTokens float64       `json:"prompt_tokens_mean"`
	Observations []Observation `json:"requests_timeline,omitempty"`
}

func summarize(sc Scenario, obs []Observation) Outcome {
	o := Outcome{Scenario: sc, Requests: len(obs), Observations: obs}
	var ttft, speed, step []float64
	var prompt float64
	for _, ob := range obs {
		o.Rounds = max(o.Rounds, ob.Round+1)
		ttft = append(ttft, float64(ob.TTFT)/float64(time.Millisecond))
		if ob.Step > 0 {
			step = append(step, float64(ob.Step)/float64(time.Millisecond))
		}
		if ob.TPOT > 0 {
			speed = append(speed, float64(time.Second)/float64(ob.TPOT))
		}
		prompt += float64(ob.PromptTokens)
	}
	o.TTFTP50Ms = stats.Quantile(ttft, 0.5)
	o.TokPerSecAvg = stats.Summarize(speed).Mean
	if len(step) > 0 {
		o.StepP50Ms = stats.Quantile(step, 0.5)
	}
	if len(obs) > 0 {
		o.PromptTokens = prompt / float64(len(obs))
	}
	return o
}

// RoundErrors are the standard errors of the mean over rounds of each
// round's mean TTFT and of its mean tok/s, each as a fraction of that mean:
// how far another run of as many rounds could move the figures. A coin the
// engine tosses once a round (rule 6's late joins) shows here. +Inf with
// fewer than two rounds.
func (o Outcome) RoundErrors() (ttft, tokPerSec float64) {
	var ttfts, toks []float64
	for _, round := range byRound(o.Observations) {
		var t, k []float64
		for _, ob := range round {
			t = append(t, float64(ob.TTFT))
			if ob.TPOT > 0 {
				k = append(k, float64(time.Second)/float64(ob.TPOT))
			}
		}
		ttfts = append(ttfts, stats.Summarize(t).Mean)
		if len(k) > 0 {
			toks = append(toks, stats.Summarize(k).Mean)
		}
	}
	return relativeStandardError(ttfts), relativeStandardError(toks)
}

// relativeStandardError is the standard error of the mean of xs as a
// fraction of that mean; +Inf with fewer than two values or a mean of 0.
func relativeStandardError(xs []float64) float64 {
	mean := stats.Summarize(xs).Mean
	if len(xs) < 2 || mean == 0 {
		return math.Inf(1)
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	n := float64(len(xs))
	return math.Sqrt(ss/(n-1)/n) / math.Abs(mean)
}

// prober sends probe requests to an Ollama API.
type prober struct {
	client    *http.Client
	url       string
	model     string
	maxTokens int
	seq       int // makes every prompt new
	mu        sync.Mutex
}

// words is the text prompts are made of.
var words = strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards quietly judge " +
	"boxing matches under pale moonlight and every reader counts how many tokens a sentence costs")

// prompt is a new prompt of n words: its first word differs from every
// earlier prompt's, so no slot's cache holds any of it.
func (p *prober) prompt(n int) string {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "r%d", seq)
	for i := 1; i < n; i++ {
		b.WriteByte(' ')
		b.WriteString(words[(seq*7+i)%len(words)])
	}
	return b.String()
}

// one sends one /api/chat request and measures it; round0 is when its
// round started.
func (p *prober) one(ctx context.Context, text string, round0 time.Time) (Observation, error) {
	body, _ := json.Marshal(map[string]any{"model": p.model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": text}},
		"options":  map[string]any{"num_predict": p.maxTokens, "temperature": 0, "seed": 1}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/api/chat", bytes.NewReader(body))
	if err != nil {
		return Observation{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	var chunks []time.Duration
	m := stream.NewMeter(stream.Config{API: stream.APIOf("/api/chat"), Start: start, NoChunkText: true,
		OnChunk: func(ev stream.ChunkEvent) { chunks = append(chunks, ev.At.Sub(round0)) }})
	resp, err := p.client.Do(req)
	if err != nil {
		m.Finish(err)
		return Observation{}, fmt.Errorf("probe request: %w", err)
	}
	defer resp.Body.Close()
	m.Response(resp.StatusCode, resp.Header.Get("Content-Type"))
	_, err = io.Copy(m, resp.Body)
	res := m.Finish(err)
	if err != nil || !res.OK() {
		return Observation{}, fmt.Errorf("probe request: status %d, %s %s %v", resp.StatusCode, res.ErrorType, res.Error, err)
	}
	ttft, ok := res.TTFT()
	if !ok {
		return Observation{}, fmt.Errorf("probe request: no output token")
	}
	ob := Observation{TTFT: ttft, PromptTokens: res.InputTokens, OutputTokens: res.OutputTokens,
		Start: start.Sub(round0), Chunks: chunks}
	if o := res.Ollama; o != nil {
		ob.PromptEval, ob.Eval = time.Duration(o.PromptEvalDuration), time.Duration(o.EvalDuration)
	}
	if tpot, ok := res.TPOT(); ok {
		ob.TPOT = tpot
		ob.Step = medianStep(res.Gaps, res.OutputTokens)
	}
	return ob, nil
}

// medianStep is the median gap between output chunks, when at least half
// the chunks carry a single token (a chunk holding several tokens, as
// when a byte-level vocabulary splits a character, spans several steps).
func medianStep(gaps []time.Duration, tokens int) time.Duration {
	if len(gaps) == 0 || 2*(len(gaps)+1) < tokens {
		return 0
	}
	s := slices.Clone(gaps)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// run sends the scenario's rounds: Concurrency requests at once, the next
// round when all have ended.
func (p *prober) run(ctx context.Context, sc Scenario, rounds int) (Outcome, error) {
	return p.runUntil(ctx, sc, rounds, rounds, nil)
}

// runUntil sends at least minRounds of the scenario's rounds, and more, up
// to maxRounds, until enough says the outcome so far needs no more.
func (p *prober) runUntil(ctx context.Context, sc Scenario, minRounds, maxRounds int, enough func(Outcome) bool) (Outcome, error) {
	var obs []Observation
	for r := 0; r < maxRounds; r++ {
		if r >= minRounds && enough(summarize(sc, obs)) {
			break
		}
		got := make([]Observation, sc.Concurrency)
		errs := make([]error, sc.Concurrency)
		var wg sync.WaitGroup
		texts := make([]string, sc.Concurrency)
		for i := range texts {
			texts[i] = p.prompt(sc.PromptWords)
			if i == 0 && sc.FirstWords > 0 {
				texts[i] = p.prompt(sc.FirstWords)
			}
		}
		round0 := time.Now()
		for i, text := range texts {
			if i == 1 && sc.DelayMs > 0 {
				select {
				case <-time.After(time.Duration(sc.DelayMs) * time.Millisecond):
				case <-ctx.Done():
				}
			}
			wg.Go(func() { got[i], errs[i] = p.one(ctx, text, round0) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return Outcome{}, fmt.Errorf("scenario %s: %w", sc, err)
			}
			got[i].Round = r
			obs = append(obs, got[i])
		}
	}
	return summarize(sc, obs), nil
}

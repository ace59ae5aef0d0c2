package calibrate

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/tokentrace/tokentrace/internal/simulator"
)

// Bound is the held-out error a calibration should stay within.
const Bound = 0.20

// WriteReport writes the calibration as Markdown: the fitted profile, how
// well each line fits, and the held-out scenarios, engine beside simulator.
// load is the machine's load while it ran, as the caller measured it.
func WriteReport(w io.Writer, cfg Config, res *Result, load string) error {
	p, prof := res.Params, res.Profile
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	fmt.Fprintf(w, "# Calibration of the simulator to %s\n\n", cfg.Model)
	fmt.Fprintf(w, "Started %s, took %s. Machine load: %s.\n\n", res.Started.UTC().Format(time.RFC3339), res.Took.Round(time.Second), load)
	fmt.Fprintf(w, "Probes: prompts of %v words at concurrency 1, then every concurrency up to the slots, at parallel %v each; "+
		"%d output tokens, %d rounds each, context %d per slot, every prompt new (no prefix cache hits).",
		cfg.PromptWords, cfg.Parallel, cfg.MaxTokens, cfg.Rounds, cfg.NumCtx)
	if cfg.JoinWords > 0 {
		fmt.Fprintf(w, " At each parallel setting above 1, a join probe, %d rounds: a prompt of %d words, longer than one batch, and one of %d words sent %v after it (not in the decode fit).",
			cfg.JoinRounds, cfg.JoinWords, cfg.joinFollowerWords(), cfg.JoinDelay)
	}
	fmt.Fprintf(w, " Held-out scenarios: %d rounds each on the engine", cfg.heldOutRounds())
	if most := cfg.heldOutMaxRounds(); most > cfg.heldOutRounds() {
		fmt.Fprintf(w, ", and more, up to %d, while the standard error of its round means of TTFT or tok/s was above %.0f%% of the mean", most, 100*cfg.HeldOutPrecision)
	}
	fmt.Fprintf(w, "; the simulator ran as many rounds")
	if sc := cfg.HeldOutTimeScale; sc > 0 && sc != 1 {
		fmt.Fprintf(w, ", at time scale %g, its timings divided by it", sc)
	}
	fmt.Fprintf(w, ".\n\n")
	fmt.Fprintf(w, "## Fitted profile (`%s`)\n\n", prof.Name)
	fmt.Fprintf(w, "| parameter | value | from |\n|---|---:|---|\n")
	fmt.Fprintf(w, "| step base | %s | decode step (median gap between a request's tokens) = base + busy slots × per-seq + context tokens × per-context (relative least squares, R² %.3f, %d points%s) |\n", ms(prof.StepBase), p.Decode.Fit.R2, p.Decode.Fit.N, quality(p.Decode.Fit))
	fmt.Fprintf(w, "| step per sequence | %s | per-seq of the same fit |\n", ms(prof.StepPerSeq))
	fmt.Fprintf(w, "| decode per context token | %.2f µs | per-context of the same fit: each token a decoding slot attends to |\n", us(prof.DecodePerContextToken))
	fmt.Fprintf(w, "| prefill per token | %s | TTFT by prompt tokens x at concurrency 1 = a + b·x + c·x²/2: b (relative least squares, R² %.3f, %d points%s) |\n", ms(prof.PrefillPerToken), p.Prefill.Fit.R2, p.Prefill.Fit.N, quality(p.Prefill.Fit))
	fmt.Fprintf(w, "| attention per token pair | %.2f µs | c of the same curve: each earlier token a prompt token attends to |\n", us(prof.AttentionPerPair))
	fmt.Fprintf(w, "| request overhead | %s | a of that curve less one step of one sequence |\n", ms(prof.RequestOverhead))
	fmt.Fprintf(w, "| load time | %s | the engine's load_duration (else the load as timed), mean of %d starts |\n", ms(prof.LoadTime), res.Params.Loads)
	fmt.Fprintf(w, "| KV bytes per token per slot | %d | %s |\n", prof.KVBytesPerToken, kvSource(res))
	fmt.Fprintf(w, "| late join rate | %.2f | rounds of the probes with several requests in which the requests that reached the runner during the first request's first batch joined the batch after next, not the next (the first request one token further ahead of their first token): %s |\n",
		prof.LateJoinRate, joinsOf(p.Joins.Apart))
	fmt.Fprintf(w, "| late join rate together | %.2f | the same, in the rounds whose later requests had prompts of more than one batch and were sent within %v of the first (the join probe): %s |\n",
		prof.LateJoinRateTogether, simulator.TogetherWindow, joinsOf(p.Joins.Together))
	fmt.Fprintf(w, "| prompt tokens | engine = %.1f + %.3f × simulator | %s |\n\n", prof.PromptTokenOffset, prof.PromptTokenRatio, tokenSource(res.Tokens))
	fmt.Fprintf(w, "## What the engine said it ran\n\n| parallel | verified | engine log |\n|---:|---|---|\n")
	for _, par := range cfg.Parallel {
		f := res.Facts[par]
		said := "–"
		if f.RunnerLog != nil {
			said = f.RunnerLog.Summary()
		}
		fmt.Fprintf(w, "| %d | %s | %s |\n", par, f.Verified, said)
	}
	fmt.Fprintf(w, "\n## Probes (used by the fit)\n\n| scenario | requests | prompt tokens | TTFT p50 | tok/s mean | decode step p50 | late joins |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range res.Probes {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.1f ms | %.1f | %.1f ms | %s |\n", o.Scenario, o.Requests, o.PromptTokens, o.TTFTP50Ms, o.TokPerSecAvg, o.StepP50Ms, joinCell(o, cfg.batchSize()))
	}
	fmt.Fprintf(w, "\n## Held-out scenarios: engine vs simulation\n\n"+
		"The simulator column is a **simulation** with the fitted profile, not a measurement of the engine. "+
		"Errors are (simulated − measured) / measured; the bound is ±%.0f%%.\n\n", 100*Bound)
	fmt.Fprintf(w, "| scenario | rounds | TTFT p50 engine | TTFT p50 simulated | error | tok/s engine | tok/s simulated | error | engine's standard error TTFT / tok/s | decode step p50 engine / simulated | late joins engine / simulated |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range res.HeldOut {
		ttftSE, tokSE := c.Real.RoundErrors()
		fmt.Fprintf(w, "| %s | %d | %.1f ms | %.1f ms | %s | %.1f | %.1f | %s | %s / %s | %.1f / %.1f ms | %s / %s |\n", c.Real.Scenario, c.Real.Rounds, c.Real.TTFTP50Ms, c.Sim.TTFTP50Ms,
			pct(c.TTFTErr), c.Real.TokPerSecAvg, c.Sim.TokPerSecAvg, pct(c.TokPerSecErr), stdErr(ttftSE), stdErr(tokSE),
			c.Real.StepP50Ms, c.Sim.StepP50Ms, joinCell(c.Real, cfg.batchSize()), joinCell(c.Sim, cfg.batchSize()))
	}
	fmt.Fprintf(w, "\nLate joins: rounds in which the requests that reached the runner during the first request's first batch "+
		"joined the batch after next, of the rounds in which they joined the next or the one after (join.go); – for one request a round, or more requests than slots. "+
		"The engine's standard error is that of the mean over its rounds of each round's mean TTFT and tok/s, as a share of that mean: "+
		"how far another run of as many rounds could move the engine's figure.\n")
	worst, which := res.worst()
	verdict := "within"
	if worst > Bound {
		verdict = "outside"
	}
	_, err := fmt.Fprintf(w, "\nLargest held-out error: %.1f%% (%s), %s the ±%.0f%% bound.\n", 100*worst, which, verdict, 100*Bound)
	return err
}

// stdErr is a relative standard error as a percentage, – when there is none.
func stdErr(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

// worst is the largest held-out error and which figure it is, with the
// engine's standard error of that figure.
func (r *Result) worst() (float64, string) {
	worst, at, isTok := 0.0, -1, false
	for i, c := range r.HeldOut {
		if e := math.Abs(c.TTFTErr); e >= worst {
			worst, at, isTok = e, i, false
		}
		if e := math.Abs(c.TokPerSecErr); e >= worst {
			worst, at, isTok = e, i, true
		}
	}
	if at < 0 {
		return 0, "no held-out scenario"
	}
	c := r.HeldOut[at]
	ttftSE, tokSE := c.Real.RoundErrors()
	if isTok {
		return worst, fmt.Sprintf("%s tok/s; the engine's standard error %s", c.Real.Scenario, stdErr(tokSE))
	}
	return worst, fmt.Sprintf("%s TTFT p50; the engine's standard error %s", c.Real.Scenario, stdErr(ttftSE))
}

// WorstError is the largest held-out error, as a fraction.
func (r *Result) WorstError() float64 {
	worst, _ := r.worst()
	return worst
}

func pct(f float64) string { return fmt.Sprintf("%+.1f%%", 100*f) }

func dropped(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d outliers (over 25%% and 3 MADs off a first fit) left out", n)
}

func quality(q Quality) string {
	s := dropped(q.Dropped)
	if q.Clamped {
		s += "; a negative coefficient was refitted as 0"
	}
	return s
}

func kvSource(res *Result) string {
	for _, f := range res.Facts {
		if _, ok := KVFromLog(f.RunnerLog); ok {
			return "the engine's log: KV cache size / cells"
		}
	}
	if res.Params.MemoryLine.N > 0 {
		return fmt.Sprintf("memory after load by KV cells: slope (R² %.3f)", res.Params.MemoryLine.R2)
	}
	return "not measured"
}

func tokenSource(m TokenMap) string {
	if m.Proportional {
		return fmt.Sprintf("the engine's prompt tokens over the simulator's for the same prompt lengths (%d lengths: no line)", m.N)
	}
	return fmt.Sprintf("least squares over the %d prompt lengths, new prompts of the same words sent to both (R² %.4f)", m.N, m.R2)
}

// joinCell is a scenario's late joins of its rounds, as "late/rounds".
func joinCell(o Outcome, batchSize int) string {
	if o.Scenario.Concurrency < 2 || o.Scenario.Concurrency > o.Scenario.Parallel {
		return "–"
	}
	j := o.joins(batchSize).Total()
	return fmt.Sprintf("%d/%d", j.Late, j.Late+j.Next)
}

func joinsOf(j JoinCount) string {
	if j.Late+j.Next == 0 {
		return "no such round; the other kind's rate"
	}
	return fmt.Sprintf("%d of %d", j.Late, j.Late+j.Next)
}

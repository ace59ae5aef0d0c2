package calibrate

import (
	"slices"
	"time"

	"github.com/tokentrace/tokentrace/internal/simulator"
)

// A request sent while the runner computes a batch cannot join that batch;
// the question is whether it joins the next one or the one after. Ollama's
// runner computes each batch holding its lock, and a request needs that
// lock to take a slot (runner/llamarunner/runner.go, processBatch and
// completion). When a batch ends, Go's sync.Mutex wakes the waiting request
// but the runner's loop, already running, usually takes the lock back
// first (a woken waiter does not get the lock handed over until it has
// missed it once: sync.Mutex's starvation mode), so the request joins the
// batch after next; sometimes the woken request wins and joins the next.
//
// The client sees which: the request that got its first token first (the
// leader) has one token (next batch) or two (batch after next) before the
// late request's first token, which comes out of the batch that read the
// end of its prompt. For a decoding leader beside a long prompt that is the
// difference between a stall of one short batch and one of a whole prompt
// chunk.

// How often the woken request wins depends on how it came: the join probes
// measured requests with prompts of more than one batch, sent together to
// an idle runner, joining the next batch about half the time, and every
// other kind (short prompts sent together, long ones sent 300 ms after
// the first, at batch ends where a slot samples or mid-prompt) in about
// one round of six (docs/simulator.md). Joins counts the two apart, so a
// calibration measures each.

// Joins counts the rounds by how the requests that waited came: Together
// when every one of them has a prompt of more than one batch and was sent
// within simulator.TogetherWindow of the first request, Apart otherwise.
type Joins struct {
	Apart    JoinCount `json:"apart"`
	Together JoinCount `json:"together"`
}

// Add adds another count.
func (j Joins) Add(o Joins) Joins {
	return Joins{Apart: j.Apart.Add(o.Apart), Together: j.Together.Add(o.Together)}
}

// Total is both kinds together.
func (j Joins) Total() JoinCount { return j.Apart.Add(j.Together) }

// Rates are the late-join shares of each kind; a kind no round showed
// takes the other's share (nothing better is known), and both are 0 when
// no round showed either.
func (j Joins) Rates() (apart, together float64) {
	apart, together = j.Apart.Rate(), j.Together.Rate()
	switch {
	case j.Apart.Next+j.Apart.Late == 0:
		apart = together
	case j.Together.Next+j.Together.Late == 0:
		together = apart
	}
	return apart, together
}

// JoinCount counts, over rounds where requests joined after the leader's
// first batch, how often they joined the next batch (Next) and how often
// one batch later (Late).
type JoinCount struct {
	Next, Late int
}

// Rate is the share of late joins; 0 when no round showed either.
func (j JoinCount) Rate() float64 {
	if j.Next+j.Late == 0 {
		return 0
	}
	return float64(j.Late) / float64(j.Next+j.Late)
}

// Add adds another count.
func (j JoinCount) Add(o JoinCount) JoinCount {
	return JoinCount{Next: j.Next + o.Next, Late: j.Late + o.Late}
}

// joins counts the rounds of one scenario's observations (Observation.Round
// groups them; each needs its chunk times), by whether the requests other
// than the leader were long prompts sent together with it (batchSize is
// the engine's batch in its tokens). A lead of more than two tokens is
// something else (a request that waited for a slot, with fewer slots than
// requests) and is not counted.
func joins(obs []Observation, batchSize int) Joins {
	var c Joins
	for _, r := range byRound(obs) {
		lead, leader := roundLead(r)
		kind := c.kind(r, leader, batchSize)
		switch lead {
		case 1:
			kind.Next++
		case 2:
			kind.Late++
		}
	}
	return c
}

// kind is the count a round belongs to: Together when every request but
// first has a prompt of more than batchSize engine tokens and all were
// sent within simulator.TogetherWindow of each other.
func (c *Joins) kind(round []Observation, first *Observation, batchSize int) *JoinCount {
	if first == nil || len(round) < 2 {
		return &c.Apart
	}
	lo, hi := round[0].Start, round[0].Start
	for i := range round {
		o := &round[i]
		lo, hi = min(lo, o.Start), max(hi, o.Start)
		if o != first && o.PromptTokens <= batchSize {
			return &c.Apart
		}
	}
	if hi-lo > simulator.TogetherWindow {
		return &c.Apart
	}
	return &c.Together
}

// byRound groups observations by their round.
func byRound(obs []Observation) map[int][]Observation {
	rounds := map[int][]Observation{}
	for _, o := range obs {
		rounds[o.Round] = append(rounds[o.Round], o)
	}
	return rounds
}

// joins counts the outcome's rounds: a join probe's by joinProbe, any
// other's by joins.
func (o Outcome) joins(batchSize int) Joins {
	if o.Scenario.DelayMs > 0 {
		return joinProbe(o.Observations, batchSize)
	}
	return joins(o.Observations, batchSize)
}

// joinProbe counts the rounds of a join probe (Scenario.DelayMs): the
// request that took the runner first (the one sent first, unless another's
// first token came a batch earlier: sent 1 ms apart, either can win) read
// its first batch alone, and the others waited at the end of that batch.
// A follower whose prompt takes fb batches and joins the next batch samples
// fb batches later: when the first request's prompt took b batches, that
// is 1 + fb − b of its tokens before the follower's first; one that missed
// the next batch is one token further behind. The kind is Joins.kind's. A
// round whose follower's prompt is too short to tell (1 + fb − b < 0), or
// whose follower shared the first batch (one token less), is not counted.
func joinProbe(obs []Observation, batchSize int) Joins {
	var c Joins
	size := max(batchSize, 1)
	batches := func(o *Observation) int { return (o.PromptTokens + size - 1) / size }
	for _, r := range byRound(obs) {
		first := &r[0]
		for i := range r {
			if r[i].Start < first.Start {
				first = &r[i]
			}
		}
		if len(r) < 2 || len(first.Chunks) < 3 {
			continue
		}
		tol := medianGap(first.Chunks) / 2
		for i := range r {
			if len(r[i].Chunks) > 0 && r[i].Chunks[0] < first.Chunks[0]-tol {
				first = &r[i]
			}
		}
		b := batches(first)
		if len(first.Chunks) < 3 || b < 1 {
			continue
		}
		tol = medianGap(first.Chunks) / 2
		extra, seen, ok := 0, false, true
		for i := range r {
			o := &r[i]
			if o == first {
				continue
			}
			fb := batches(o)
			if len(o.Chunks) == 0 || fb < 1 || 1+fb-b < 0 {
				ok = false
				break
			}
			if n := tokensAhead(first, o, tol) - (1 + fb - b); !seen || n < extra {
				extra, seen = n, true
			}
		}
		if !ok || !seen {
			continue
		}
		kind := c.kind(r, first, batchSize)
		switch extra {
		case 0:
			kind.Next++
		case 1:
			kind.Late++
		}
	}
	return c
}

func medianGap(chunks []time.Duration) time.Duration {
	gaps := make([]time.Duration, len(chunks)-1)
	for i := range gaps {
		gaps[i] = chunks[i+1] - chunks[i]
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// roundLead is how many tokens the round's leader had sent before the first
// token of the earliest request that started after it (0 when every
// request started in the leader's first batch, or the round cannot tell).
// Chunks closer together than half the leader's median gap count as the
// same batch. It returns the leader too (nil when the round cannot tell).
func roundLead(round []Observation) (int, *Observation) {
	var leader *Observation
	for i := range round {
		if len(round[i].Chunks) == 0 {
			return 0, nil
		}
		if leader == nil || round[i].Chunks[0] < leader.Chunks[0] {
			leader = &round[i]
		}
	}
	if leader == nil || len(leader.Chunks) < 3 {
		return 0, nil
	}
	tol := medianGap(leader.Chunks) / 2
	lead := 0
	for i := range round {
		o := &round[i]
		if o == leader {
			continue
		}
		if n := tokensAhead(leader, o, tol); n > 0 && (lead == 0 || n < lead) {
			lead = n
		}
	}
	return lead, leader
}

// tokensAhead is how many of the leader's chunks came before o's first
// chunk, chunks closer than tol counting as the same batch.
func tokensAhead(leader, o *Observation, tol time.Duration) int {
	n := 0
	for _, t := range leader.Chunks {
		if t < o.Chunks[0]-tol {
			n++
		}
	}
	return n
}

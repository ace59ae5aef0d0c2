package calibrate

import (
	"strings"
	"testing"
	"time"
)

// chunksAt is a request's chunk times: first, then every step.
func chunksAt(first time.Duration, step time.Duration, n int) []time.Duration {
	c := make([]time.Duration, n)
	for i := range c {
		c[i] = first + time.Duration(i)*step
	}
	return c
}

// How many tokens the leader had sent before the late requests' first
// token: 1 when they joined the next batch, 2 the batch after next.
func TestRoundLead(t *testing.T) {
	ms := time.Millisecond
	leader := Observation{Round: 0, Chunks: chunksAt(300*ms, 12*ms, 10)}
	for _, tc := range []struct {
		name   string
		others []Observation
		want   int
	}{
		{"joined the next batch", []Observation{{Chunks: chunksAt(313*ms, 12*ms, 10)}}, 1},
		{"joined the batch after next", []Observation{{Chunks: chunksAt(324*ms, 12*ms, 10)}}, 2},
		{"in the leader's first batch", []Observation{{Chunks: chunksAt(300500*time.Microsecond, 12*ms, 10)}}, 0},
		{"two late, the earlier counts", []Observation{{Chunks: chunksAt(336*ms, 12*ms, 10)}, {Chunks: chunksAt(325*ms, 12*ms, 10)}}, 2},
		{"one with the leader, one late", []Observation{{Chunks: chunksAt(301*ms, 12*ms, 10)}, {Chunks: chunksAt(312*ms, 12*ms, 10)}}, 1},
		{"a request without chunks", []Observation{{}}, 0},
	} {
		// The leader listed last: it is found by its first chunk.
		round := append(append([]Observation(nil), tc.others...), leader)
		if got, _ := roundLead(round); got != tc.want {
			t.Errorf("%s: lead %d, want %d", tc.name, got, tc.want)
		}
	}
}

// joins counts each round once, and no round in which the leader was more
// than two tokens ahead (the others waited for a slot); a round whose later
// request has a prompt of more than one batch and was sent within
// TogetherWindow of the leader counts as together.
func TestJoins(t *testing.T) {
	ms := time.Millisecond
	var obs []Observation
	for r, tc := range []struct {
		late   time.Duration
		prompt int           // the later request's
		sent   time.Duration // after the leader
	}{{12 * ms, 60, 0}, {24 * ms, 60, 0}, {24 * ms, 600, 300 * ms}, {0, 60, 0}, {36 * ms, 60, 0},
		{12 * ms, 600, 0}, {24 * ms, 600, ms}, {12 * ms, 513, 50 * ms}} {
		obs = append(obs, Observation{Round: r, PromptTokens: 600, Chunks: chunksAt(100*ms, 12*ms, 8)},
			Observation{Round: r, PromptTokens: tc.prompt, Start: tc.sent, Chunks: chunksAt(100*ms+tc.late+ms, 12*ms, 8)})
	}
	got := joins(obs, 512)
	if want := (Joins{Apart: JoinCount{Next: 1, Late: 2}, Together: JoinCount{Next: 2, Late: 1}}); got != want {
		t.Errorf("joins %+v, want %+v", got, want)
	}
	if s, m := got.Rates(); s != 2.0/3 || m != 1.0/3 {
		t.Errorf("rates %v / %v, want 2/3 / 1/3", s, m)
	}
	if tot := got.Total(); tot != (JoinCount{Next: 3, Late: 3}) {
		t.Errorf("total %+v", tot)
	}
	if r := (JoinCount{}).Rate(); r != 0 {
		t.Errorf("no rounds: rate %v, want 0", r)
	}
}

// A kind of join that no round showed takes the other kind's rate.
func TestJoinsRatesOneKind(t *testing.T) {
	for _, tc := range []struct {
		j    Joins
		s, m float64
	}{
		{Joins{Apart: JoinCount{Next: 1, Late: 3}}, 0.75, 0.75},
		{Joins{Together: JoinCount{Next: 1, Late: 1}}, 0.5, 0.5},
		{Joins{}, 0, 0},
	} {
		if s, m := tc.j.Rates(); s != tc.s || m != tc.m {
			t.Errorf("%+v: rates %v / %v, want %v / %v", tc.j, s, m, tc.s, tc.m)
		}
	}
}

// joinRound is one round's two timelines as the runner's batch rules make
// them, with batches of prompt 300 ms and decode 12 ms: a leader whose
// prompt fits one batch (60 tokens) or takes two (600: 512, then 88 with
// the follower's first chunk beside it when it joins the next batch), and
// a follower with the same prompt that reached the runner during the
// leader's first batch and joined the next batch or, late, the one after.
func joinRound(round, prompt int, late bool) []Observation {
	ms := time.Millisecond
	var lead, follow []time.Duration
	switch {
	case prompt <= 512 && !late: // b2: L decodes, F reads; F samples with L's 2nd
		lead = append([]time.Duration{300 * ms}, chunksAt(600*ms, 12*ms, 8)...)
		follow = chunksAt(600*ms, 12*ms, 8)
	case prompt <= 512: // b2: L alone; b3: L decodes, F reads
		lead = append([]time.Duration{300 * ms, 312 * ms}, chunksAt(612*ms, 12*ms, 8)...)
		follow = chunksAt(612*ms, 12*ms, 8)
	case !late: // b2: L's rest and F's first chunk; b3: L decodes, F's rest
		lead = append([]time.Duration{600 * ms}, chunksAt(700*ms, 12*ms, 8)...)
		follow = chunksAt(700*ms, 12*ms, 8)
	default: // b2: L's rest alone; b3: L decodes, F's first chunk; b4: F's rest
		lead = append([]time.Duration{400 * ms, 700 * ms}, chunksAt(800*ms, 12*ms, 8)...)
		follow = chunksAt(800*ms, 12*ms, 8)
	}
	return []Observation{{Round: round, PromptTokens: prompt, Chunks: lead}, {Round: round, PromptTokens: prompt, Chunks: follow}}
}

// Rounds made by the batch rules at known late-join rates of each kind
// (the misses spread as the simulator spreads them) give both rates back
// exactly through the fit.
func TestFitRecoversLateJoinRates(t *testing.T) {
	for _, tc := range []struct{ apart, together float64 }{{0.75, 0.5}, {1, 0}, {0.25, 0.875}} {
		s := synthetic(Params{StepBase: time.Millisecond, StepPerSeq: time.Millisecond, PrefillPerToken: time.Millisecond}, 0)
		for _, kind := range []struct {
			prompt int
			rate   float64
		}{{60, tc.apart}, {600, tc.together}} {
			// Short prompts sent together give the one kind, long ones
			// the other; the join probe of each shape counts the same.
			var obs, probe []Observation
			acc := 0.5
			for r := range 8 {
				acc += kind.rate
				late := acc >= 1
				if late {
					acc--
				}
				obs = append(obs, joinRound(r, kind.prompt, late)...)
				if kind.prompt > 512 {
					how := map[bool]string{false: "next", true: "late"}[late]
					probe = append(probe, longJoinRound(r, how)...)
				}
			}
			s.Joins = s.Joins.Add(joins(obs, 512))
			if kind.prompt > 512 {
				if j := joinProbe(probe, 512); j != joins(obs, 512) {
					t.Errorf("rate %v: the join probe counts %+v, the equal prompts %+v", kind.rate, j, joins(obs, 512))
				}
			}
		}
		got, err := Fit(s)
		if err != nil {
			t.Fatal(err)
		}
		if got.LateJoinRate != tc.apart || got.LateJoinRateTogether != tc.together {
			t.Errorf("rates %v / %v: fitted %v / %v (%+v)", tc.apart, tc.together, got.LateJoinRate, got.LateJoinRateTogether, got.Joins)
		}
		if n := got.Joins.Total().Next + got.Joins.Total().Late; n != 16 {
			t.Errorf("rates %v / %v: %d rounds counted, want 16", tc.apart, tc.together, n)
		}
	}
}

// joinProbeRound is one round of a join probe as the batch rules make it:
// the first request (prompt of first tokens: 300 reads in one batch of
// 200 ms, 600 in 300 ms and then 88 more) alone in its first batch, and a
// 40-token request sent 100 ms later that joins the next batch or, late,
// the one after; decode steps 12 ms.
func joinProbeRound(round, first int, late bool) []Observation {
	ms := time.Millisecond
	var lead, follow []time.Duration
	switch {
	case first <= 512 && !late: // b2: the first decodes, the follower reads; it samples with the first's 2nd token
		lead = append([]time.Duration{200 * ms}, chunksAt(250*ms, 12*ms, 8)...)
		follow = chunksAt(250*ms, 12*ms, 8)
	case first <= 512: // b2: the first alone; b3: the follower reads
		lead = append([]time.Duration{200 * ms, 212 * ms}, chunksAt(262*ms, 12*ms, 8)...)
		follow = chunksAt(262*ms, 12*ms, 8)
	case !late: // b2: the first's rest and the follower: both sample
		lead = chunksAt(400*ms, 12*ms, 9)
		follow = chunksAt(400*ms+200*time.Microsecond, 12*ms, 8)
	default: // b2: the first's rest alone; b3: the follower reads beside its decoding
		lead = append([]time.Duration{390 * ms}, chunksAt(430*ms, 12*ms, 8)...)
		follow = chunksAt(430*ms, 12*ms, 8)
	}
	return []Observation{{Round: round, PromptTokens: first, Start: 0, Chunks: lead},
		{Round: round, PromptTokens: 40, Start: 100 * ms, Chunks: follow}}
}

// A join probe's rounds count by the request sent first, whichever request's
// token came first: next or late; a short follower sent 100 ms later joins
// apart.
func TestJoinProbe(t *testing.T) {
	var obs []Observation
	for r, tc := range []struct {
		first int
		late  bool
	}{{600, false}, {600, true}, {600, true}, {300, false}, {300, true}, {300, true}, {300, true}} {
		obs = append(obs, joinProbeRound(r, tc.first, tc.late)...)
	}
	// Not counted: a first prompt of three batches beside a follower of one
	// (its first token comes before the first one's either way); a
	// follower of two batches whose first token came with the first one's
	// (it shared the first batch).
	obs = append(obs, Observation{Round: 7, PromptTokens: 1200, Chunks: chunksAt(900*time.Millisecond, 12*time.Millisecond, 8)},
		Observation{Round: 7, PromptTokens: 40, Start: 100 * time.Millisecond, Chunks: chunksAt(500*time.Millisecond, 12*time.Millisecond, 8)})
	two := joinProbeRound(8, 600, false)
	two[1].PromptTokens = 600
	obs = append(obs, two...)
	got := (Outcome{Scenario: Scenario{Parallel: 2, Concurrency: 2, PromptWords: 4, FirstWords: 104, DelayMs: 100}, Observations: obs}).joins(512)
	if want := (Joins{Apart: JoinCount{Next: 2, Late: 5}}); got != want {
		t.Errorf("joins %+v, want %+v", got, want)
	}
}

// The report counts a join probe's rounds in the engine's batch size.
func TestReportCountsTheJoinProbe(t *testing.T) {
	obs := append(joinProbeRound(0, 600, false), joinProbeRound(1, 600, true)...)
	sc := Scenario{Parallel: 2, Concurrency: 2, PromptWords: 4, FirstWords: 104, DelayMs: 100}
	cfg := Config{Parallel: []int{2}, PromptWords: []int{4, 40}, Rounds: 2, JoinWords: 104, JoinRounds: 2, JoinDelay: 100 * time.Millisecond}
	cfg.Base.BatchSize = 512
	res := &Result{Probes: []Outcome{summarize(sc, obs)}}
	var b strings.Builder
	if err := WriteReport(&b, cfg, res, "test"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| p2-c2-w4-f104-d100 | 4 |") || !strings.Contains(b.String(), "| 1/2 |") {
		t.Errorf("report:\n%s", b.String())
	}
}

// longJoinRound is one round of a join probe whose follower's prompt is as
// long as the first one's (600 tokens: 512, then 88), as the batch rules
// make it with batches of 300 ms for a prompt chunk, 100 ms for a rest and
// 12 ms for a decode step: the follower joins the next batch, the one
// after, or shares the first one; swapped, the follower (sent 1 ms later)
// took the runner first.
func longJoinRound(round int, how string) []Observation {
	ms := time.Millisecond
	var lead, follow []time.Duration
	switch how {
	case "next", "swapped": // b2: L's rest, F's first chunk; b3: L decodes, F's rest
		lead = append([]time.Duration{700 * ms}, chunksAt(800*ms, 12*ms, 8)...)
		follow = chunksAt(800*ms, 12*ms, 8)
	case "late": // b2: L's rest alone; b3: L decodes, F's first chunk; b4: F's rest
		lead = append([]time.Duration{400 * ms, 800 * ms}, chunksAt(900*ms, 12*ms, 8)...)
		follow = chunksAt(900*ms, 12*ms, 8)
	case "shared": // b1: both first chunks; b2: both rests
		lead = chunksAt(800*ms, 12*ms, 8)
		follow = chunksAt(800*ms+200*time.Microsecond, 12*ms, 8)
	}
	if how == "swapped" {
		lead, follow = follow, lead
	}
	return []Observation{{Round: round, PromptTokens: 600, Start: 0, Chunks: lead},
		{Round: round, PromptTokens: 600, Start: ms, Chunks: follow}}
}

// A join probe whose follower has a prompt of two batches counts by the
// request that took the runner first, even when it was sent second; a
// round in which both shared the first batch is not counted.
func TestJoinProbeLongFollower(t *testing.T) {
	var obs []Observation
	for r, how := range []string{"next", "late", "late", "shared", "swapped", "late"} {
		obs = append(obs, longJoinRound(r, how)...)
	}
	// Prompts of three batches (512, 512, 22) time the same way, one
	// batch later: the next batch gives the first request one token before
	// the follower's first, the one after two.
	for r, how := range []string{"next", "late"} {
		round := longJoinRound(10+r, how)
		for i := range round {
			round[i].PromptTokens = 1046
		}
		obs = append(obs, round...)
	}
	got := (Outcome{Scenario: Scenario{Parallel: 2, Concurrency: 2, PromptWords: 104, FirstWords: 104, DelayMs: 1}, Observations: obs}).joins(512)
	if want := (Joins{Together: JoinCount{Next: 3, Late: 4}}); got != want {
		t.Errorf("joins %+v, want %+v", got, want)
	}
	// The held-out scenarios' rounds (equal prompts sent together) count
	// the same by the leader's first token.
	if j := joins(obs, 512); j != got {
		t.Errorf("joins of the same rounds as a scenario %+v, as a join probe %+v", j, got)
	}
}

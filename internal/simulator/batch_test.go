package simulator

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// batchEngine is an engine without its loop: the tests plan and finish
// batches by hand, so no timing is involved.
func batchEngine(p Profile, parallel int) *engine {
	return &engine{prof: p, scale: 1, maxQueue: 10, ctxLen: 4096, slots: make([]slot, parallel), wake: make(chan struct{}, 1),
		late: newLateJoins(p.LateJoinRate, p.LateJoinRateTogether)}
}

func admit(e *engine, promptLen, limit int) *job {
	j := newJob(make([]uint32, promptLen), limit, 0, newTextGen(1, 100))
	for i := range j.prompt {
		j.prompt[i] = uint32(i + 1)
	}
	e.queue = append(e.queue, j)
	e.admitLocked(time.Now(), false)
	return j
}

// step runs one turn of the engine's loop: it admits waiting jobs, plans
// one batch, finishes it and returns what each slot read.
func step(e *engine) []work {
	e.admitLocked(time.Now(), true)
	b := e.planLocked()
	e.finishLocked(b, time.Now())
	return b
}

func prefills(b []work) []int {
	var out []int
	for _, w := range b {
		out = append(out, w.prefill)
	}
	return out
}

// A prompt of n of the simulator's tokens is offset + ratio·n of the
// engine's, at least 1.
func TestEngineTokens(t *testing.T) {
	tests := []struct {
		ratio, offset float64
		n, want       int
	}{
		{0, 0, 37, 37},       // nothing measured: the simulator's count
		{3, 0, 10, 30},       // ratio only
		{5.2, -42.6, 15, 35}, // the generated model's vocabulary and template
		{5.2, -42.6, 210, 1049},
		{5.2, -42.6, 1, 1}, // never below one token
		{2, 0, 0, 0},
	}
	for _, tc := range tests {
		p := Profiles["tiny"]
		p.PromptTokenRatio, p.PromptTokenOffset = tc.ratio, tc.offset
		if got := p.engineTokens(tc.n); got != tc.want {
			t.Errorf("ratio %g offset %g: %d tokens → %d, want %d", tc.ratio, tc.offset, tc.n, got, tc.want)
		}
	}
}

// Positions inside a prompt map by the same line as whole prompts, and
// back: a prefix of template tokens alone counts for little.
func TestEnginePositions(t *testing.T) {
	p := Profiles["tiny"]
	p.PromptTokenRatio, p.PromptTokenOffset = 5.2, -42.6 // 208 tokens → 1039
	for _, tc := range []struct{ pos, eng int }{{0, 0}, {4, 0}, {9, 4}, {100, 477}, {207, 1034}, {208, 1039}} {
		if got := p.enginePos(tc.pos, 208); got != tc.eng {
			t.Errorf("enginePos(%d) = %d, want %d", tc.pos, got, tc.eng)
		}
	}
	for _, tc := range []struct{ eng, pos int }{{0, 8}, {512, 106}, {1024, 205}, {1038, 207}, {1039, 208}, {2000, 208}} {
		if got := p.promptPos(tc.eng, 208); got != tc.pos {
			t.Errorf("promptPos(%d) = %d, want %d", tc.eng, got, tc.pos)
		}
	}
	// Without a measured line positions are the same in both.
	q := Profiles["tiny"]
	if q.enginePos(17, 40) != 17 || q.promptPos(17, 40) != 17 || q.promptPos(40, 40) != 40 {
		t.Error("the identity map moves positions")
	}
}

// Rule 2: a prompt is read in chunks of BatchSize of the engine's tokens,
// the rest last, and the slot's cache ends up holding the whole prompt.
// Rule 3: the slot samples when the batch with its last prompt token ends.
func TestPromptChunksInEngineTokens(t *testing.T) {
	p := Profiles["tiny"]
	p.PromptTokenRatio, p.PromptTokenOffset = 5, -4 // 210 tokens → 1046
	e := batchEngine(p, 1)
	j := admit(e, 210, 5)
	if j.engLen != 1046 {
		t.Fatalf("engine tokens %d, want 1046", j.engLen)
	}
	var chunks []int
	for len(j.out) == 0 {
		chunks = append(chunks, prefills(step(e))...)
		if len(chunks) > 5 {
			t.Fatal("the prompt is never read")
		}
	}
	if want := []int{512, 512, 22}; !slices.Equal(chunks, want) {
		t.Errorf("chunks %v, want %v", chunks, want)
	}
	if j.pos != 210 || len(e.slots[0].cache) != 210 || len(j.out) != 1 {
		t.Errorf("after the prompt: pos %d, cache %d tokens, %d sampled; want 210, 210, 1", j.pos, len(e.slots[0].cache), len(j.out))
	}
	// A cached prefix maps by the same line: the same prompt again reads
	// only its last token, 1046 - (5·209 - 4) = 5 of the engine's tokens.
	e.slots[0].job = nil
	k := admit(e, 210, 5)
	if b := step(e); k.cached != 209 || prefills(b)[0] != 5 || len(k.out) != 1 {
		t.Errorf("cached %d, read %v, sampled %d", k.cached, prefills(b), len(k.out))
	}
}

// Rule 1: every busy slot is in every batch. BatchSize bounds each slot's
// chunk, not the batch, and a generating slot gets its token in the same
// batch as another slot's prompt chunk.
func TestMixedBatches(t *testing.T) {
	e := batchEngine(Profiles["tiny"], 3)
	a := admit(e, 10, 50)
	if got := prefills(step(e)); !slices.Equal(got, []int{10}) || len(a.out) != 1 {
		t.Fatalf("first batch read %v, a sampled %d", got, len(a.out))
	}
	b := admit(e, 1100, 50)
	c := admit(e, 600, 50)
	for i, want := range [][]int{{0, 512, 512}, {0, 512, 88}, {0, 76, 0}} {
		got := prefills(step(e))
		if !slices.Equal(got, want) {
			t.Errorf("batch %d read %v, want %v", i+2, got, want)
		}
	}
	// a generated in every batch; c sampled after its second chunk, b after its third.
	if len(a.out) != 4 || len(b.out) != 1 || len(c.out) != 2 {
		t.Errorf("sampled a %d, b %d, c %d; want 4, 1, 2", len(a.out), len(b.out), len(c.out))
	}
}

// Rule 4: llama.cpp's micro-batches.
func TestMicroBatches(t *testing.T) {
	tests := []struct {
		name    string
		tokens  []int
		ids     []int
		streams bool
		want    int
	}{
		{"one slot, one chunk", []int{512}, []int{0}, false, 1},
		{"one slot, one token", []int{1}, []int{0}, false, 1},
		{"one stream cuts in order", []int{600, 1}, []int{0, 1}, false, 2},
		{"decode beside a chunk", []int{1, 512}, []int{0, 1}, true, 2},
		{"two chunks, 256 of each per pass", []int{512, 512}, []int{0, 1}, true, 2},
		{"a short last chunk beside a full one", []int{22, 512}, []int{0, 1}, true, 2},
		{"four decoding slots", []int{1, 1, 1, 1}, []int{0, 1, 2, 3}, true, 1},
		{"three chunks, 170 of each per pass", []int{512, 512, 512}, []int{0, 1, 2}, true, 4},
		{"a short chunk, then two", []int{19, 512, 512}, []int{0, 1, 2}, true, 3},
		{"ids that do not follow on", []int{1, 1}, []int{0, 2}, true, 2},
		{"empty", nil, nil, true, 0},
	}
	for _, tc := range tests {
		if got := microBatches(tc.tokens, tc.ids, 512, tc.streams); got != tc.want {
			t.Errorf("%s: %d micro-batches, want %d", tc.name, got, tc.want)
		}
	}
}

// stepTime charges StepBase per micro-batch, StepPerSeq per slot, and
// prefill and attention in the engine's tokens.
func TestStepTime(t *testing.T) {
	p := Profiles["tiny"]
	p.StepBase, p.StepPerSeq, p.PrefillPerToken = 4*time.Millisecond, 8*time.Millisecond, time.Millisecond
	p.AttentionPerPair, p.DecodePerContextToken = time.Microsecond, 2*time.Microsecond
	e := batchEngine(p, 2)
	// A chunk of 100 read from position 50 attends to 100·(50+50) pairs;
	// a slot decoding after a 40-token prompt and 3 tokens to 43.
	reading := &job{slot: 1, engPos: 50, engLen: 300}
	decoding := &job{slot: 0, engLen: 40, out: make([]uint32, 3)}
	want := 2*p.StepBase + 2*p.StepPerSeq + 100*time.Millisecond + 10000*time.Microsecond + 86*time.Microsecond
	if got := e.stepTime([]work{{job: decoding}, {job: reading, prefill: 100}}); got != want {
		t.Errorf("mixed batch = %v, want %v", got, want)
	}
	// With one slot the same chunk is one pass.
	e = batchEngine(p, 1)
	reading.slot = 0
	if got, want := e.stepTime([]work{{job: reading, prefill: 100}}), p.StepBase+p.StepPerSeq+110*time.Millisecond; got != want {
		t.Errorf("chunk alone = %v, want %v", got, want)
	}
}

// Rule 5: a slot freed at the end of a batch takes a waiting request only
// after the next batch while other slots keep the engine busy; an idle
// engine takes it at once.
func TestFreedSlotWaitsOneBatch(t *testing.T) {
	e := batchEngine(Profiles["tiny"], 2)
	a := admit(e, 5, 2)
	b := admit(e, 5, 10)
	c := admit(e, 5, 1) // both slots busy: it waits
	step(e)             // a and b read their prompts and sample
	step(e)             // a samples its second and last token
	if a.slot != 0 || e.slots[0].job != nil || c.slot != -1 {
		t.Fatalf("after a's last token: slot 0 holds %v, c in slot %d", e.slots[0].job, c.slot)
	}
	if got := step(e); len(got) != 1 || got[0].job != b || c.slot != -1 {
		t.Errorf("the batch after a ended holds %d slots, c in slot %d; want b alone and c still waiting", len(got), c.slot)
	}
	if got := step(e); len(got) != 2 || got[0].job != c || got[0].prefill == 0 {
		t.Errorf("the batch after that: %+v, want c reading its prompt beside b", got)
	}

	// Alone, a finished job's slot goes to the waiting request at once.
	e = batchEngine(Profiles["tiny"], 2)
	admit(e, 5, 1)
	step(e) // it reads its prompt, samples its only token and ends
	d := newJob([]uint32{9}, 1, 0, newTextGen(1, 100))
	e.queue = append(e.queue, d)
	if got := step(e); len(got) != 1 || got[0].job != d {
		t.Errorf("a job waiting for an idle engine: batch %+v", got)
	}
}

// arriveDuring runs one turn of the engine's loop with j submitted while
// its batch runs, after since of it (the runner was idle before it when it
// is the engine's first), and returns what each slot read.
func arriveDuring(t *testing.T, e *engine, j *job, since time.Duration) []work {
	t.Helper()
	e.admitLocked(time.Now(), true)
	b := e.planLocked()
	e.startLocked(b, time.Now().Add(-since), e.batches == 0)
	if err := e.submit(j); err != nil {
		t.Fatal(err)
	}
	e.finishLocked(b, time.Now())
	return b
}

func promptJob(n, limit int) *job {
	j := newJob(make([]uint32, n), limit, 0, newTextGen(1, 100))
	for i := range j.prompt {
		j.prompt[i] = uint32(1000 + i)
	}
	return j
}

// Rule 6: a request that arrives while a batch runs joins the next batch,
// or, at the profile's late-join rate, the one after, while the runner has
// other work; the slot decoding beside it then gets a token of its own in
// between, before it waits for the new prompt's chunk. Which rate decides
// is how b came: with a prompt of more than one batch (600 tokens), sent
// with a (1 ms after the idle runner started a's first batch),
// LateJoinRateTogether; with a short prompt (300), or 300 ms later,
// LateJoinRate.
func TestLateJoin(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		prompt         int           // a's and b's prompt tokens
		after          time.Duration // b's arrival after a's batch started
		rate, together float64
		want           [][]int // what each batch after the arrival reads: a, b
		lead           int     // a's tokens before b's first
	}{
		{600, ms, 0, 0, [][]int{{88, 512}, {0, 88}, {0, 0}}, 1},
		{600, ms, 1, 0, [][]int{{88, 512}, {0, 88}, {0, 0}}, 1},
		{600, ms, 0, 1, [][]int{{88}, {0, 512}, {0, 88}}, 2},
		{600, 300 * ms, 0, 1, [][]int{{88, 512}, {0, 88}, {0, 0}}, 1},
		{600, 300 * ms, 1, 0, [][]int{{88}, {0, 512}, {0, 88}}, 2},
		{300, ms, 0, 1, [][]int{{0, 300}, {0, 0}}, 1},
		{300, ms, 1, 0, [][]int{{0}, {0, 300}, {0, 0}}, 2},
		{300, 300 * ms, 1, 0, [][]int{{0}, {0, 300}, {0, 0}}, 2},
	} {
		name := fmt.Sprintf("prompt %d after %v, rates %v/%v", tc.prompt, tc.after, tc.rate, tc.together)
		p := Profiles["tiny"]
		p.LateJoinRate, p.LateJoinRateTogether = tc.rate, tc.together
		e := batchEngine(p, 2)
		a := admit(e, tc.prompt, 20)
		b := promptJob(tc.prompt, 20)
		if got, want := prefills(arriveDuring(t, e, b, tc.after)), min(tc.prompt, 512); !slices.Equal(got, []int{want}) {
			t.Fatalf("%s: the batch b arrived during read %v, want [%d]", name, got, want)
		}
		if b.together != (tc.after < TogetherWindow) {
			t.Fatalf("%s: b sent together %v", name, b.together)
		}
		for i, want := range tc.want {
			if got := prefills(step(e)); !slices.Equal(got, want) {
				t.Errorf("%s: batch %d read %v, want %v", name, i+2, got, want)
			}
		}
		// When b missed the next batch, a sampled a token alone before the
		// batch with b's first chunk: two tokens ahead of b, not one.
		if lead := len(a.out) - len(b.out); lead != tc.lead {
			t.Errorf("%s: a is %d tokens ahead of b, want %d", name, lead, tc.lead)
		}
	}
}

// Rule 6 holds only while the runner has other work: a request that
// arrives during the last batch of another joins the next batch at once.
func TestLateJoinIdle(t *testing.T) {
	p := Profiles["tiny"]
	p.LateJoinRate, p.LateJoinRateTogether = 1, 1
	e := batchEngine(p, 2)
	admit(e, 10, 1) // reads its prompt, samples its only token and ends
	b := promptJob(10, 5)
	arriveDuring(t, e, b, time.Millisecond)
	if got := step(e); len(got) != 1 || got[0].job != b {
		t.Errorf("the batch after: %+v, want b alone", got)
	}
}

// Rules 5 and 6 together: the request waiting for a freed slot becomes
// ready during the batch after the one that freed it, and at rate 1 misses
// the next batch as well.
func TestLateJoinFreedSlot(t *testing.T) {
	p := Profiles["tiny"]
	p.LateJoinRate, p.LateJoinRateTogether = 1, 1
	e := batchEngine(p, 2)
	admit(e, 5, 2)
	b := admit(e, 5, 10)
	c := admit(e, 5, 1)
	step(e) // a and b read their prompts and sample
	step(e) // a samples its last token; its slot is free after this batch
	for i := range 2 {
		if got := step(e); len(got) != 1 || got[0].job != b {
			t.Errorf("batch %d after a ended: %d slots, want b alone", i+1, len(got))
		}
	}
	if got := step(e); len(got) != 2 || got[0].job != c || got[0].prefill == 0 {
		t.Errorf("the third batch: %+v, want c reading its prompt beside b", got)
	}
}

// lateJoins misses each kind's rate's share of its batch ends, rounded,
// spread evenly, whatever the other kind's decisions between them, and
// answers the same for the same batch end.
func TestLateJoinsSpread(t *testing.T) {
	for _, tc := range []struct {
		rate, together float64
		kinds          string // a: requests that came apart, t: long prompts sent together
		want           string // "" checks only the counts
		ns, nm         int    // misses at a and t batch ends
	}{
		{0, 0, "aaaaaaaaaa", "----------", 0, 0},
		{1, 0, "aaaaaaaaaa", "xxxxxxxxxx", 10, 0},
		{0.5, 0, "aaaaaaaaaa", "x-x-x-x-x-", 5, 0},
		{0.3, 0, "aaaaaaaaaa", "", 3, 0},
		{0.75, 0, "aaaaaaaaaa", "", 8, 0},
		{0, 0.5, "tttttttttt", "x-x-x-x-x-", 0, 5},
		{1, 0, "atatatatat", "x-x-x-x-x-", 5, 0},
		{0.9, 0.5, "atatatatatatatatatat", "", 9, 5},
		{0.5, 0.5, "aattaattaatt", "x-x-x-x-x-x-", 3, 3},
	} {
		l := newLateJoins(tc.rate, tc.together)
		got, ns, nm := "", 0, 0
		for b, k := range tc.kinds {
			m := l.miss(b+1, k == 't')
			if l.miss(b+1, k == 't') != m {
				t.Errorf("rates %v/%v: batch %d decided twice differently", tc.rate, tc.together, b+1)
			}
			switch {
			case m && k == 'a':
				got, ns = got+"x", ns+1
			case m:
				got, nm = got+"x", nm+1
			default:
				got += "-"
			}
		}
		if ns != tc.ns || nm != tc.nm || (tc.want != "" && got != tc.want) {
			t.Errorf("rates %v/%v over %s: %s, want %d + %d misses %s", tc.rate, tc.together, tc.kinds, got, tc.ns, tc.nm, tc.want)
		}
	}
}

// prompt_eval_count is in the engine's tokens, as the simulator charges
// them: a calibration against the simulator then sees the engine's count.
func TestPromptCountInEngineTokens(t *testing.T) {
	for _, tc := range []struct {
		ratio, offset float64
		want          int
	}{{5, -4, 1046}, {0, 0, 210}} {
		p := Profiles["tiny"]
		p.PromptTokenRatio, p.PromptTokenOffset = tc.ratio, tc.offset
		e := batchEngine(p, 1)
		j := admit(e, 210, 2)
		var done *doneInfo
		for range 6 {
			step(e)
			for _, ev := range j.box.take() {
				if ev.done != nil {
					done = ev.done
				}
			}
		}
		if done == nil || done.promptTokens != tc.want {
			t.Errorf("line %v×n%+v: done %+v, want %d prompt tokens", tc.ratio, tc.offset, done, tc.want)
		}
	}
}

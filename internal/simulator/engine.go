package simulator

import (
	"errors"
	"slices"
	"sync"
	"time"
)

// errQueueFull is Ollama's ErrMaxQueue text, two spaces included.
var errQueueFull = errors.New("server busy, please try again.  maximum pending requests exceeded")

// errClosed ends the requests a closing server still holds.
var errClosed = errors.New("server is shutting down")

// engine is the runner: slots, a FIFO queue in front of them and one loop
// that runs batches the way Ollama's runner does (the rules are in
// batch.go): every batch holds every busy slot, up to BatchSize of the
// engine's tokens of a slot still reading its prompt, or one token of a slot
// generating, and when it ends each slot that has read its whole prompt
// samples a token.
type engine struct {
	prof     Profile
	scale    float64
	maxQueue int
	ctxLen   int

	mu      sync.Mutex
	queue   []*job
	slots   []slot
	batches int  // batches finished
	running bool // a batch is being computed (the runner holds its lock)
	// batchStart is when the batch in flight started, fromIdle whether the
	// runner was idle before it (rule 6's requests sent together).
	batchStart time.Time
	fromIdle   bool
	closed     bool
	// late decides, once per batch end, whether the requests that became
	// ready during that batch miss the next one (rule 6 in batch.go).
	late lateJoins

	wake chan struct{} // capacity 1: work arrived or a job was cancelled
	quit chan struct{}
	done chan struct{}
}

type slot struct {
	cache []uint32 // the tokens whose KV entries the slot holds
	job   *job
	// freedAfter is the batch whose end freed the slot (0: none did).
	freedAfter int
}

// job is one generation request inside the engine.
type job struct {
	prompt  []uint32
	limit   int // > 0: stop with "length" after limit tokens
	natural int // without a limit: tokens before the model's end of sequence
	gen     *textGen

	// Set by the engine under its lock.
	slot int
	// readyIn is the batch during which the request became ready to take
	// the runner's lock (it arrived, or the slot it waits for was
	// released); 0 when the runner was idle.
	readyIn int
	// together is set when the request arrived within TogetherWindow of
	// the start of a batch that an idle runner began (rule 6).
	together    bool
	pos         int      // prompt tokens read into the slot's cache
	cached      int      // prompt tokens the slot's cache already held
	engLen      int      // the prompt in the engine's tokens
	engPos      int      // of which read (the cached part included)
	out         []uint32 // sampled tokens
	eos         bool     // the next step samples the end of sequence
	canceled    bool
	assigned    time.Time // the slot was taken (Ollama's startProcessingTime)
	firstSample time.Time // the first token was sampled (startGenerationTime)

	box mailbox
}

// event is what the engine tells a request: a token, the end, or an error.
type event struct {
	text string
	done *doneInfo
	err  error
}

type doneInfo struct {
	reason       string // "stop" or "length"
	promptTokens int    // prompt_eval_count in the engine's tokens: cached tokens included, as Ollama counts
	evalCount    int    // sampled tokens, the end-of-sequence one included
	promptEval   time.Duration
	firstSample  time.Time
}

// mailbox hands events to the request goroutine without ever blocking the
// engine, however slowly the client reads.
type mailbox struct {
	mu     sync.Mutex
	events []event
	signal chan struct{} // capacity 1
}

func (m *mailbox) put(e event) {
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() []event {
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := m.events
	m.events = nil
	return evs
}

func newJob(prompt []uint32, limit, natural int, gen *textGen) *job {
	return &job{prompt: prompt, limit: limit, natural: natural, gen: gen, slot: -1,
		box: mailbox{signal: make(chan struct{}, 1)}}
}

func newEngine(prof Profile, parallel, maxQueue, ctxLen int, scale float64) *engine {
	e := &engine{prof: prof, scale: scale, maxQueue: maxQueue, ctxLen: ctxLen,
		slots: make([]slot, parallel), late: newLateJoins(prof.LateJoinRate, prof.LateJoinRateTogether),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go e.run()
	return e
}

func (e *engine) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * e.scale)
}

func (e *engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// submit queues a job, or refuses it when MaxQueue requests already wait.
func (e *engine) submit(j *job) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errClosed
	}
	if len(e.queue) >= e.maxQueue && !e.hasFreeSlotLocked() {
		return errQueueFull
	}
	if e.running {
		j.readyIn = e.batches + 1 // the batch in flight, once it ends
		j.together = e.fromIdle && time.Since(e.batchStart) <= e.scaled(TogetherWindow)
	}
	e.queue = append(e.queue, j)
	e.admitLocked(time.Now(), false)
	e.poke()
	return nil
}

// cancel drops a job: from the queue at once, from its slot at the end of
// the batch in flight (its output is then discarded).
func (e *engine) cancel(j *job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, q := range e.queue {
		if q == j {
			e.queue = append(e.queue[:i], e.queue[i+1:]...)
			return
		}
	}
	if j.slot >= 0 && e.slots[j.slot].job == j {
		j.canceled = true
		e.poke()
	}
}

// load returns how many jobs wait and how many slots are busy.
func (e *engine) load() (waiting, busy int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.slots {
		if s.job != nil {
			busy++
		}
	}
	return len(e.queue), busy
}

func (e *engine) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.done
		return
	}
	e.closed = true
	e.mu.Unlock()
	close(e.quit)
	<-e.done
}

func (e *engine) hasFreeSlotLocked() bool {
	for _, s := range e.slots {
		if s.job == nil {
			return true
		}
	}
	return false
}

// admitLocked gives free slots to waiting jobs in FIFO order. Like Ollama's
// runner (findLongestCacheSlot) a job takes the free slot whose cache shares
// the longest prefix with its prompt, and always evaluates at least the last
// prompt token.
//
// betweenBatches is true when the loop admits right after a batch ended:
// then a slot that batch freed stays free for one more batch while other
// slots keep the engine busy. Ollama's runner removes a sequence that
// reached num_predict at the top of the next batch (runner/llamarunner/
// runner.go line 425), and a request waiting for the slot needs the
// runner's lock, which that batch holds until it ends (lines 406-410, 689);
// a stopped sequence's answer has to reach the server and the next request
// come back before the next batch starts. An idle runner takes it at once.
func (e *engine) admitLocked(now time.Time, betweenBatches bool) {
	for len(e.queue) > 0 {
		best, bestCommon := -1, -1
		j := e.queue[0]
		for i := range e.slots {
			if e.slots[i].job != nil {
				continue
			}
			if betweenBatches && e.slots[i].freedAfter == e.batches && e.busyLocked() {
				continue
			}
			if c := commonPrefix(e.slots[i].cache, j.prompt); c > bestCommon {
				best, bestCommon = i, c
			}
		}
		if best < 0 {
			return
		}
		e.queue = e.queue[1:]
		if betweenBatches && e.batches > 0 {
			// It waited through the batch that just ended: its slot, or
			// the runner's lock, became free at the end of it (not
			// together with anything: rule 6).
			j.readyIn, j.together = e.batches, false
		}
		cached := min(bestCommon, len(j.prompt)-1)
		s := &e.slots[best]
		s.cache = s.cache[:cached]
		s.job = j
		j.slot, j.pos, j.cached, j.assigned = best, cached, cached, now
		j.engLen = e.prof.engineTokens(len(j.prompt))
		j.engPos = e.prof.enginePos(cached, len(j.prompt))
	}
}

func (e *engine) busyLocked() bool {
	for _, s := range e.slots {
		if s.job != nil {
			return true
		}
	}
	return false
}

func commonPrefix(a, b []uint32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// work is one slot's part of a batch.
type work struct {
	job     *job
	prefill int // prompt tokens read, in the engine's tokens; 0 for a generating slot
}

func (e *engine) run() {
	defer close(e.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var lastEnd time.Time // when the previous batch was due to end
	idle := true
	for {
		e.mu.Lock()
		e.admitLocked(time.Now(), true)
		batch := e.planLocked()
		e.startLocked(batch, time.Now(), idle)
		e.mu.Unlock()
		idle = len(batch) == 0
		if len(batch) == 0 {
			select {
			case <-e.wake:
				continue
			case <-e.quit:
				e.shutdown()
				return
			}
		}
		// Batches run back to back: a timer that fired late shortens the
		// next batch, so late wake-ups on a busy machine do not slow the
		// simulated one down.
		d, now := e.stepTime(batch), time.Now()
		start := now
		if late := now.Sub(lastEnd); late >= 0 && late < d {
			start = lastEnd
		}
		lastEnd = start.Add(d)
		timer.Reset(lastEnd.Sub(now))
		select {
		case <-timer.C:
		case <-e.quit:
			timer.Stop()
			e.shutdown()
			return
		}
		e.mu.Lock()
		e.finishLocked(batch, time.Now())
		e.mu.Unlock()
	}
}

// startLocked marks the batch as in flight from now; idle tells whether
// the runner had nothing to do before it.
func (e *engine) startLocked(batch []work, now time.Time, idle bool) {
	e.running = len(batch) > 0
	e.batchStart, e.fromIdle = now, idle
}

func (e *engine) planLocked() []work {
	var batch []work
	var joining []work // requests that became ready during the last batch
	for i := range e.slots {
		j := e.slots[i].job
		if j == nil {
			continue
		}
		if j.canceled {
			e.slots[i].job = nil
			continue
		}
		w := work{job: j}
		if j.pos < len(j.prompt) {
			w.prefill = max(1, min(j.engLen-j.engPos, e.prof.BatchSize))
		}
		if j.readyIn > 0 && j.readyIn == e.batches && j.pos == j.cached {
			joining = append(joining, w)
			continue
		}
		batch = append(batch, w)
	}
	// Rule 6: while the runner has other work, the requests that became
	// ready during the last batch may miss this one, at the rate of their
	// kind: long prompts sent together, or any other.
	together := len(joining) > 0
	for _, w := range joining {
		together = together && w.job.together && w.job.engLen-w.job.engPos > e.prof.BatchSize
	}
	if len(joining) > 0 && (len(batch) == 0 || !e.late.miss(e.batches, together)) {
		batch = append(batch, joining...)
		slices.SortFunc(batch, func(a, b work) int { return a.job.slot - b.job.slot })
	}
	return batch
}

// finishLocked ends a batch: prompt tokens and fed-back tokens enter the
// caches, and every slot past its prompt samples a token.
func (e *engine) finishLocked(batch []work, now time.Time) {
	e.batches++
	e.running = false
	for _, w := range batch {
		j := w.job
		s := &e.slots[j.slot]
		if w.prefill > 0 {
			j.engPos += w.prefill
			next := max(j.pos, e.prof.promptPos(j.engPos, len(j.prompt)))
			s.cache = append(s.cache, j.prompt[j.pos:next]...)
			j.pos = next
		} else if n := len(j.out); n > 0 {
			s.cache = append(s.cache, j.out[n-1]) // the token fed back this step
		}
		if j.canceled {
			s.job, s.freedAfter = nil, e.batches
			continue
		}
		if j.pos < len(j.prompt) {
			continue // still reading the prompt
		}
		if j.firstSample.IsZero() {
			j.firstSample = now
		}
		if j.eos {
			e.endLocked(j, "stop", len(j.out)+1)
			continue
		}
		text, id := j.gen.next()
		j.out = append(j.out, id)
		j.box.put(event{text: text})
		switch {
		case j.limit > 0 && len(j.out) >= j.limit:
			e.endLocked(j, "length", len(j.out))
		case j.limit == 0 && len(j.out) >= j.natural:
			j.eos = true
		}
	}
	// A slot holds at most its context; what comes later is not cached
	// (Ollama shifts the context instead, which loses the prefix anyway).
	for i := range e.slots {
		if c := e.slots[i].cache; len(c) > e.ctxLen {
			e.slots[i].cache = c[:e.ctxLen]
		}
	}
}

func (e *engine) endLocked(j *job, reason string, evalCount int) {
	e.slots[j.slot].job, e.slots[j.slot].freedAfter = nil, e.batches
	j.box.put(event{done: &doneInfo{
		reason:       reason,
		promptTokens: j.engLen, // the engine's tokens, as it charged them (the simulator's without a token line)
		evalCount:    evalCount,
		promptEval:   j.firstSample.Sub(j.assigned),
		firstSample:  j.firstSample,
	}})
}

func (e *engine) shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, j := range e.queue {
		j.box.put(event{err: errClosed})
	}
	e.queue = nil
	for i := range e.slots {
		if j := e.slots[i].job; j != nil {
			j.box.put(event{err: errClosed})
			e.slots[i].job = nil
		}
	}
}

package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// Steps are long enough that a busy 2-core machine's timer and scheduling
// delays (a few ms) stay small beside them; assertions bound from below
// where delays can only add.
const (
	testStep   = 4 * time.Millisecond
	testTokens = 40
	genTime    = testTokens * testStep // one request's decode time at p=1
)

func chatBody(prompt string, numPredict int) string {
	return fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":%q}],"options":{"num_predict":%d}}`, prompt, numPredict)
}

func ttfts(t *testing.T, rs []result) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i, r := range rs {
		d, ok := r.m.TTFT()
		if !r.m.OK() || !ok {
			t.Fatalf("request %d: %s %s", i, r.m.ErrorType, r.m.Error)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestOneSlotQueues: with one slot, the k-th of 4 concurrent requests waits
// for the k-1 generations before it.
func TestOneSlotQueues(t *testing.T) {
	_, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 0), Parallel: 1})
	rs := concurrently(t, 4, url, "/api/chat", func(i int) string { return chatBody(fmt.Sprintf("question %d", i), testTokens) })
	got := ttfts(t, rs)
	for k := 1; k < len(got); k++ {
		if gap := got[k] - got[k-1]; gap < genTime*8/10 {
			t.Errorf("TTFTs %v: request %d started %v after request %d, want about %v", got, k, gap, k-1, genTime)
		}
	}
	var waits []time.Duration
	for _, r := range rs {
		waits = append(waits, time.Duration(r.m.Ollama.QueueWait()))
	}
	sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
	if waits[3] < 3*genTime*8/10 {
		t.Errorf("server-side queue waits %v: the last should be about %v", waits, 3*genTime)
	}
}

// TestFourSlotsStartTogether: with four slots, four requests start at once
// (no server-side queue wait) and each decodes at the pace of a batch of
// four, since the slots share the machine. Both bounds are the robust
// side: a busy machine only makes steps longer, and a queue wait would be
// a whole generation.
func TestFourSlotsStartTogether(t *testing.T) {
	_, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 0), Parallel: 4})
	rs := concurrently(t, 4, url, "/api/chat", func(i int) string { return chatBody(fmt.Sprintf("question %d", i), testTokens) })
	for i, r := range rs {
		if !r.m.OK() {
			t.Fatalf("request %d: %s", i, r.m.Error)
		}
		if wait := time.Duration(r.m.Ollama.QueueWait()); wait > genTime/2 {
			t.Errorf("request %d waited %v for a slot", i, wait)
		}
		if tpot, _ := r.m.TPOT(); tpot < 4*testStep*9/10 {
			t.Errorf("request %d: %v per token, want at least %v (a batch of four)", i, tpot, 4*testStep)
		}
	}
}

// TestMaxQueue: one running, MaxQueue waiting, the next is refused with
// Ollama's 503 on both APIs.
func TestMaxQueue(t *testing.T) {
	s, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 0), Parallel: 1, MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for i := range 2 {
		go func() {
			measure(t, ctx, url, "/api/chat", chatBody(fmt.Sprintf("long %d", i), 100000))
			done <- struct{}{}
		}()
		waitFor(t, "the request to arrive", func() bool { w, b := s.Load(); return w+b == i+1 })
	}
	tests := []struct{ path, body, want string }{
		{"/api/chat", chatBody("third", 5), `{"error":"server busy, please try again.  maximum pending requests exceeded"}`},
		{"/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"x"}]}`,
			`{"error":{"message":"server busy, please try again.  maximum pending requests exceeded","type":"api_error","param":null,"code":null}}` + "\n"},
	}
	for _, tc := range tests {
		r := measure(t, context.Background(), url, tc.path, tc.body)
		if r.status != http.StatusServiceUnavailable || string(r.body) != tc.want || r.m.ErrorType != "503" {
			t.Errorf("%s: %d %s (error type %q)", tc.path, r.status, r.body, r.m.ErrorType)
		}
	}
	cancel()
	<-done
	<-done
}

// TestCancelFreesSlot: a client that goes away gives its slot to the next
// request within a step.
func TestCancelFreesSlot(t *testing.T) {
	s, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 0), Parallel: 1})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan result, 1)
	go func() { first <- measure(t, ctx, url, "/api/chat", chatBody("endless", 100000)) }()
	waitFor(t, "the first request to run", func() bool { _, b := s.Load(); return b == 1 })
	cancel()
	if r := <-first; r.m.OK() {
		t.Fatal("a cancelled request succeeded")
	}
	waitFor(t, "the slot to be free", func() bool { w, b := s.Load(); return w == 0 && b == 0 })
	r := measure(t, context.Background(), url, "/api/chat", chatBody("next", 3))
	if d, ok := r.m.TTFT(); !r.m.OK() || !ok || d > genTime {
		t.Errorf("the next request: ok %t, TTFT %v", r.m.OK(), d)
	}
}

// TestPrefixCache: the same prompt again reuses the slot's cache and gets
// its first token sooner; a new prompt pays the prefill again.
func TestPrefixCache(t *testing.T) {
	// Prefill (~330 ms) dwarfs one step, and the repeat is measured twice so
	// a stall of the busy machine cannot hide the cache hit.
	_, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 600*time.Microsecond), Parallel: 1})
	long := strings.Repeat("Tell me about the history of distributed tracing systems. ", 50)
	first := measure(t, context.Background(), url, "/api/chat", chatBody(long, 2))
	again := measure(t, context.Background(), url, "/api/chat", chatBody(long, 2))
	if again2 := measure(t, context.Background(), url, "/api/chat", chatBody(long, 2)); again2.m.FirstToken.Sub(again2.m.Start) < again.m.FirstToken.Sub(again.m.Start) {
		again = again2
	}
	other := measure(t, context.Background(), url, "/api/chat", chatBody("Something else: "+long, 2))
	tf, _ := first.m.TTFT()
	ta, _ := again.m.TTFT()
	to, _ := other.m.TTFT()
	if ta > tf/2 || to < tf/2 {
		t.Errorf("TTFT first %v, same prompt again %v (want < half), new prompt %v (want about the first)", tf, ta, to)
	}
	if first.m.InputTokens != again.m.InputTokens || first.m.InputTokens < 500 {
		t.Errorf("prompt_eval_count %d then %d: cached tokens count too", first.m.InputTokens, again.m.InputTokens)
	}
	if pe := again.m.Ollama.PromptEvalDuration; pe > first.m.Ollama.PromptEvalDuration/2 {
		t.Errorf("prompt_eval_duration %v then %v", time.Duration(first.m.Ollama.PromptEvalDuration), time.Duration(pe))
	}
}

// TestLongestPrefixSlot: a request takes the free slot sharing the longest
// prefix with its prompt.
func TestLongestPrefixSlot(t *testing.T) {
	e := &engine{slots: make([]slot, 3), maxQueue: 1, ctxLen: 100, wake: make(chan struct{}, 1)}
	e.slots[0].cache = []uint32{1, 2, 9}
	e.slots[1].cache = []uint32{1, 2, 3, 4}
	e.slots[2].cache = []uint32{1, 2, 3, 4, 5, 6}
	e.slots[2].job = &job{} // busy
	j := newJob([]uint32{1, 2, 3, 4, 5}, 1, 1, nil)
	e.queue = []*job{j}
	e.admitLocked(time.Now(), false)
	if j.slot != 1 || j.cached != 4 {
		t.Errorf("slot %d with %d cached, want slot 1 with 4", j.slot, j.cached)
	}
	// The whole prompt cached: the last token is evaluated again.
	e.slots[1].job = nil
	k := newJob([]uint32{1, 2, 3, 4}, 1, 1, nil)
	e.queue = []*job{k}
	e.admitLocked(time.Now(), false)
	if k.cached != 3 {
		t.Errorf("%d cached, want 3", k.cached)
	}
}

// TestConversationCache: the next turn of a conversation finds the previous
// prompt and reply in the slot's cache, so only the new message is read.
func TestConversationCache(t *testing.T) {
	_, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 600*time.Microsecond), Parallel: 1})
	question := strings.Repeat("Describe how a request travels through a proxy. ", 40)
	first := measure(t, context.Background(), url, "/api/chat", chatBody(question, 30))
	reply := replyText(t, first.body)
	turn := fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":%q},{"role":"assistant","content":%q},`+
		`{"role":"user","content":"And back?"}],"options":{"num_predict":2}}`, question, reply)
	second := measure(t, context.Background(), url, "/api/chat", turn)
	if second.m.InputTokens <= first.m.InputTokens+30 {
		t.Fatalf("the second turn has %d prompt tokens, the first %d", second.m.InputTokens, first.m.InputTokens)
	}
	pe1, pe2 := time.Duration(first.m.Ollama.PromptEvalDuration), time.Duration(second.m.Ollama.PromptEvalDuration)
	if pe2 > pe1/2 {
		t.Errorf("prompt_eval_duration %v for the first turn, %v for the second (want well under half)", pe1, pe2)
	}
}

// replyText joins the message contents of an /api/chat stream.
func replyText(t *testing.T, body []byte) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var c struct {
			Message message `json:"message"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		b.WriteString(c.Message.Content)
	}
	return b.String()
}

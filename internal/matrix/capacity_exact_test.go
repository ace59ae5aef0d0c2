package matrix

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// slotEngine is an engine whose capacity is known exactly: P slots
// (OLLAMA_NUM_PARALLEL), FIFO queueing (Go's channel waiters are served in
// order), every answer holding its slot for service: the first token as
// soon as the slot is free, then a token every service/tokens.
type slotEngine struct {
	fakeEngine
	service time.Duration
	tokens  int

	mu    sync.Mutex
	slots chan struct{}
}

func (e *slotEngine) Start(ctx context.Context, s Setting) (SettingFacts, error) {
	e.mu.Lock()
	e.slots = make(chan struct{}, s.Parallel)
	e.mu.Unlock()
	return e.fakeEngine.Start(ctx, s)
}

func (e *slotEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	slots := e.slots
	e.mu.Unlock()
	select {
	case slots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	defer func() { <-slots }()
	w.Header().Set("Content-Type", "application/x-ndjson")
	step := e.service / time.Duration(e.tokens)
	for i := range e.tokens {
		if i > 0 {
			time.Sleep(step)
		}
		fmt.Fprintf(w, `{"model":"m","message":{"role":"assistant","content":"t%d "},"done":false}`+"\n", i)
		w.(http.Flusher).Flush()
	}
	fmt.Fprintf(w, `{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":%d}`+"\n", e.tokens)
}

// TestCapacityOfAKnownEngine searches the concurrency an engine of P
// slots serves within a TTFT p95 limit well below service/P, and finds P.
// At P users nobody queues. At P+1 one request always waits (a closed
// loop of P+1 users on P slots), so the mean wait is service/P (Little's
// law); as no wait can exceed service, a p95 under
// (service/P − 0.05·service)/0.95 cannot hold. The limit here (300 ms) is
// far from both: 447 ms is the bound at P=3, and TTFT without a queue is
// milliseconds, which leaves a loaded machine room.
func TestCapacityOfAKnownEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("about 40 s of probes")
	}
	eng := &slotEngine{service: 1500 * time.Millisecond, tokens: 10}
	srv := httptest.NewServer(eng)
	t.Cleanup(srv.Close)
	slo, err := ParseSLO("ttft_p95=300ms")
	if err != nil {
		t.Fatal(err)
	}
	s := Settings{Backend: "external", Model: "m", API: "ollama", PromptSizes: []string{"small"},
		NumParallel: []int{1, 3}, NumCtx: []int{512}, Warmup: Duration(1500 * time.Millisecond),
		Duration: Duration(4500 * time.Millisecond), SLO: slo,
		Search: Search{Kind: SearchConcurrency, Max: 16, Start: 1}}
	if err := s.Validate([]string{"small"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := Create(dir, Header{Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	r := &Runner{Settings: s, Engine: eng, Store: st, Load: LoadGenerator(srv.URL, s, 30*time.Second, nil),
		Log: &log, MemInterval: 50 * time.Millisecond}
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	caps, probes, err := LoadCapacity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 2 {
		t.Fatalf("%d capacity rows, want 2\n%s", len(caps), log.String())
	}
	for _, c := range caps {
		if c.MaxConcurrency != c.Parallel || c.Status != StatusOK || c.AtBound {
			t.Errorf("%s: capacity %d (%s, at bound %v), want %d users\n%s", c.Name, c.MaxConcurrency, c.Status, c.AtBound, c.Parallel, log.String())
		}
		if c.GoodputRPS <= 0 || c.TTFTP95Ms <= 0 || c.TTFTP95Ms > 300 || c.PeakMemBytes == 0 || c.MeanOutputTokens != 10 {
			t.Errorf("%s: figures at capacity %+v", c.Name, c)
		}
	}
	// p=1: 1 met, 2 missed; p=3: 1, 2 met, 4 missed, 3 met.
	var loads []string
	for _, p := range probes {
		loads = append(loads, fmt.Sprintf("p%d:c%g:%v", p.Parallel, p.Load, p.Met))
		if p.Requests == 0 || p.Name == "" || (p.Met && p.Why != "") || (!p.Met && !strings.Contains(p.Why, "ttft_p95")) {
			t.Errorf("probe %+v", p)
		}
	}
	if got, want := strings.Join(loads, " "), "p1:c1:true p1:c2:false p3:c1:true p3:c2:true p3:c4:false p3:c3:true"; got != want {
		t.Errorf("probes %s, want %s", got, want)
	}
	csv, err := os.ReadFile(dir + "/" + CapacityCSV)
	if err != nil || !strings.HasPrefix(string(csv), "parallel,num_ctx,prompt_size,search,slo,max_concurrency,") || strings.Count(string(csv), "\n") != 3 {
		t.Errorf("capacity.csv (%v):\n%s", err, csv)
	}
}

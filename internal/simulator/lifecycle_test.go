package simulator

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestCloseCutsStreams: Close ends the streams in flight (without their
// final marker, as when Ollama's runner goes away) and refuses the queued
// requests; it returns with every goroutine gone (goleak checks).
func TestCloseCutsStreams(t *testing.T) {
	streaming := make(chan struct{})
	var once sync.Once
	s, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 0), Parallel: 1,
		OnChunkSent: func(ChunkSent) { once.Do(func() { close(streaming) }) }})
	running := make(chan result, 1)
	queued := make(chan result, 1)
	go func() { running <- measure(t, context.Background(), url, "/api/chat", chatBody("endless", 100000)) }()
	<-streaming
	go func() { queued <- measure(t, context.Background(), url, "/api/chat", chatBody("waiting", 5)) }()
	waitFor(t, "the second request to queue", func() bool { w, _ := s.Load(); return w == 1 })
	s.Close()
	r := <-running
	if r.m.OK() || r.m.ErrorType != "incomplete_stream" || r.m.OutputChunks == 0 {
		t.Errorf("the running stream: %s after %d chunks", r.m.ErrorType, r.m.OutputChunks)
	}
	q := <-queued
	if q.status != http.StatusInternalServerError || string(q.body) != `{"error":"server is shutting down"}` {
		t.Errorf("the queued request: %d %s", q.status, q.body)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestTimeScale: TimeScale stretches every step (lower bound: a busy
// machine only adds) and compresses the model load (the default profile
// loads in 2 s; at 0.01 the whole first request takes far less).
func TestTimeScale(t *testing.T) {
	_, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 0), Parallel: 1, TimeScale: 3})
	r := measure(t, context.Background(), url, "/api/chat", chatBody("slow", 10))
	if tpot, ok := r.m.TPOT(); !ok || tpot < 3*testStep*9/10 {
		t.Errorf("TPOT %v at TimeScale 3, want at least %v", tpot, 3*testStep)
	}
	_, url = startServer(t, Config{TimeScale: 0.01})
	start := time.Now()
	r = measure(t, context.Background(), url, "/api/chat",
		`{"model":"qwen2.5:7b-instruct","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":10}}`)
	if took := time.Since(start); !r.m.OK() || took > time.Second {
		t.Errorf("first request at TimeScale 0.01: ok %t, took %v (unscaled: over 2 s)", r.m.OK(), took)
	}
	if load := time.Duration(r.m.Ollama.LoadDuration); load < 20*time.Millisecond*9/10 {
		t.Errorf("load_duration %v, want at least 2 s × 0.01", load)
	}
}

// TestMaxQueueDuringLoad: while the model loads, the first request and
// MaxQueue more wait for it; the next is refused, as Ollama's scheduler
// refuses what its pending queue cannot hold.
func TestMaxQueueDuringLoad(t *testing.T) {
	p := stepProfile(testStep, 0)
	p.LoadTime = time.Hour
	s, url := startServer(t, Config{CustomProfile: p, MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for i := range 2 {
		go func() {
			measure(t, ctx, url, "/api/chat", chatBody("waits for the load", 1))
			done <- struct{}{}
		}()
		waitFor(t, "the request to wait for the load", func() bool {
			s.loadMu.Lock()
			defer s.loadMu.Unlock()
			return s.attempt != nil && s.attempt.waiters == i+1
		})
	}
	r := measure(t, context.Background(), url, "/api/chat", chatBody("one too many", 1))
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("the third request during the load: %d %s", r.status, r.body)
	}
	cancel()
	<-done
	<-done
}

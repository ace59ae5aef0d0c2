package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// fakeUpstream streams answers in the API of the request's path
// (benchAPIs): ?tokens= output events, the first after ?first=, then one
// every ?gap= (0: back to back), then the events that end the answer with
// its usage. With ?hold=H every stream stops after H tokens until release
// is closed.
type fakeUpstream struct {
	held    atomic.Int64
	mu      sync.Mutex
	release chan struct{}
}

func (u *fakeUpstream) releaser() chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.release
}

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	q := r.URL.Query()
	tokens, _ := strconv.Atoi(q.Get("tokens"))
	hold, _ := strconv.Atoi(q.Get("hold"))
	first, _ := time.ParseDuration(q.Get("first"))
	gap, _ := time.ParseDuration(q.Get("gap"))
	api, ok := apiByPath[r.URL.Path]
	if !ok {
		http.Error(w, "the bench upstream does not serve "+r.URL.Path, http.StatusNotFound)
		return
	}
	release := u.releaser()
	w.Header().Set("Content-Type", api.contentType)
	w.WriteHeader(200)
	f := w.(http.Flusher)
	if api.head != "" {
		_, _ = io.WriteString(w, api.head)
	}
	f.Flush()
	ctx := r.Context()
	if first > 0 && !sleep(ctx, first) {
		return
	}
	buf := make([]byte, 0, 256)
	for i := range tokens {
		if i > 0 && gap > 0 && !sleep(ctx, gap) {
			return
		}
		if hold > 0 && i == hold {
			u.held.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return
			}
		}
		buf = api.token(buf[:0], i)
		if _, err := w.Write(buf); err != nil {
			return
		}
		f.Flush()
	}
	_, _ = w.Write(api.tail(buf[:0], tokens))
	f.Flush()
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// answer is what the fake upstream is asked to stream.
type answer struct {
	api    *benchAPI // nil: OpenAI chat completions
	tokens int
	first  time.Duration // before the first token
	gap    time.Duration // between tokens; 0: back to back
	hold   int           // stop after this many tokens until released; 0: never
}

func (a answer) query() string {
	q := fmt.Sprintf("tokens=%d&first=%s&gap=%s", a.tokens, a.first, a.gap)
	if a.hold > 0 {
		q += fmt.Sprintf("&hold=%d", a.hold)
	}
	return q
}

// length is how long the answer takes when nothing is late.
func (a answer) length() time.Duration {
	return a.first + time.Duration(max(a.tokens-1, 0))*a.gap
}

// result is one request as the client saw it.
type result struct {
	ttft   time.Duration
	chunks int    // output chunks (one token each)
	broken string // why the stream is not the upstream's answer, whole; "" when it is
}

// wire is the answer's API.
func (a answer) wire() *benchAPI {
	if a.api == nil {
		return benchAPIs["openai"]
	}
	return a.api
}

// streamOnce sends one streaming request to base and reads the answer
// through the project's stream parser. A stream is broken unless it ends
// cleanly with exactly the tokens asked for and the usage saying so.
// onChunk, when set, sees each output chunk.
func streamOnce(ctx context.Context, c *http.Client, base string, a answer, onChunk func(int)) result {
	start := time.Now()
	api := a.wire()
	req, err := http.NewRequestWithContext(ctx, "POST", base+api.path+"?"+a.query(), strings.NewReader(api.body))
	if err != nil {
		return result{broken: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	cfg := stream.Config{API: api.api, Start: start, NoChunkText: true}
	if onChunk != nil {
		cfg.OnChunk = func(ev stream.ChunkEvent) { onChunk(ev.Index) }
	}
	meter := stream.NewMeter(cfg)
	resp, err := c.Do(req)
	if err != nil {
		return result{broken: err.Error()}
	}
	defer resp.Body.Close()
	meter.Response(resp.StatusCode, resp.Header.Get("Content-Type"))
	_, err = io.Copy(meter, resp.Body)
	m := meter.Finish(err)
	ttft, _ := m.TTFT()
	r := result{ttft: ttft, chunks: m.OutputChunks}
	switch {
	case !m.OK():
		r.broken = m.ErrorType + ": " + m.Error
	case m.OutputChunks != a.tokens || m.OutputTokens != a.tokens:
		r.broken = fmt.Sprintf("%d chunks and %d tokens, want %d", m.OutputChunks, m.OutputTokens, a.tokens)
	}
	return r
}

// runFor runs conc streams, each sending requests one after another until
// d has passed since the load began (a request under way then finishes).
// Stream i starts i/conc of one answer's length late, so arrivals are
// spread as in steady serving rather than one burst. Every request is
// bounded by timeout.
func runFor(c *http.Client, base string, a answer, conc int, d, timeout time.Duration) []result {
	var wg sync.WaitGroup
	out := make([][]result, conc)
	begin := time.Now()
	spread := a.length()
	for i := range conc {
		wg.Go(func() {
			time.Sleep(spread * time.Duration(i) / time.Duration(conc))
			for time.Since(begin) < d {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				out[i] = append(out[i], streamOnce(ctx, c, base, a, nil))
				cancel()
			}
		})
	}
	wg.Wait()
	var all []result
	for _, rs := range out {
		all = append(all, rs...)
	}
	return all
}

func getStats(c *http.Client, base string, gc bool) (childStats, error) {
	u := base + "/__bench/stats"
	if gc {
		u += "?gc=1"
	}
	resp, err := c.Get(u)
	if err != nil {
		return childStats{}, fmt.Errorf("read proxy stats: %w", err)
	}
	defer resp.Body.Close()
	var s childStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("decode proxy stats: %w", err)
	}
	return s, nil
}

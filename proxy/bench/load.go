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

// fakeUpstream streams Ollama chat answers of ?tokens= chunks, gap apart,
// the first at once. With ?hold=H every stream stops after H tokens until
// release is closed.
type fakeUpstream struct {
	gap     time.Duration
	held    atomic.Int64
	mu      sync.Mutex
	release chan struct{}
}

func (u *fakeUpstream) releaser() chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.release
}

const chunkFmt = `{"model":"bench","created_at":"2026-01-01T00:00:00.000000Z","message":{"role":"assistant","content":" tok%d"},"done":false}` + "\n"

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	tokens, _ := strconv.Atoi(r.URL.Query().Get("tokens"))
	hold, _ := strconv.Atoi(r.URL.Query().Get("hold"))
	release := u.releaser()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(200)
	f := w.(http.Flusher)
	for i := range tokens {
		if i > 0 && u.gap > 0 {
			time.Sleep(u.gap)
		}
		if hold > 0 && i == hold {
			u.held.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, chunkFmt, i)
		f.Flush()
	}
	fmt.Fprintf(w, `{"model":"bench","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":1000,"load_duration":1,"prompt_eval_count":8,"prompt_eval_duration":10,"eval_count":%d,"eval_duration":900}`+"\n", tokens)
	f.Flush()
}

// result is one request as the client saw it.
type result struct {
	ttft   time.Duration
	chunks int
	err    error
}

// stream sends one chat request to base and reads the answer through the
// project's stream parser. onChunk, when set, sees each output chunk.
func streamOnce(ctx context.Context, c *http.Client, base, query string, onChunk func(int)) result {
	body := `{"model":"bench","messages":[{"role":"user","content":"hello"}],"stream":true}`
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/chat?"+query, strings.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	var meter *stream.Meter
	cfg := stream.Config{API: stream.APIOllama, Start: start, NoChunkText: true}
	if onChunk != nil {
		cfg.OnChunk = func(ev stream.ChunkEvent) { onChunk(ev.Index) }
	}
	meter = stream.NewMeter(cfg)
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	meter.Response(resp.StatusCode, resp.Header.Get("Content-Type"))
	_, err = io.Copy(meter, resp.Body)
	m := meter.Finish(err)
	if !m.OK() {
		return result{err: fmt.Errorf("%s: %s", m.ErrorType, m.Error)}
	}
	ttft, _ := m.TTFT()
	return result{ttft: ttft, chunks: m.OutputChunks}
}

// runLoad runs conc streams, each sending perStream requests one after
// another. Stream i starts i/conc of spread late, so arrivals are spread
// as in steady serving rather than one burst.
func runLoad(c *http.Client, base, query string, conc, perStream int, spread time.Duration) ([]result, error) {
	var wg sync.WaitGroup
	out := make([][]result, conc)
	for i := range conc {
		wg.Go(func() {
			time.Sleep(spread * time.Duration(i) / time.Duration(conc))
			for range perStream {
				out[i] = append(out[i], streamOnce(context.Background(), c, base, query, nil))
			}
		})
	}
	wg.Wait()
	var all []result
	for _, rs := range out {
		for _, r := range rs {
			if r.err != nil {
				return nil, r.err
			}
			all = append(all, r)
		}
	}
	return all, nil
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

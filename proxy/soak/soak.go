package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokentrace/tokentrace/internal/proxyproc"
	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/stream"
)

// result is what a soak run saw.
type result struct {
	started      time.Time
	samples      []proxyproc.Health
	paths        []string
	completed    []atomic.Int64 // answers read to their end, per path
	skipped      []skippedPath
	ok, failed   atomic.Int64
	leftEarly    atomic.Int64
	restarts     int
	growth       []growth
	sampleErrors int
}

// growth is one series' change from the baseline minute to the last one.
type growth struct {
	series          string
	baseline, final float64
}

func (g growth) ratio() float64 {
	if g.baseline == 0 {
		return 0
	}
	return g.final/g.baseline - 1
}

// streamingPaths are the inference endpoints of every API the stream
// package knows, embeddings left out (they do not stream).
func streamingPaths() []string {
	var out []string
	for _, p := range stream.InferencePaths() {
		if ep, _ := stream.EndpointOf(p); ep.Operation != stream.OpEmbeddings {
			out = append(out, p)
		}
	}
	return out
}

// skippedPath is an inference path the upstream does not stream.
type skippedPath struct{ path, why string }

// servedPaths keeps the paths the upstream answers with a stream, asked
// directly (the simulator may not speak every API the stream package reads
// yet); the others are reported as left out.
func servedPaths(ctx context.Context, upstream, model string, paths []string) ([]string, []skippedPath) {
	var ok []string
	var skipped []skippedPath
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for _, p := range paths {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, upstream+p, bytes.NewReader(requestBody(model, 4)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			skipped = append(skipped, skippedPath{p, err.Error()})
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			skipped = append(skipped, skippedPath{p, fmt.Sprintf("the upstream answers %d", resp.StatusCode)})
			continue
		}
		ok = append(ok, p)
	}
	return ok, skipped
}

// requestBody asks any of the APIs for a stream of n tokens: each reads
// the fields it knows (messages, prompt or input; its own output limit)
// and ignores the others.
func requestBody(model string, n int) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":             model,
		"stream":            true,
		"messages":          []map[string]string{{"role": "user", "content": "Tell me about the sea."}},
		"prompt":            "Tell me about the sea.",
		"input":             "Tell me about the sea.",
		"max_tokens":        n,
		"max_output_tokens": n,
		"options":           map[string]int{"num_predict": n},
		"stream_options":    map[string]bool{"include_usage": true},
	})
	return b
}

// simHandler serves the current simulator; a restart swaps in a new one,
// as a restarted server process starts afresh.
type simHandler struct {
	cur atomic.Pointer[simulator.Server]
}

func (h *simHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.cur.Load().ServeHTTP(w, r) }

func newSimulator(o options) (*simulator.Server, error) {
	p := simulator.Profiles[simulator.DefaultProfile]
	p.Name, p.LoadTime, p.RequestOverhead = "soak", 200*time.Millisecond, time.Millisecond
	p.StepBase, p.StepPerSeq, p.PrefillPerToken = o.tokenGap, 0, 0
	return simulator.New(simulator.Config{CustomProfile: &p, Parallel: o.streams, MaxQueue: 2 * o.streams, KeepAlive: -1})
}

func soak(ctx context.Context, o options, logw io.Writer) (*result, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", o.out, err)
	}
	sim, err := newSimulator(o)
	if err != nil {
		return nil, fmt.Errorf("start the simulator: %w", err)
	}
	h := &simHandler{}
	h.cur.Store(sim)
	defer func() { _ = h.cur.Load().Close() }()
	up, err := proxyproc.NewUpstream(h)
	if err != nil {
		return nil, err
	}
	defer up.Kill()
	px, err := proxyproc.Start(ctx, o.proxyBin, filepath.Join(o.out, "proxy.log"), []string{up.URL()}, "--eject-backoff", "500ms")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := px.Stop(); err != nil {
			fmt.Fprintf(logw, "soak: stop the proxy: %v\n", err)
		}
	}()
	csvf, err := os.Create(filepath.Join(o.out, "samples.csv"))
	if err != nil {
		return nil, fmt.Errorf("create samples.csv: %w", err)
	}
	defer csvf.Close()
	fmt.Fprintln(csvf, "elapsed_s,rss_bytes,goroutines,open_fds")

	paths, skipped := servedPaths(ctx, up.URL(), sim.Profile().Model, streamingPaths())
	for _, p := range skipped {
		fmt.Fprintf(logw, "soak: left out %s: %s\n", p.path, p.why)
	}
	if len(paths) == 0 {
		return nil, errors.New("the upstream streams none of the inference paths")
	}
	res := &result{started: time.Now(), paths: paths, skipped: skipped, completed: make([]atomic.Int64, len(paths))}
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * o.streams, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for i := range o.streams {
		wg.Go(func() { res.drive(runCtx, client, px.URL, sim.Profile().Model, i, o) })
	}
	if o.restartEvery > 0 {
		wg.Go(func() { res.restarts = restartLoop(runCtx, up, h, o, logw) })
	}

	admin := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var fatal error
	for fatal == nil {
		select {
		case <-runCtx.Done():
		case <-tick.C:
			if exited, err := px.Exited(); exited {
				fatal = fmt.Errorf("the proxy exited during the soak: %v", err)
				break
			}
			s, err := px.Sample(admin)
			if err != nil {
				res.sampleErrors++
				fmt.Fprintf(logw, "soak: sample: %v\n", err)
				continue
			}
			res.samples = append(res.samples, s)
			el := s.At.Sub(res.started)
			fmt.Fprintf(csvf, "%.0f,%d,%d,%d\n", el.Seconds(), s.RSS, s.Goroutines, s.OpenFDs)
			fmt.Fprintf(logw, "soak: %5.0fs rss %.1f MiB goroutines %d fds %d ok %d failed %d left %d\n",
				el.Seconds(), float64(s.RSS)/(1<<20), s.Goroutines, s.OpenFDs, res.ok.Load(), res.failed.Load(), res.leftEarly.Load())
			continue
		}
		break
	}
	cancel()
	wg.Wait()
	if fatal != nil {
		return res, fatal
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return res, res.judge(o)
}

// drive is one client: it sends streaming requests back to back, across
// every path in turn, and every so often leaves after three chunks.
func (res *result) drive(ctx context.Context, client *http.Client, base, model string, worker int, o options) {
	body := requestBody(model, o.tokens)
	limit := time.Duration(o.tokens)*o.tokenGap*4 + 30*time.Second
	for n := 0; ctx.Err() == nil; n++ {
		pi := (worker + n) % len(res.paths)
		leave := o.disconnect > 0 && (worker*7+n)%o.disconnect == 0
		ok := res.one(ctx, client, base+res.paths[pi], body, leave, limit, &res.completed[pi])
		if !ok && ctx.Err() == nil {
			select { // the upstream is restarting: do not spin
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// one sends one request; an answer read to its end counts in completed.
func (res *result) one(ctx context.Context, client *http.Client, url string, body []byte, leave bool, limit time.Duration, completed *atomic.Int64) bool {
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		res.failed.Add(1)
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			res.failed.Add(1)
		}
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		res.failed.Add(1)
		return false
	}
	br := bufio.NewReader(resp.Body)
	if leave {
		for range 3 {
			if _, err := br.ReadBytes('\n'); err != nil {
				break
			}
		}
		cancel() // the client goes away mid-stream
		res.leftEarly.Add(1)
		return true
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		if ctx.Err() == nil {
			res.failed.Add(1)
		}
		return false
	}
	res.ok.Add(1)
	completed.Add(1)
	return true
}

// restartLoop stops the upstream every o.restartEvery (cutting every
// stream it serves), keeps it down for o.restartDown, and starts a fresh
// simulator on the same address.
func restartLoop(ctx context.Context, up *proxyproc.Upstream, h *simHandler, o options, logw io.Writer) int {
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n
		case <-time.After(o.restartEvery):
		}
		up.Kill()
		old := h.cur.Load()
		sim, err := newSimulator(o)
		if err != nil {
			fmt.Fprintf(logw, "soak: new simulator: %v\n", err)
			sim = old
		} else {
			h.cur.Store(sim)
			_ = old.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.restartDown):
		}
		if err := up.Start(); err != nil {
			fmt.Fprintf(logw, "soak: restart the upstream: %v\n", err)
			return n
		}
		n++
		fmt.Fprintf(logw, "soak: upstream restarted (%d)\n", n)
	}
}

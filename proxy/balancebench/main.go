// Command balancebench measures the proxy's balancing and its stream idle
// timeout against loopback upstreams of known speed (make bench-balance;
// see docs/proxy.md). The proxy runs as a child process, as deployed.
//
//   - speeds: two upstreams, one -slow-factor times slower per token; with
//     least outstanding requests the faster one serves more.
//   - kill: three upstreams; one is killed mid-run; the requests that fail
//     must be at most those in flight on it when it died.
//   - stall: an upstream sends one chunk and then nothing; with
//     --stream-idle-timeout 2s the client's stream must end within 2.5 s of
//     that chunk (best two of three tries, the machine may be loaded).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tokentrace/tokentrace/internal/proxyproc"
)

type options struct {
	proxyBin   string
	out        string
	clients    int
	duration   time.Duration
	tokens     int
	gap        time.Duration
	slowFactor int
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("balancebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.proxyBin, "proxy", "bin/proxy", "the proxy binary")
	fs.StringVar(&o.out, "out", "bin/bench-balance", "folder for the proxies' logs")
	fs.IntVar(&o.clients, "clients", 16, "concurrent streaming clients")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of the speeds and kill runs")
	fs.IntVar(&o.tokens, "tokens", 32, "output tokens per answer")
	fs.DurationVar(&o.gap, "gap", 10*time.Millisecond, "time between tokens of the fast upstream")
	fs.IntVar(&o.slowFactor, "slow-factor", 4, "the slow upstream's gap is this many times the fast one's")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.clients < 2 || o.tokens < 2 || o.gap <= 0 || o.slowFactor < 2 || o.duration < 5*time.Second {
		fmt.Fprintln(stderr, "balancebench: want -clients ≥ 2, -tokens ≥ 2, -gap > 0, -slow-factor ≥ 2, -duration ≥ 5s")
		return 2
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fmt.Fprintln(stderr, "balancebench:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "balance benchmark: %s, %d clients, %d tokens per answer, fast upstream %v per token\n\n",
		time.Now().UTC().Format(time.RFC3339), o.clients, o.tokens, o.gap)
	failed := false
	for _, part := range []struct {
		name string
		run  func(context.Context, options, io.Writer) error
	}{{"speeds", speeds}, {"kill", kill}, {"stall", stall}} {
		if err := part.run(ctx, o, stdout); err != nil {
			fmt.Fprintf(stdout, "\n**%s: FAILED**: %v\n\n", part.name, err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// tokenUpstream streams Ollama chat answers of n tokens, gap apart, and
// counts what it serves.
type tokenUpstream struct {
	n        int
	gap      time.Duration
	served   atomic.Int64
	inflight atomic.Int64
	stall    bool // send one chunk, then nothing until the client leaves
}

func (u *tokenUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.inflight.Add(1)
	defer u.inflight.Add(-1)
	w.Header().Set("Content-Type", "application/x-ndjson")
	f := w.(http.Flusher)
	for i := range u.n {
		fmt.Fprintf(w, `{"model":"m1","message":{"role":"assistant","content":"t%d"},"done":false}`+"\n", i)
		f.Flush()
		if u.stall {
			<-r.Context().Done()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(u.gap):
		}
	}
	fmt.Fprintf(w, `{"model":"m1","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":%d,"prompt_eval_count":5}`+"\n", u.n)
	u.served.Add(1)
}

// load runs clients back-to-back streaming requests against the proxy
// until ctx ends; it returns the completed and failed counts.
func load(ctx context.Context, proxyURL string, clients int) (ok, failed int64) {
	var okN, failN atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), "POST", proxyURL+"/api/chat", strings.NewReader(`{"model":"m1"}`))
				resp, err := client.Do(req)
				if err != nil {
					failN.Add(1)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), `"done":true`) {
					failN.Add(1)
					continue
				}
				okN.Add(1)
			}
		})
	}
	wg.Wait()
	return okN.Load(), failN.Load()
}

func startUpstreams(ups ...*tokenUpstream) ([]*proxyproc.Upstream, []string, error) {
	var servers []*proxyproc.Upstream
	var urls []string
	for _, u := range ups {
		s, err := proxyproc.NewUpstream(u)
		if err != nil {
			for _, s := range servers {
				s.Kill()
			}
			return nil, nil, err
		}
		servers, urls = append(servers, s), append(urls, s.URL())
	}
	return servers, urls, nil
}

func killAll(servers []*proxyproc.Upstream) {
	for _, s := range servers {
		s.Kill()
	}
}

// speeds: the faster upstream must serve more.
func speeds(ctx context.Context, o options, w io.Writer) error {
	fast := &tokenUpstream{n: o.tokens, gap: o.gap}
	slow := &tokenUpstream{n: o.tokens, gap: time.Duration(o.slowFactor) * o.gap}
	servers, urls, err := startUpstreams(fast, slow)
	if err != nil {
		return err
	}
	defer killAll(servers)
	px, err := proxyproc.Start(ctx, o.proxyBin, filepath.Join(o.out, "speeds.log"), urls)
	if err != nil {
		return err
	}
	defer px.Stop()
	rctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	ok, failed := load(rctx, px.URL, o.clients)
	f, s := fast.served.Load(), slow.served.Load()
	fmt.Fprintf(w, "### Two upstreams of different speeds (run %v)\n\n", o.duration)
	fmt.Fprintln(w, "| upstream | time per token | answers served | share |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| fast | %v | %d | %.0f%% |\n", o.gap, f, 100*float64(f)/float64(max(f+s, 1)))
	fmt.Fprintf(w, "| slow | %v | %d | %.0f%% |\n\n", slow.gap, s, 100*float64(s)/float64(max(f+s, 1)))
	fmt.Fprintf(w, "%d answers completed, %d failed; round robin would have given each upstream half.\n\n", ok, failed)
	if f <= s || failed > 0 {
		return fmt.Errorf("the fast upstream served %d, the slow %d, %d failed: want the fast one to serve more, none failed", f, s, failed)
	}
	return nil
}

// kill: killing one of three upstreams costs at most its requests in flight.
func kill(ctx context.Context, o options, w io.Writer) error {
	ups := []*tokenUpstream{{n: o.tokens, gap: o.gap}, {n: o.tokens, gap: o.gap}, {n: o.tokens, gap: o.gap}}
	servers, urls, err := startUpstreams(ups...)
	if err != nil {
		return err
	}
	defer killAll(servers)
	px, err := proxyproc.Start(ctx, o.proxyBin, filepath.Join(o.out, "kill.log"), urls)
	if err != nil {
		return err
	}
	defer px.Stop()
	rctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var inflightAtKill int64
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-rctx.Done():
			return
		case <-time.After(o.duration / 3):
		}
		inflightAtKill = ups[0].inflight.Load()
		servers[0].Kill()
	}()
	ok, failed := load(rctx, px.URL, o.clients)
	<-killed
	fmt.Fprintf(w, "### One of three upstreams killed a third into the run (%v)\n\n", o.duration)
	fmt.Fprintln(w, "| in flight on it when killed | requests failed | completed | served by the other two |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| %d | %d | %d | %d |\n\n", inflightAtKill, failed, ok, ups[1].served.Load()+ups[2].served.Load())
	if failed > inflightAtKill {
		return fmt.Errorf("%d requests failed, more than the %d in flight on the killed upstream", failed, inflightAtKill)
	}
	return nil
}

// stall: the client's stream ends within 2.5 s of the upstream's last byte
// with --stream-idle-timeout 2s; best two of three tries.
func stall(ctx context.Context, o options, w io.Writer) error {
	up := &tokenUpstream{n: 2, stall: true}
	servers, urls, err := startUpstreams(up)
	if err != nil {
		return err
	}
	defer killAll(servers)
	px, err := proxyproc.Start(ctx, o.proxyBin, filepath.Join(o.out, "stall.log"), urls, "--stream-idle-timeout", "2s")
	if err != nil {
		return err
	}
	defer px.Stop()
	const bound = 2500 * time.Millisecond
	var took []time.Duration
	within := 0
	for range 3 {
		d, err := stalledStream(ctx, px.URL)
		if err != nil {
			return err
		}
		took = append(took, d)
		if d <= bound && d >= 1900*time.Millisecond { // the proxy starts its wait a moment before the client has the chunk
			within++
		}
	}
	fmt.Fprintf(w, "### Stalled upstream, --stream-idle-timeout 2s\n\nstream ended after the last upstream byte: %v (bound %v)\n\n", took, bound)
	if within < 2 {
		return fmt.Errorf("the stream ended within [1.9s, %v] in %d of 3 tries: %v", bound, within, took)
	}
	return nil
}

// stalledStream reads the first chunk, then measures until the stream ends
// (it must end with an error: the proxy cuts it).
func stalledStream(ctx context.Context, proxyURL string) (time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, "POST", proxyURL+"/api/chat", strings.NewReader(`{"model":"m1"}`))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("stalled request: %w", err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadBytes('\n'); err != nil {
		return 0, fmt.Errorf("first chunk: %w", err)
	}
	last := time.Now()
	_, err = io.Copy(io.Discard, br)
	took := time.Since(last)
	if err == nil {
		return took, errors.New("the stalled stream ended cleanly; want it cut")
	}
	if rctx.Err() != nil {
		return took, errors.New("the stalled stream was never cut (30 s)")
	}
	return took, nil
}

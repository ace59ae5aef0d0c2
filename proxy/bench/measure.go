package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// roundFig is one variant loaded at one scale for one round.
type roundFig struct {
	requests, broken int
	tokens           int       // output tokens the clients received
	ttft             []float64 // seconds, of the streams not broken
	cpu              time.Duration
	syscalls         uint64 // reads and writes of the proxy process
	measured         bool   // a proxy process: cpu and syscalls are set
	mallocs          uint64
	hasMallocs       bool // a Go proxy process: mallocs is set
	collectorCPU     time.Duration
	why              string // one reason a stream broke
}

type variantReport struct {
	name   string
	rounds [][]roundFig // per scale, per round
	mem    []memReading
}

// memReading is the proxy's live heap and stacks per in-flight stream,
// with every stream holding after `hold` tokens.
type memReading struct {
	hold           int
	perStream      float64 // bytes
	goroutinesPerS float64
}

type report struct {
	o         options
	scales    []scale
	variants  []*variantReport
	notes     []string
	spansSent int64  // by the gateway variants: two per request
	spansIn   int64  // accepted by the collector
	dropped   uint64 // by the gateways' batch processors
	collector bool
}

type target struct {
	vr    *variantReport
	base  string
	child *childProc // nil for direct
}

// measure runs every variant against one fake upstream. The proxies run
// all the time in their child processes; each scale goes round after round
// through the variants, so a neighbour's burst of CPU falls on one round of
// each rather than on one variant, and each round starts one variant later
// than the one before, so no variant always follows the same one.
func measure(o options) (*report, error) {
	rep := &report{o: o, scales: o.scales()}
	up := &fakeUpstream{release: make(chan struct{})}
	srv := httptest.NewServer(up)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 8192, MaxIdleConnsPerHost: 8192, DisableCompression: true}}
	defer client.CloseIdleConnections()
	dir, err := os.MkdirTemp("", "proxybench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	var col *collector
	if o.otelcol != "" && (contains(o.variants, "gateway") || contains(o.variants, "gateway-events-off")) {
		if col, err = startCollector(o.otelcol, dir); err != nil {
			return nil, err
		}
		defer col.stop()
		rep.collector = true
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			if t.child != nil {
				_ = t.child.stop()
			}
		}
	}()
	for _, v := range o.variants {
		t := &target{vr: &variantReport{name: v}, base: srv.URL}
		switch v {
		case "direct":
		case "nginx":
			bin := findNginx(o.nginx)
			if bin == "" {
				rep.notes = append(rep.notes, "nginx: not installed (apt-get install nginx), column left out")
				continue
			}
			if t.child, err = startNginx(bin, srv.URL, dir); err != nil {
				return nil, err
			}
			rep.notes = append(rep.notes, "nginx: "+nginxVersion(bin))
		default:
			otlp := ""
			if col != nil {
				otlp = col.OTLP
			}
			if t.child, err = startChild(v, srv.URL, otlp, o); err != nil {
				return nil, err
			}
		}
		if t.child != nil {
			t.base = t.child.base
		}
		targets = append(targets, t)
		rep.variants = append(rep.variants, t.vr)
	}

	for si, sc := range rep.scales {
		a := answer{api: sc.api, tokens: o.tokens, first: o.firstToken, gap: sc.gap}
		for _, t := range targets {
			t.vr.rounds = append(t.vr.rounds, nil)
			if err := warm(client, t, sc.api, sc.streams, o.requestTimeout); err != nil {
				return nil, err
			}
			if isGateway(t.vr.name) {
				rep.spansSent += 2 * int64(sc.streams)
			}
		}
		for ri := range o.rounds {
			// Each round starts one variant later: in a fixed order the
			// variant after direct always had the quietest slot.
			for _, t := range rotated(targets, ri) {
				f, err := round(client, t, col, a, sc.streams, o)
				if err != nil {
					return nil, fmt.Errorf("%s, %v: %w", t.vr.name, sc, err)
				}
				t.vr.rounds[si] = append(t.vr.rounds[si], f)
				if isGateway(t.vr.name) {
					rep.spansSent += 2 * int64(f.requests)
				}
			}
		}
		client.CloseIdleConnections()
	}
	if col != nil {
		// The gateway's batch processor sends within a second; the collector counts on receipt.
		time.Sleep(3 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rep.spansIn, err = col.acceptedSpans(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			if isGateway(t.vr.name) {
				st, err := getStats(client, t.base, false)
				if err != nil {
					return nil, err
				}
				rep.dropped += st.SpansDropped
			}
		}
	}
	// Memory last, after the spans are counted: measured first, holding 256
	// streams to 512 tokens left the gateway slower at the next scale (32
	// unpaced: 25 µs per token against 17-19 µs without; the bare proxy
	// unchanged). memStreams streams warm the connections, then hold.
	for _, t := range targets {
		if t.child == nil || !t.child.goStats || o.memStreams == 0 {
			continue
		}
		if err := warm(client, t, nil, o.memStreams, o.requestTimeout); err != nil {
			return nil, err
		}
		if err := memoryPhases(o, up, client, t.base, t.vr); err != nil {
			return nil, fmt.Errorf("%s: %w", t.vr.name, err)
		}
	}
	for _, t := range targets {
		if t.child == nil {
			continue
		}
		err := t.child.stop()
		t.child = nil // stopped either way: the deferred stop must not wait for it again
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.vr.name, err)
		}
	}
	return rep, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// rotated is xs starting from its element r (modulo its length): over
// len(xs) rounds each element takes each place once.
func rotated[T any](xs []T, r int) []T {
	if len(xs) == 0 {
		return nil
	}
	r %= len(xs)
	return append(append(make([]T, 0, len(xs)), xs[r:]...), xs[:r]...)
}

func isGateway(v string) bool { return v == "gateway" || v == "gateway-events-off" }

// warm opens the scale's connections and runs the code paths once: every
// stream sends one short answer. A proxy that breaks most of them is not
// worth measuring.
func warm(c *http.Client, t *target, api *benchAPI, streams int, timeout time.Duration) error {
	a := answer{api: api, tokens: 2}
	var wg sync.WaitGroup
	var broken atomic.Int64
	var why atomic.Value
	for range streams {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if r := streamOnce(ctx, c, t.base, a, nil); r.broken != "" {
				broken.Add(1)
				why.Store(r.broken)
			}
		})
	}
	wg.Wait()
	if b := broken.Load(); b*2 > int64(streams) {
		return fmt.Errorf("%s: warm-up at %d streams: %d broken (%v)", t.vr.name, streams, b, why.Load())
	}
	return nil
}

// exportSettle is how long a gateway's round waits after its load for the
// spans still queued: the batch processor's timeout (telemetry.BatchConfig's
// default 1 s) and the collector's receipt.
const exportSettle = 1500 * time.Millisecond

// round loads one variant for o.duration and reads what its process spent.
func round(c *http.Client, t *target, col *collector, a answer, streams int, o options) (roundFig, error) {
	var f roundFig
	var before childStats
	var cpu0, col0 time.Duration
	var sys0 uint64
	var err error
	if t.child != nil {
		if cpu0, err = procCPU(t.child.pid(), t.child.workers); err != nil {
			return f, err
		}
		if sys0, err = procSyscalls(t.child.pid(), t.child.workers); err != nil {
			return f, err
		}
		if t.child.goStats {
			if before, err = getStats(c, t.base, false); err != nil {
				return f, err
			}
		}
	}
	if col != nil && isGateway(t.vr.name) {
		if col0, err = procCPU(col.pid(), false); err != nil {
			return f, err
		}
	}
	res := runFor(c, t.base, a, streams, o.duration, o.requestTimeout)
	if isGateway(t.vr.name) {
		// The gateway's last spans leave up to its batch timeout (1 s)
		// after the load, and the collector takes them in: that work is
		// counted in this round, not left to slow the next variant's.
		time.Sleep(exportSettle)
	}
	if t.child != nil {
		cpu1, err := procCPU(t.child.pid(), t.child.workers)
		if err != nil {
			return f, err
		}
		sys1, err := procSyscalls(t.child.pid(), t.child.workers)
		if err != nil {
			return f, err
		}
		f.cpu, f.syscalls, f.measured = cpu1-cpu0, sys1-sys0, true
		if t.child.goStats {
			after, err := getStats(c, t.base, false)
			if err != nil {
				return f, err
			}
			f.mallocs, f.hasMallocs = after.Mallocs-before.Mallocs, true
		}
	}
	if col != nil && isGateway(t.vr.name) {
		col1, err := procCPU(col.pid(), false)
		if err != nil {
			return f, err
		}
		f.collectorCPU = col1 - col0
	}
	for _, r := range res {
		f.requests++
		f.tokens += r.chunks
		if r.broken != "" {
			f.broken++
			f.why = r.broken
			continue
		}
		f.ttft = append(f.ttft, r.ttft.Seconds())
	}
	if f.requests == 0 || f.broken == f.requests {
		return f, fmt.Errorf("no stream served (%d requests): %s", f.requests, f.why)
	}
	return f, nil
}

func memoryPhases(o options, up *fakeUpstream, c *http.Client, base string, vr *variantReport) error {
	for _, hold := range []int{o.hold, o.longHold} {
		if hold == 0 {
			continue
		}
		r, err := memoryPhase(o, up, c, base, hold)
		if err != nil {
			return err
		}
		vr.mem = append(vr.mem, r)
	}
	return nil
}

// memoryPhase holds o.memStreams streams mid-answer and reads the proxy's
// live heap and stacks against an idle baseline.
func memoryPhase(o options, up *fakeUpstream, c *http.Client, base string, hold int) (memReading, error) {
	mr := memReading{hold: hold}
	n := o.memStreams
	base0, err := getStats(c, base, true)
	if err != nil {
		return mr, err
	}
	up.mu.Lock()
	up.release = make(chan struct{})
	release := up.release
	up.mu.Unlock()
	up.held.Store(0)

	var reached atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	a := answer{tokens: hold + 8, gap: 2 * time.Millisecond, hold: hold}
	for range n {
		wg.Go(func() {
			r := streamOnce(ctx, c, base, a, func(i int) {
				if i == hold-1 {
					reached.Add(1)
				}
			})
			if r.broken != "" {
				errs <- r.broken
			}
		})
	}
	for reached.Load() < int64(n) || up.held.Load() < int64(n) {
		if ctx.Err() != nil {
			close(release)
			wg.Wait()
			return mr, fmt.Errorf("memory phase: only %d of %d streams reached token %d", reached.Load(), n, hold)
		}
		time.Sleep(10 * time.Millisecond)
	}
	held, err := getStats(c, base, true)
	close(release)
	wg.Wait()
	close(errs)
	if err != nil {
		return mr, err
	}
	if e, ok := <-errs; ok {
		return mr, fmt.Errorf("memory phase: a stream broke: %s", e)
	}
	live := float64(held.HeapInuse+held.StackInuse) - float64(base0.HeapInuse+base0.StackInuse)
	mr.perStream = live / float64(n)
	mr.goroutinesPerS = float64(held.Goroutines-base0.Goroutines) / float64(n)
	return mr, nil
}

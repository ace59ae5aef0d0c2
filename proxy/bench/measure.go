package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// phase is one load run of one variant.
type phase struct {
	conc     int
	requests int
	chunks   int
	ttft     []float64 // seconds
	cpu      time.Duration
	mallocs  uint64
	measured bool // proxy process figures were read
}

type variantReport struct {
	name         string
	single, many phase
	roundCPU     []float64 // proxy CPU ns per chunk, per round of the many-streams phase
	mem          []memReading
}

// memReading is the proxy's live heap and stacks per in-flight stream,
// with every stream holding after `hold` tokens.
type memReading struct {
	hold           int
	perStream      float64 // bytes
	goroutinesPerS float64
}

// warmAndSingle warms connections and code paths up, then runs the
// one-stream phase.
func warmAndSingle(o options, c *http.Client, base string, proxied bool, vr *variantReport) error {
	if _, err := runLoad(c, base, fmt.Sprintf("tokens=%d", o.singleTokens), o.conc, 1, 0); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var err error
	vr.single, err = loadPhase(c, base, fmt.Sprintf("tokens=%d", o.singleTokens), 1, o.singles, 0, proxied)
	return err
}

// manyRound runs one round of the many-streams phase and adds it to vr.many.
func manyRound(o options, c *http.Client, base string, proxied bool, vr *variantReport) error {
	spread := time.Duration(o.tokens) * o.gap
	p, err := loadPhase(c, base, fmt.Sprintf("tokens=%d", o.tokens), o.conc, o.perStream, spread, proxied)
	if err != nil {
		return err
	}
	m := &vr.many
	m.conc, m.measured = p.conc, p.measured
	m.requests += p.requests
	m.chunks += p.chunks
	m.ttft = append(m.ttft, p.ttft...)
	m.cpu += p.cpu
	m.mallocs += p.mallocs
	if p.measured {
		vr.roundCPU = append(vr.roundCPU, float64(p.cpu.Nanoseconds())/float64(p.chunks))
	}
	return nil
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

func loadPhase(c *http.Client, base, query string, conc, perStream int, spread time.Duration, proxied bool) (phase, error) {
	p := phase{conc: conc}
	var before childStats
	var err error
	if proxied {
		if before, err = getStats(c, base, false); err != nil {
			return p, err
		}
	}
	res, err := runLoad(c, base, query, conc, perStream, spread)
	if err != nil {
		return p, fmt.Errorf("%d streams: %w", conc, err)
	}
	if proxied {
		after, err := getStats(c, base, false)
		if err != nil {
			return p, err
		}
		p.cpu, p.mallocs, p.measured = after.CPU-before.CPU, after.Mallocs-before.Mallocs, true
	}
	for _, r := range res {
		p.requests++
		p.chunks += r.chunks + 1 // the final done chunk is forwarded too
		p.ttft = append(p.ttft, r.ttft.Seconds())
	}
	return p, nil
}

// memoryPhase holds o.conc streams mid-answer and reads the proxy's live
// heap and stacks against an idle baseline.
func memoryPhase(o options, up *fakeUpstream, c *http.Client, base string, hold int) (memReading, error) {
	mr := memReading{hold: hold}
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
	errs := make(chan error, o.conc)
	query := fmt.Sprintf("tokens=%d&hold=%d", hold+8, hold)
	for range o.conc {
		wg.Go(func() {
			r := streamOnce(ctx, c, base, query, func(i int) {
				if i == hold-1 {
					reached.Add(1)
				}
			})
			if r.err != nil {
				errs <- r.err
			}
		})
	}
	for reached.Load() < int64(o.conc) || up.held.Load() < int64(o.conc) {
		if ctx.Err() != nil {
			close(release)
			wg.Wait()
			return mr, fmt.Errorf("memory phase: only %d of %d streams reached token %d", reached.Load(), o.conc, hold)
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
	if e := <-errs; e != nil {
		return mr, fmt.Errorf("memory phase: %w", e)
	}
	live := float64(held.HeapInuse+held.StackInuse) - float64(base0.HeapInuse+base0.StackInuse)
	mr.perStream = live / float64(o.conc)
	mr.goroutinesPerS = float64(held.Goroutines-base0.Goroutines) / float64(o.conc)
	return mr, nil
}

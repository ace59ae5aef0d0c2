package main

import (
	"fmt"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/stats"
)

// progress prints a live line on stderr (requests, errors, TTFT p50 so far)
// once a second, only when stderr is a terminal.
type progress struct {
	env  *environment
	mu   sync.Mutex
	n    int
	errs int
	ttft []float64
	done chan struct{}
	wg   sync.WaitGroup
}

func newProgress(env *environment) *progress {
	p := &progress{env: env, done: make(chan struct{})}
	if !env.stderrIsTTY {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				p.print("\r")
			case <-p.done:
				p.print("\r")
				fmt.Fprintln(p.env.stderr)
				return
			}
		}
	}()
	return p
}

func (p *progress) add(r *vegeta.Result) {
	if !p.env.stderrIsTTY {
		return
	}
	f, err := loadgen.Decode(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if err != nil || !f.OK() {
		p.errs++
		return
	}
	if ttft, ok := f.TTFT(); ok {
		p.ttft = append(p.ttft, ttft.Seconds())
	}
}

func (p *progress) print(prefix string) {
	p.mu.Lock()
	n, errs := p.n, p.errs
	p50 := "-"
	if len(p.ttft) > 0 {
		p50 = time.Duration(stats.Quantile(p.ttft, 0.5) * float64(time.Second)).Round(time.Millisecond).String()
	}
	p.mu.Unlock()
	fmt.Fprintf(p.env.stderr, "%srequests %d  errors %d  TTFT p50 %s   ", prefix, n, errs, p50)
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// PoissonPacer paces hits as a Poisson process: the gaps between hits are
// exponentially distributed with mean 1/Rate, so arrivals are independent of
// each other, as users' requests are. It satisfies vegeta.Pacer and is safe
// for concurrent use.
type PoissonPacer struct {
	rate float64 // hits per second

	mu       sync.Mutex
	rng      *rand.Rand
	hits     uint64          // hits whose arrival time is in next
	next     time.Duration   // arrival time of hit number hits, since the start
	arrivals []time.Duration // arrival time of every hit so far, by number
}

var _ vegeta.Pacer = (*PoissonPacer)(nil)

// NewPoissonPacer returns a pacer of rate hits per second (> 0) whose
// arrivals are drawn from a generator seeded with seed.
func NewPoissonPacer(rate float64, seed uint64) (*PoissonPacer, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("poisson rate %g: must be a positive number", rate)
	}
	p := &PoissonPacer{rate: rate, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	p.next = p.gap()
	p.arrivals = append(p.arrivals, p.next)
	return p, nil
}

func (p *PoissonPacer) gap() time.Duration {
	return time.Duration(p.rng.ExpFloat64() / p.rate * float64(time.Second))
}

// Pace returns the wait until hit number hits is due; 0 when it is late.
func (p *PoissonPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.hits < hits {
		p.hits++
		p.next += p.gap()
		p.arrivals = append(p.arrivals, p.next)
	}
	if p.next <= elapsed {
		return 0, false
	}
	return p.next - elapsed, false
}

// due is when hit number n was scheduled, since the start; false when the
// pacer has not reached it.
func (p *PoissonPacer) due(n uint64) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n >= uint64(len(p.arrivals)) {
		return 0, false
	}
	return p.arrivals[n], true
}

// constantDue is when vegeta's ConstantPacer{Freq: 1, Per: per} schedules
// hit number n: at the end of its interval.
func constantDue(per time.Duration, n uint64) time.Duration { return time.Duration(n+1) * per }

// Rate is the mean rate; a Poisson process has no other.
func (p *PoissonPacer) Rate(time.Duration) float64 { return p.rate }

// windowPacer wraps the attack's pacer with the warm-up and the request
// limit. A request is warm-up when it is one of the first WarmupRequests
// or was sent before the warm-up time ended (see isWarmup); the limit
// counts the others.
type windowPacer struct {
	inner          vegeta.Pacer
	warmup         time.Duration
	warmupRequests uint64
	requests       uint64 // measured requests; 0 for no limit

	began     time.Time    // the attack's start; set before it begins
	warmSent  atomic.Int64 // requests sent before the warm-up time ended
	warmFixed bool         // the warm-up is a count, or none

	// scheduled is when hit number n was due, since the start, in an open
	// loop; nil in a closed loop, where a request is due when the one
	// before it ends.
	scheduled func(n uint64) (time.Duration, bool)
}

func newWindowPacer(inner vegeta.Pacer, o *Options) *windowPacer {
	w := &windowPacer{inner: inner, warmup: o.Warmup, warmupRequests: o.WarmupRequests, requests: o.Requests,
		warmFixed: o.WarmupRequests > 0 || o.Warmup <= 0}
	switch p := inner.(type) {
	case *PoissonPacer:
		w.scheduled = p.due
	case vegeta.ConstantPacer:
		if p.Per > 0 && p.Freq == 1 {
			w.scheduled = func(n uint64) (time.Duration, bool) { return constantDue(p.Per, n), true }
		}
	}
	return w
}

func (w *windowPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if w.requests > 0 && (w.warmFixed || elapsed >= w.warmup) {
		// After the warm-up every hit released is sent after it, so it is
		// measured: the warm-up's count is final.
		warm := w.warmupRequests
		if !w.warmFixed {
			warm = uint64(w.warmSent.Load())
		}
		if hits >= warm+w.requests {
			return 0, true
		}
	}
	return w.inner.Pace(elapsed, hits)
}

func (w *windowPacer) Rate(elapsed time.Duration) float64 { return w.inner.Rate(elapsed) }

// isWarmup reports whether the hit with sequence number seq, sent at
// sent, is warm-up: one of the first WarmupRequests, or sent before the
// warm-up time ended. The time a request was sent decides, not when the
// pacer released it: in a closed loop the release of the next hit waits
// for a free user, which may be long after the warm-up.
func (w *windowPacer) isWarmup(seq uint64, sent time.Time) bool {
	switch {
	case w.warmupRequests > 0:
		return seq < w.warmupRequests
	case w.warmup <= 0:
		return false
	}
	return sent.Before(w.began.Add(w.warmup))
}

// sent notes a request sent at t, so that the request limit counts only
// measured ones.
func (w *windowPacer) sent(seq uint64, t time.Time) {
	if !w.warmFixed && w.isWarmup(seq, t) {
		w.warmSent.Add(1)
	}
}

package gateway

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// GCHeadroom bounds how far the proxy command's heap may grow over its live
// heap between collections (bytes). GCPercent alone lets the heap grow to
// five times the live heap: at 1,000 streams in make bench-proxy (about
// 70 MiB live) the gateway's resident memory grew round after round to
// 365-400 MB, against 175 MB for a bare httputil.ReverseProxy. Past
// GCHeadroom/4 of live heap, TuneGC lowers GOGC so that the headroom stays
// GCHeadroom, down to Go's default of 100; below it (32 and 256 streams in
// the benchmark) GOGC stays GCPercent. docs/proxy.md has the figures.
const GCHeadroom = 128 << 20

// gcPercentFor is the GOGC that gives a heap of live bytes a headroom of
// GCPercent percent of it, but no more than headroom bytes, and never less
// than Go's default of 100.
func gcPercentFor(live, headroom uint64) int {
	if live == 0 || headroom/live >= GCPercent/100 {
		return GCPercent
	}
	return max(100, int(headroom*100/live))
}

// TuneGC runs the collector as the proxy command does, unless GOGC is set
// in the environment (then it changes nothing): GOGC is set after every
// collection from the live heap that collection found (gcPercentFor,
// GCHeadroom), starting at GCPercent. stop ends the tuning and leaves GOGC
// where it is.
func TuneGC() (stop func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	return tuneGC(GCHeadroom)
}

func tuneGC(headroom uint64) func() {
	t := &gcTuner{headroom: headroom, percent: GCPercent,
		live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	debug.SetGCPercent(GCPercent)
	t.arm()
	return func() { t.stopped.Store(true) }
}

// gcTuner sets GOGC from the finalizer of an object it drops, which runs
// after each collection that finds it unreachable; the finalizer arms the
// next one. It owns no goroutine: the runtime's finalizer goroutine runs it.
type gcTuner struct {
	headroom uint64
	percent  int // the GOGC last set; only the finalizer goroutine touches it after arm
	live     []metrics.Sample
	stopped  atomic.Bool
}

// gcSentinel is the object whose finalizer tunes: big enough not to share
// a tiny-allocator block with anything else that could keep it alive.
type gcSentinel struct {
	t *gcTuner
	_ [16]byte
}

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t: t}, func(s *gcSentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

func (t *gcTuner) tune() {
	metrics.Read(t.live)
	if t.live[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := gcPercentFor(t.live[0].Value.Uint64(), t.headroom)
	// Small changes are left alone: each setting recomputes the heap goal.
	if p != t.percent && (p*20 < t.percent*19 || p*20 > t.percent*21 || p == GCPercent || p == 100) {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

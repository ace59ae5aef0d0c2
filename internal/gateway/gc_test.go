package gateway

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, GCPercent},        // before the first collection
		{1 * mib, GCPercent},  // headroom 4 MiB of 64
		{16 * mib, GCPercent}, // exactly 64 MiB of headroom
		{20 * mib, 320},       // 64 MiB is 320 %
		{32 * mib, 200},
		{64 * mib, 100},
		{1 << 30, 100}, // never below Go's default
	} {
		if got := gcPercentFor(tc.live, 64*mib); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB live, 64 MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

// TestTuneGCFollowsTheLiveHeap holds a live heap larger than the headroom,
// then lets it go: GOGC goes to 100, then back to GCPercent.
func TestTuneGCFollowsTheLiveHeap(t *testing.T) {
	prev := debug.SetGCPercent(100)
	stop := tuneGC(64 << 20)
	t.Cleanup(func() {
		stop()
		debug.SetGCPercent(prev)
	})
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	waitFor := func(want uint64, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			runtime.GC()
			time.Sleep(10 * time.Millisecond) // the finalizer goroutine tunes after the collection
			metrics.Read(gogc)
			if got := gogc[0].Value.Uint64(); got == want {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("%s: GOGC %d, want %d", what, got, want)
			}
		}
	}
	live := make([]byte, 256<<20)
	for i := range live {
		live[i] = 1
	}
	waitFor(100, "256 MiB live")
	runtime.KeepAlive(live)
	live = nil
	waitFor(GCPercent, "the 256 MiB let go")
}

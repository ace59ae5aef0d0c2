package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/proxyproc"
)

func TestBadFlagsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-duration", "5m"}, "-duration"},
		{[]string{"-streams", "0"}, "-streams"},
		{[]string{"-max-growth", "0"}, "-max-growth"},
		{[]string{"-duration", "6m", "-warmup", "2m"}, "must include the first upstream restart"},
		{[]string{"extra"}, "unexpected"},
	} {
		if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	if _, err := parseFlags([]string{"-duration", "6m", "-warmup", "2m", "-restart-every", "90s"}, io.Discard); err != nil {
		t.Errorf("a shortened run: %v", err)
	}
}

// TestJudgeComparesTheMinuteAfterWarmupWithTheLast: growth past the bound
// in any series fails the run; noise inside a minute does not.
func TestJudgeComparesTheMinuteAfterWarmupWithTheLast(t *testing.T) {
	o := options{duration: 4 * time.Minute, warmup: time.Minute, maxGrowth: 0.10}
	start := time.Unix(0, 0)
	mk := func(rss func(min int) uint64) *result {
		res := &result{started: start}
		res.ok.Store(1)
		for s := 0; s < 240; s += 10 {
			rssv := rss(s / 60)
			if s%60 == 30 {
				rssv *= 2 // one odd sample per minute: the median ignores it
			}
			res.samples = append(res.samples, proxyproc.Health{At: start.Add(time.Duration(s) * time.Second),
				RSS: rssv, Goroutines: 100, OpenFDs: 50})
		}
		return res
	}
	if err := mk(func(int) uint64 { return 100 << 20 }).judge(o); err != nil {
		t.Errorf("flat run failed: %v", err)
	}
	err := mk(func(m int) uint64 { return uint64(100+10*m) << 20 }).judge(o)
	if err == nil || !strings.Contains(err.Error(), "RSS") {
		t.Errorf("RSS 110 → 130 MiB passed: %v", err)
	}
}

package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/proxyproc"
)

// series are the sampled figures, by name.
var series = []struct {
	name string
	get  func(proxyproc.Health) float64
}{
	{"RSS (MiB)", func(h proxyproc.Health) float64 { return float64(h.RSS) / (1 << 20) }},
	{"goroutines", func(h proxyproc.Health) float64 { return float64(h.Goroutines) }},
	{"open fds", func(h proxyproc.Health) float64 { return float64(h.OpenFDs) }},
}

// window is the samples taken from..to after the start.
func (res *result) window(from, to time.Duration) []proxyproc.Health {
	var out []proxyproc.Health
	for _, s := range res.samples {
		if el := s.At.Sub(res.started); el >= from && el < to {
			out = append(out, s)
		}
	}
	return out
}

func median(hs []proxyproc.Health, get func(proxyproc.Health) float64) float64 {
	if len(hs) == 0 {
		return 0
	}
	v := make([]float64, len(hs))
	for i, h := range hs {
		v[i] = get(h)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// judge compares the minute after the warm-up with the last minute.
func (res *result) judge(o options) error {
	base := res.window(o.warmup, o.warmup+time.Minute)
	last := res.window(o.duration-time.Minute, o.duration+time.Minute)
	if len(base) == 0 || len(last) == 0 {
		return fmt.Errorf("no samples in the baseline or the last minute (%d, %d)", len(base), len(last))
	}
	var bad []string
	for _, s := range series {
		g := growth{series: s.name, baseline: median(base, s.get), final: median(last, s.get)}
		res.growth = append(res.growth, g)
		if g.ratio() > o.maxGrowth {
			bad = append(bad, fmt.Sprintf("%s grew %.1f%% (%.1f → %.1f)", s.name, 100*g.ratio(), g.baseline, g.final))
		}
	}
	if res.ok.Load() == 0 {
		bad = append(bad, "no request succeeded")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; ") + fmt.Sprintf(", more than %.0f%% after the warm-up", 100*o.maxGrowth))
	}
	return nil
}

// report prints the run as Markdown: settings, one row per minute
// (medians), requests, and the verdict.
func (res *result) report(w io.Writer, o options) {
	fmt.Fprintf(w, "proxy soak: %s, %v, %d streams over %s, %d tokens %v apart, every %dth client leaves after 3 chunks, upstream restarted every %v (%d times)\n\n",
		res.started.UTC().Format(time.RFC3339), o.duration, o.streams, strings.Join(res.paths, " "), o.tokens, o.tokenGap, o.disconnect, o.restartEvery, res.restarts)
	for _, p := range res.skipped {
		fmt.Fprintf(w, "Left out: %s (%s).\n\n", p.path, p.why)
	}
	fmt.Fprintln(w, "| minute | RSS (MiB) | goroutines | open fds |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|")
	for m := time.Duration(0); m < o.duration; m += time.Minute {
		hs := res.window(m, m+time.Minute)
		if len(hs) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %d | %.1f | %.0f | %.0f |\n", int(m/time.Minute)+1, median(hs, series[0].get), median(hs, series[1].get), median(hs, series[2].get))
	}
	fmt.Fprintf(w, "\nrequests: %d completed, %d left early by their client, %d failed (the upstream down or restarting); %d samples (%d failed)\n",
		res.ok.Load(), res.leftEarly.Load(), res.failed.Load(), len(res.samples), res.sampleErrors)
	per := make([]string, len(res.paths))
	for i, p := range res.paths {
		per[i] = fmt.Sprintf("%s %d", p, res.completed[i].Load())
	}
	fmt.Fprintf(w, "completed per path: %s\n", strings.Join(per, ", "))
	for _, g := range res.growth {
		fmt.Fprintf(w, "- %s: %.1f in the minute after the warm-up, %.1f in the last minute: %+.1f%%\n", g.series, g.baseline, g.final, 100*g.ratio())
	}
}

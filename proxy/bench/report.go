package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/stats"
)

// perRound is one figure per round of a variant at one scale; ok is false
// when the variant does not have it (no process for direct).
type perRound func(f roundFig, r int) (v float64, ok bool)

func (r *report) write(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "proxy benchmark: %s, GOMAXPROCS %d; answers of %d tokens, the first after %v; %d rounds of %v per variant and scale, each round starting one variant later; a gateway's round waits %v after its load for its last spans\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), o.tokens, o.firstToken, o.rounds, o.duration, exportSettle)
	if r.collector {
		fmt.Fprintf(w, "gateway spans exported over OTLP/gRPC to the collector: %d of %d accepted; the gateway's batch processor dropped %d (queue full or export failed)\n",
			r.spansIn, r.spansSent, r.dropped)
	} else {
		fmt.Fprintln(w, "gateway spans exported to a discarding exporter in its own process (no -otelcol)")
	}
	for _, n := range r.notes {
		fmt.Fprintln(w, n)
	}
	for si, sc := range r.scales {
		r.writeScale(w, si, sc)
	}
	r.writeAPIs(w)
	r.writeMemory(w)
	fmt.Fprintf(w, "\nEach figure is the median over the %d rounds, (min–max) beside it. added TTFT: the variant's TTFT percentile minus the direct connection's in the same round.\n"+
		"CPU / token: the proxy process's user + system time in /proc (nginx: master and workers) over the round, divided by the output tokens its clients received.\n"+
		"syscalls / token: the proxy process's read and write system calls (syscr + syscw in /proc/PID/io) over the round, per output token.\n"+
		"× bare, × nginx: that ratio in the same round. broken: not exactly the upstream's answer (error, cut, missing tokens). served: streams not broken.\n", o.rounds)
}

func (r *report) byName(name string) *variantReport {
	for _, v := range r.variants {
		if v.name == name {
			return v
		}
	}
	return nil
}

// series is a figure over the rounds of one variant at scale si.
func (r *report) series(v *variantReport, si int, fig perRound) []float64 {
	if v == nil {
		return nil
	}
	var out []float64
	for i, f := range v.rounds[si] {
		if x, ok := fig(f, i); ok {
			out = append(out, x)
		}
	}
	return out
}

func (r *report) writeScale(w io.Writer, si int, sc scale) {
	direct := r.byName("direct")
	pct := func(p float64) func(roundFig) float64 {
		return func(f roundFig) float64 {
			s := stats.Summarize(f.ttft)
			if p == 50 {
				return s.P50
			}
			return s.P99
		}
	}
	added := func(p float64) perRound {
		return func(f roundFig, i int) (float64, bool) {
			return pct(p)(f) - pct(p)(direct.rounds[si][i]), true
		}
	}
	cpuTok := perRound(cpuPerToken)
	ratio := func(other string) perRound { return r.cpuRatio(si, other) }
	allocs := func(f roundFig, _ int) (float64, bool) {
		return float64(f.mallocs) / float64(max(f.tokens, 1)), f.hasMallocs
	}
	syscalls := func(f roundFig, _ int) (float64, bool) {
		return float64(f.syscalls) / float64(max(f.tokens, 1)), f.measured
	}
	fmt.Fprintf(w, "\n### %v\n\n", sc)
	fmt.Fprintln(w, "| variant | broken / requests | served | added TTFT p50 | added TTFT p99 | CPU / token | × bare | × nginx | allocs / token | syscalls / token |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, v := range r.variants {
		req, broken := 0, 0
		why := ""
		for _, f := range v.rounds[si] {
			req, broken = req+f.requests, broken+f.broken
			if f.why != "" {
				why = f.why
			}
		}
		a50, a99 := "—", "—"
		if v.name != "direct" {
			a50 = spread(r.series(v, si, added(50)), msFmt)
			a99 = spread(r.series(v, si, added(99)), msFmt)
		}
		fmt.Fprintf(w, "| %s | %d / %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", v.name, broken, req, req-broken, a50, a99,
			spread(r.series(v, si, cpuTok), usFmt), spread(r.series(v, si, ratio("bare")), xFmt),
			spread(r.series(v, si, ratio("nginx")), xFmt), spread(r.series(v, si, allocs), oneFmt),
			spread(r.series(v, si, syscalls), oneFmt))
		if why != "" {
			fmt.Fprintf(w, "\n%s: a broken stream: %s\n\n", v.name, clipWhy(why))
		}
	}
	for _, name := range []string{"gateway", "gateway-events-off", "bare-again"} {
		if v := r.byName(name); v != nil {
			r.writeGoal(w, si, v, added, cpuTok, ratio)
		}
	}
}

// writeGoal checks the gateway against the bare proxy (and nginx) at one
// scale. For bare-again, the bare proxy itself measured again, it checks the
// same conditions as the control: how often a proxy that costs exactly what
// bare costs meets them in this run.
func (r *report) writeGoal(w io.Writer, si int, v *variantReport, added func(float64) perRound, cpuTok perRound, ratio func(string) perRound) {
	bare, nginx := r.byName("bare"), r.byName("nginx")
	var lines []string
	check := func(what string, mine, theirs []float64, factor float64, f func(float64) string) {
		if len(mine) == 0 || len(theirs) == 0 {
			return
		}
		m, t := median(mine), median(theirs)*factor
		rounds := 0
		for i := range mine {
			if i < len(theirs) && mine[i] <= theirs[i]*factor {
				rounds++
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s vs %s: %s (%d of %d rounds)", what, f(m), f(t), metOr(m <= t), rounds, len(mine)))
	}
	if bare != nil {
		check("added TTFT p50 ≤ bare's:", r.series(v, si, added(50)), r.series(bare, si, added(50)), 1, msFmt)
		check("added TTFT p99 ≤ bare's:", r.series(v, si, added(99)), r.series(bare, si, added(99)), 1, msFmt)
		ratios := r.series(v, si, ratio("bare"))
		if len(ratios) > 0 {
			m := median(ratios)
			n := 0
			for _, x := range ratios {
				if x <= 1.1 {
					n++
				}
			}
			lines = append(lines, fmt.Sprintf("CPU per token ≤ 1.1× bare's: %s: %s (%d of %d rounds)", xFmt(m), metOr(m <= 1.1), n, len(ratios)))
		}
	}
	broken := 0
	for _, f := range v.rounds[si] {
		broken += f.broken
	}
	lines = append(lines, fmt.Sprintf("no broken stream: %d broken: %s", broken, metOr(broken == 0)))
	control := v.name == "bare-again"
	if nginx != nil && !control {
		check("stretch, CPU per token ≤ 1.5× nginx's:", r.series(v, si, cpuTok), r.series(nginx, si, cpuTok), 1.5, usFmt)
		check("stretch, added TTFT p50 ≤ 1.5× nginx's:", r.series(v, si, added(50)), r.series(nginx, si, added(50)), 1.5, msFmt)
	}
	var col time.Duration
	tokens := 0
	for _, f := range v.rounds[si] {
		col += f.collectorCPU
		tokens += f.tokens
	}
	if r.collector && !control {
		lines = append(lines, fmt.Sprintf("(the collector spent %s per %s token receiving its spans, not counted above)", usFmt(float64(col.Nanoseconds())/float64(max(tokens, 1))), v.name))
	}
	if control {
		fmt.Fprintf(w, "\n%s, the control (the bare proxy itself, measured again: what an equal proxy shows in this run):\n", v.name)
	} else {
		fmt.Fprintf(w, "\n%s at this scale:\n", v.name)
	}
	for _, l := range lines {
		fmt.Fprintf(w, "- %s\n", l)
	}
}

// cpuPerToken is the proxy's CPU time per output token its clients received.
func cpuPerToken(f roundFig, _ int) (float64, bool) {
	return float64(f.cpu.Nanoseconds()) / float64(max(f.tokens, 1)), f.measured
}

// cpuRatio is a variant's CPU per token over other's in the same round at scale si.
func (r *report) cpuRatio(si int, other string) perRound {
	ov := r.byName(other)
	return func(f roundFig, i int) (float64, bool) {
		if ov == nil || !f.measured || !ov.rounds[si][i].measured {
			return 0, false
		}
		a, _ := cpuPerToken(f, i)
		b, _ := cpuPerToken(ov.rounds[si][i], i)
		return a / b, b > 0
	}
}

// writeAPIs sums up the -apis loads: CPU per token of each proxy in each API.
func (r *report) writeAPIs(w io.Writer) {
	var proxies []*variantReport
	for _, v := range r.variants {
		if v.name != "direct" {
			proxies = append(proxies, v)
		}
	}
	if len(r.o.apis) == 0 || len(proxies) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### CPU per token by API (%d streams, a token every %v)\n\n| API |", r.o.apiStreams, r.o.apiGap)
	for _, v := range proxies {
		fmt.Fprintf(w, " %s |", v.name)
	}
	gw, bare := r.byName("gateway"), r.byName("bare")
	if gw != nil && bare != nil {
		fmt.Fprint(w, " gateway × bare |")
	}
	fmt.Fprint(w, " broken |\n|---|")
	fmt.Fprint(w, strings.Repeat("---:|", len(proxies)))
	if gw != nil && bare != nil {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w, "---:|")
	for si, sc := range r.scales {
		if sc.api == nil {
			continue
		}
		fmt.Fprintf(w, "| %s (%s) |", sc.api.name, sc.api.path)
		broken := 0
		for _, v := range proxies {
			fmt.Fprintf(w, " %s |", spread(r.series(v, si, cpuPerToken), usFmt))
			for _, f := range v.rounds[si] {
				broken += f.broken
			}
		}
		if gw != nil && bare != nil {
			fmt.Fprintf(w, " %s |", spread(r.series(gw, si, r.cpuRatio(si, "bare")), xFmt))
		}
		fmt.Fprintf(w, " %d |\n", broken)
	}
}

func (r *report) writeMemory(w io.Writer) {
	any := false
	for _, v := range r.variants {
		any = any || len(v.mem) > 0
	}
	if !any {
		return
	}
	fmt.Fprintf(w, "\n| variant | tokens in | live heap + stacks per in-flight stream (%d streams) | goroutines per stream |\n|---|---:|---:|---:|\n", r.o.memStreams)
	for _, v := range r.variants {
		for _, m := range v.mem {
			fmt.Fprintf(w, "| %s | %d | %.1f KiB | %.1f |\n", v.name, m.hold, m.perStream/1024, m.goroutinesPerS)
		}
	}
}

func median(xs []float64) float64 { return stats.Summarize(xs).P50 }

// spread is "median (min–max)", or "—" without figures.
func spread(xs []float64, f func(float64) string) string {
	if len(xs) == 0 {
		return "—"
	}
	s := stats.Summarize(xs)
	if len(xs) == 1 {
		return f(s.P50)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.P50), f(s.Min), f(s.Max))
}

func metOr(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func msFmt(s float64) string  { return fmt.Sprintf("%+.1f ms", s*1e3) }
func usFmt(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1e3) }
func xFmt(x float64) string   { return fmt.Sprintf("%.2f×", x) }
func oneFmt(x float64) string { return fmt.Sprintf("%.1f", x) }

func clipWhy(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

package main

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/tokentrace/tokentrace/internal/stats"
)

type report struct {
	variants []variantReport
}

func (r *report) write(w io.Writer, o options) {
	fmt.Fprintf(w, "proxy benchmark: %s, GOMAXPROCS %d, upstream gap %v; 1 stream × %d answers of %d tokens; %d rounds of %d streams × %d answers of %d tokens\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), o.gap, o.singles, o.singleTokens, o.rounds, o.conc, o.perStream, o.tokens)
	direct := map[int]stats.Summary{}
	for _, v := range r.variants {
		if v.name == "direct" {
			direct[1], direct[o.conc] = stats.Summarize(v.single.ttft), stats.Summarize(v.many.ttft)
		}
	}
	var bareRounds []float64
	for _, v := range r.variants {
		if v.name == "bare" {
			bareRounds = v.roundCPU
		}
	}
	fmt.Fprintln(w, "| variant | streams | requests | TTFT p50 | TTFT p99 | added p50 | added p99 | proxy CPU / token | × bare | allocs / chunk |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, v := range r.variants {
		for _, p := range []phase{v.single, v.many} {
			s := stats.Summarize(p.ttft)
			d := direct[p.conc]
			cpu, ratio, allocs := "—", "—", "—"
			if p.measured {
				perTok := float64(p.cpu.Nanoseconds()) / float64(p.chunks)
				cpu = fmt.Sprintf("%.1f µs", perTok/1e3)
				allocs = fmt.Sprintf("%.1f", float64(p.mallocs)/float64(p.chunks))
				if p.conc == o.conc && len(bareRounds) == len(v.roundCPU) && len(v.roundCPU) > 0 {
					var rs []float64
					for i := range v.roundCPU {
						rs = append(rs, v.roundCPU[i]/bareRounds[i])
					}
					sr := stats.Summarize(rs)
					ratio = fmt.Sprintf("%.2f (%.2f–%.2f)", sr.P50, sr.Min, sr.Max)
				}
			}
			added50, added99 := "—", "—"
			if v.name != "direct" {
				added50, added99 = ms(s.P50-d.P50), ms(s.P99-d.P99)
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n",
				v.name, p.conc, p.requests, ms(s.P50), ms(s.P99), added50, added99, cpu, ratio, allocs)
		}
	}
	fmt.Fprintf(w, "\n| variant | tokens in | live heap + stacks per in-flight stream (%d streams) | goroutines per stream |\n|---|---:|---:|---:|\n", o.conc)
	for _, v := range r.variants {
		for _, m := range v.mem {
			fmt.Fprintf(w, "| %s | %d | %.1f KiB | %.1f |\n", v.name, m.hold, m.perStream/1024, m.goroutinesPerS)
		}
	}
	fmt.Fprintf(w, "\nCPU per token: the proxy process's user+system time divided by the chunks it forwarded (one token per chunk).\n"+
		"× bare: median (min–max) over the %d rounds of the many-streams run of CPU per token ÷ the bare proxy's in the same round.\n", o.rounds)
}

func ms(s float64) string { return fmt.Sprintf("%.3f ms", s*1e3) }

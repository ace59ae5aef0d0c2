package studyreport

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// ChartCapacity is the capacity chart's file name.
const ChartCapacity = "capacity.png"

// capacityValue is a search's answer as a number: users or requests/s.
func capacityValue(c matrix.Capacity) float64 {
	if c.Search == matrix.SearchRate {
		return c.MaxRateRPS
	}
	return float64(c.MaxConcurrency)
}

// Best is, for one prompt size, the setting that serves the most within the
// SLO (ties go to the one with less peak memory); false when none met it.
func (d *Data) Best(size string) (matrix.Capacity, bool) {
	var best matrix.Capacity
	found := false
	for _, c := range d.Capacity {
		if c.PromptSize != size || capacityValue(c) == 0 {
			continue
		}
		if !found || capacityValue(c) > capacityValue(best) ||
			(capacityValue(c) == capacityValue(best) && c.PeakMemBytes < best.PeakMemBytes) {
			best, found = c, true
		}
	}
	return best, found
}

// CapacityAnswer is the sentence that answers "which setting serves my
// users?": per prompt size, which setting serves the most within the SLO,
// how many, and at what memory.
func (d *Data) CapacityAnswer() string {
	var parts []string
	for _, size := range d.capacitySizes() {
		best, ok := d.Best(size)
		if !ok {
			parts = append(parts, fmt.Sprintf("With %s prompts no setting met %s even at the lowest load.", size, d.Header.Settings.SLO))
			continue
		}
		if tied := d.tiedAtBound(best); tied > 1 {
			parts = append(parts, fmt.Sprintf("With %s prompts, %d settings served the search's bound within %s, so the search cannot tell them apart (raise --max-concurrency or --max-rate); of those, %s needs the least memory, %s (goodput %s requests/s, TTFT p95 %s ms).",
				size, tied, best.SLO, d.Label(best.Setting), matrix.HumanBytes(best.PeakMemBytes), num(best.GoodputRPS), num(best.TTFTP95Ms)))
			continue
		}
		parts = append(parts, fmt.Sprintf("With %s prompts, %s serves the most within %s: %s (goodput %s requests/s, TTFT p95 %s ms) at %s peak memory.",
			size, d.Label(best.Setting), best.SLO, best.Describe(), num(best.GoodputRPS), num(best.TTFTP95Ms), matrix.HumanBytes(best.PeakMemBytes)))
	}
	return strings.Join(parts, " ")
}

// tiedAtBound counts the settings of best's prompt size that stopped at the
// search's bound with best's capacity: 1 when best stands alone.
func (d *Data) tiedAtBound(best matrix.Capacity) int {
	if !best.AtBound {
		return 1
	}
	n := 0
	for _, c := range d.Capacity {
		if c.PromptSize == best.PromptSize && c.AtBound && capacityValue(c) == capacityValue(best) {
			n++
		}
	}
	return n
}

func (d *Data) capacitySizes() []string {
	var sizes []string
	for _, size := range d.Header.Settings.PromptSizes {
		for _, c := range d.Capacity {
			if c.PromptSize == size {
				sizes = append(sizes, size)
				break
			}
		}
	}
	return sizes
}

func (d *Data) writeCapacity(w io.Writer) {
	if len(d.Capacity) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	s := d.Header.Settings
	p("## Capacity under the SLO\n\n**%s**\n\n", d.CapacityAnswer())
	unit := "users"
	if s.Search.Kind == matrix.SearchRate {
		unit = "requests/s"
	}
	p("Search: %s, from %g up to %g %s, doubling and then bisecting; each probe is a %s window after a %s warm-up of the same load. "+
		"A probe meets the SLO when every limit holds at its percentile, no request failed, and goodput is within %.0f%% of the request throughput.\n\n",
		s.Search.Kind, s.Search.Start, s.Search.Max, unit, s.Duration.D(), s.Warmup.D(), 100*matrix.GoodputTolerance)
	p("| setting | prompt size | capacity | goodput (req/s) | TTFT p95 (ms) | TPOT p95 (ms) | mean output tokens | peak memory | probes |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range d.Capacity {
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", d.Label(c.Setting), c.PromptSize, c.Describe(), num(c.GoodputRPS),
			num(c.TTFTP95Ms), num(c.TPOTP95Ms), num(c.MeanOutputTokens), matrix.HumanBytes(c.PeakMemBytes), c.Probes)
	}
	p("\n![capacity](%s)\n\n", ChartCapacity)
	p("Every probe (probes.jsonl):\n\n| search | load | met | TTFT p95 (ms) | TPOT p95 (ms) | goodput / throughput (req/s) | why not |\n|---|---:|---|---:|---:|---:|---|\n")
	for _, pr := range d.Probes {
		p("| %s | %g | %v | %s | %s | %s / %s | %s |\n", pr.Search, pr.Load, pr.Met, num(pr.TTFTP95Ms), num(pr.TPOTP95Ms),
			num(pr.GoodputRPS), num(pr.ReqPerSec), strings.ReplaceAll(pr.Why, "|", `\|`))
	}
	p("\n")
}

// capacityChart draws, per prompt size, each setting's capacity, and
// beside it the peak memory at that capacity.
func (d *Data) capacityChart(dir string) error {
	sizes := d.capacitySizes()
	capP, memP := plot.New(), plot.New()
	unit := "users"
	if d.Header.Settings.Search.Kind == matrix.SearchRate {
		unit = "requests/s"
	}
	capP.Title.Text = "capacity under " + d.Header.Settings.SLO.String()
	capP.Y.Label.Text = unit
	memP.Title.Text = "peak memory at that capacity"
	memP.Y.Label.Text = "MiB"
	w := vg.Points(14)
	var names []string
	for _, s := range d.Settings {
		names = append(names, d.Label(s))
	}
	topC, topM := 0.0, 0.0
	for k, size := range sizes {
		var caps, mems plotter.Values
		for _, s := range d.Settings {
			v, m := 0.0, 0.0
			for _, c := range d.Capacity {
				if c.Setting == s && c.PromptSize == size {
					v, m = capacityValue(c), float64(c.PeakMemBytes)/(1<<20)
				}
			}
			caps, mems = append(caps, v), append(mems, m)
			topC, topM = math.Max(topC, v), math.Max(topM, m)
		}
		off := w * vg.Length(float64(k)-float64(len(sizes)-1)/2)
		for _, pair := range []struct {
			p    *plot.Plot
			vals plotter.Values
		}{{capP, caps}, {memP, mems}} {
			b, err := plotter.NewBarChart(pair.vals, w)
			if err != nil {
				return err
			}
			b.Color, b.Offset = plotutil.Color(k), off
			b.LineStyle.Color = color.Black
			pair.p.Add(b)
			pair.p.Legend.Add(size+" prompt", b)
		}
	}
	for _, pl := range []*plot.Plot{capP, memP} {
		pl.NominalX(names...)
		pl.Legend.Top, pl.Legend.Left = true, true
		pl.Y.Min = 0
	}
	capP.Y.Max, memP.Y.Max = math.Max(topC, 1)*1.35, math.Max(topM, 1)*1.35
	width := vg.Length(max(len(names), 3)) * 4 * vg.Centimeter
	return savePanels(filepath.Join(dir, ChartCapacity), [][]*plot.Plot{{capP, memP}}, 2*width, 9*vg.Centimeter)
}

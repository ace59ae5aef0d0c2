package studyreport

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// Comparison is one row of the executive summary.
type Comparison struct {
	Figure      string
	Low, High   float64
	Unit        string
	LowerBetter bool
}

// Winner names the better setting of the row.
func (c Comparison) Winner(low, high string) string {
	switch {
	case c.Low == c.High:
		return "tie"
	case (c.Low < c.High) == c.LowerBetter:
		return low
	default:
		return high
	}
}

// Executive compares the lowest and the highest parallel setting (at the
// first context size) at the highest concurrency, averaged over the prompt
// sizes that ran under both. false when there is nothing to compare.
func (d *Data) Executive() (low, high matrix.Setting, conc int, rows []Comparison, ok bool) {
	var same []matrix.Setting
	for _, s := range d.Settings {
		if s.NumCtx == d.Settings[0].NumCtx {
			same = append(same, s)
		}
	}
	if len(same) < 2 || len(d.Conc) == 0 {
		return low, high, 0, nil, false
	}
	low, high, conc = same[0], same[len(same)-1], d.Conc[len(d.Conc)-1]
	var ttft, tps, thr [2]float64
	n := 0
	for _, size := range d.Sizes {
		a, b := d.OK(low, conc, size), d.OK(high, conc, size)
		if a == nil || b == nil {
			continue
		}
		n++
		ttft[0] += a.TTFTP50Ms
		ttft[1] += b.TTFTP50Ms
		tps[0] += a.TokPerSecMean
		tps[1] += b.TokPerSecMean
		thr[0] += a.OutputTokPerSec
		thr[1] += b.OutputTokPerSec
	}
	if n == 0 {
		return low, high, conc, nil, false
	}
	f := float64(n)
	var mem [2]float64
	for _, m := range d.Memory() {
		switch m.Setting {
		case low:
			mem[0] = float64(m.Peak) / (1 << 20)
		case high:
			mem[1] = float64(m.Peak) / (1 << 20)
		}
	}
	rows = []Comparison{
		{"TTFT p50", ttft[0] / f, ttft[1] / f, "ms", true},
		{"per-request tok/s", tps[0] / f, tps[1] / f, "tok/s", false},
		{"system throughput", thr[0] / f, thr[1] / f, "tok/s", false},
		{"peak memory", mem[0], mem[1], "MiB", true},
	}
	return low, high, conc, rows, true
}

// Summary is the executive summary as a markdown table.
func (d *Data) Summary() string {
	low, high, conc, rows, ok := d.Executive()
	if !ok {
		return "Not enough scenarios ran to compare two parallel settings.\n"
	}
	var b strings.Builder
	sizes := "the prompt sizes that ran under both"
	fmt.Fprintf(&b, "At concurrency %d, mean over %s:\n\n", conc, sizes)
	fmt.Fprintf(&b, "| figure | %s | %s | change | winner |\n|---|---:|---:|---:|---|\n", d.Label(low), d.Label(high))
	for _, r := range rows {
		change := "–"
		if r.Low != 0 {
			change = fmt.Sprintf("%+.0f%%", 100*(r.High-r.Low)/r.Low)
		}
		fmt.Fprintf(&b, "| %s (%s) | %s | %s | %s | %s |\n", r.Figure, r.Unit, num(r.Low), num(r.High), change,
			r.Winner(d.Label(low), d.Label(high)))
	}
	return b.String()
}

func num(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// WriteMarkdown writes report.md.
func (d *Data) WriteMarkdown(w io.Writer, charts []string) {
	h := d.Header
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Parallelism study: %s on %s\n\n", h.Model.Name, engineName(h))
	p("Run started %s on %s (%s, %d CPUs, %s memory, %s %s). ", h.Started.UTC().Format("2006-01-02 15:04 UTC"),
		h.Machine.CPUModel, h.Machine.Arch, h.Machine.CPUs, matrix.HumanBytes(h.Machine.MemoryBytes), h.Machine.Platform, h.Machine.Kernel)
	s := h.Settings
	p("Backend `%s`, model `%s` (digest %s), API %s; concurrency %v, prompt sizes %v, parallel %v, context %v; "+
		"%s per scenario after %s warm-up, max tokens %d, varied prompts %v.\n\n",
		s.Backend, s.Model, short(h.Model.Digest), s.API, s.Concurrency, s.PromptSizes, s.NumParallel, s.NumCtx,
		s.Duration.D(), s.Warmup.D(), s.MaxTokens, s.VaryPrompts)
	if !h.Engine.Restartable {
		p("The engine was external and could not be restarted: only concurrency × prompt size ran, with whatever parallelism it runs.\n\n")
	}
	p("Figures follow docs/METRICS.md: TTFT and latency are p50 over successful requests, tok/s is the mean per-request decode speed (1/TPOT), throughput is the output tokens of all requests per second of the window.\n\n")

	d.writeCapacity(w)
	p("## Executive summary\n\n%s\n", d.Summary())
	d.writeAnswerLengths(w)
	if len(d.Conc) > 0 {
		d.writeBySize(w, "## TTFT at the highest concurrency (p50, ms)", d.Conc[len(d.Conc)-1:], func(c *Cell) float64 { return c.TTFTP50Ms })
	}
	if slices.Contains(d.Conc, 1) {
		p("## Single-request performance (concurrency 1)\n\n")
		p("| prompt size | %s |\n|---|%s\n", d.headers(" TTFT ms / tok/s"), strings.Repeat("---:|", len(d.Settings)))
		for _, size := range d.Sizes {
			p("| %s |", size)
			for _, st := range d.Settings {
				if c := d.OK(st, 1, size); c != nil {
					p(" %s / %s |", num(c.TTFTP50Ms), num(c.TokPerSecMean))
				} else {
					p(" %s |", d.missing(st, 1, size))
				}
			}
			p("\n")
		}
		p("\n")
	}
	d.writeBySize(w, "## Per-request tok/s (mean)", d.Conc, func(c *Cell) float64 { return c.TokPerSecMean })
	d.writeBySize(w, "## System throughput (output tok/s)", d.Conc, func(c *Cell) float64 { return c.OutputTokPerSec })
	d.writeMemory(w)
	d.writeEngineSaid(w)
	d.writeOutcomes(w)
	d.writeRaw(w)
	if len(charts) > 0 {
		p("## Charts\n\n")
		for _, c := range charts {
			p("![%s](%s)\n\n", strings.TrimSuffix(c, ".png"), c)
		}
	}
}

func engineName(h matrix.Header) string {
	if h.Engine.Version != "" {
		return h.Engine.Name + " " + h.Engine.Version
	}
	return h.Engine.Name
}

func short(digest string) string {
	digest = strings.TrimPrefix(digest, "sha256:")
	if len(digest) > 12 {
		return digest[:12]
	}
	if digest == "" {
		return "unknown"
	}
	return digest
}

func (d *Data) headers(suffix string) string {
	var cols []string
	for _, s := range d.Settings {
		cols = append(cols, d.Label(s)+suffix)
	}
	return strings.Join(cols, " | ")
}

func (d *Data) missing(s matrix.Setting, conc int, size string) string {
	c := d.Cell(s, conc, size)
	switch {
	case c == nil:
		return "–"
	case c.Status != matrix.StatusOK:
		return strings.ToUpper(c.Status)
	default:
		return "all errors"
	}
}

func (d *Data) writeBySize(w io.Writer, title string, concs []int, value func(*Cell) float64) {
	fmt.Fprintf(w, "%s\n\n| concurrency | prompt size | %s |\n|---:|---|%s\n", title, d.headers(""), strings.Repeat("---:|", len(d.Settings)))
	for _, conc := range concs {
		for _, size := range d.Sizes {
			fmt.Fprintf(w, "| %d | %s |", conc, size)
			for _, s := range d.Settings {
				if c := d.OK(s, conc, size); c != nil {
					fmt.Fprintf(w, " %s |", num(value(c)))
				} else {
					fmt.Fprintf(w, " %s |", d.missing(s, conc, size))
				}
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
}

func (d *Data) writeMemory(w io.Writer) {
	fmt.Fprintf(w, "## Memory by parallel setting\n\n")
	kvType := d.Header.KVCacheType
	if kvType == "" {
		kvType = "f16"
	}
	fmt.Fprintf(w, "RAM peak is the engine's whole process tree (resident memory, sampled every 250 ms) over the measured windows of the setting's scenarios; "+
		"idle is after load and warm-up; /api/ps is the engine's own estimate (size, and size_vram on the GPU); VRAM peak is the process tree's GPU memory from nvidia-smi. "+
		"The delta per slot is the RAM peak's growth (VRAM's, where there is a GPU) "+
		"per added slot from the lowest parallel setting; the KV-cache estimate is 2 × layers × KV heads × head dimension × context × the bytes of a %s element.\n\n", kvType)
	if len(d.Header.Machine.GPUs) == 0 {
		fmt.Fprintf(w, "No NVIDIA GPU was seen (nvidia-smi): VRAM is –.\n\n")
	}
	fmt.Fprintf(w, "| setting | status | idle RAM | peak RAM | peak VRAM | /api/ps | /api/ps VRAM | measured delta per slot | KV-cache estimate per slot | ready | cold load | parallelism verified | warm-up peak RAM |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	mem := d.Memory()
	for _, m := range mem {
		delta := "–"
		peakOf := func(m SettingMemory) uint64 {
			if m.PeakVRAM > 0 {
				return m.PeakVRAM
			}
			return m.Peak
		}
		for _, base := range mem {
			if base.Setting.NumCtx == m.Setting.NumCtx && base.Setting.Parallel < m.Setting.Parallel && peakOf(base) > 0 && peakOf(m) > 0 {
				per := (float64(peakOf(m)) - float64(peakOf(base))) / float64(m.Setting.Parallel-base.Setting.Parallel)
				delta = fmt.Sprintf("%.1f MiB", per/(1<<20))
				break
			}
		}
		kv := "–"
		if est, ok := matrix.KVBytesPerSlot(d.Header.Model.ModelInfo, m.Setting.NumCtx, d.Header.EngineEnv); ok {
			kv = fmt.Sprintf("%.1f MiB", float64(est)/(1<<20))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f s | %.2f s | %s | %s |\n", d.Label(m.Setting), m.Status,
			mib(m.Idle), mib(m.Peak), mib(m.PeakVRAM), mib(uint64(max(m.PS, 0))), mib(uint64(max(m.PSVRAM, 0))), delta, kv, m.Ready, m.Load, m.Verified,
			mib(m.WarmupPeak))
	}
	fmt.Fprintln(w)
}

func mib(b uint64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func (d *Data) writeOutcomes(w io.Writer) {
	var bad []*Cell
	for _, s := range d.Settings {
		for _, conc := range d.Conc {
			for _, size := range d.Sizes {
				if c := d.Cell(s, conc, size); c != nil && c.Status != matrix.StatusOK {
					bad = append(bad, c)
				}
			}
		}
	}
	if len(bad) == 0 {
		return
	}
	fmt.Fprintf(w, "## Scenarios that did not run to the end\n\n| scenario | status | why |\n|---|---|---|\n")
	for _, c := range bad {
		fmt.Fprintf(w, "| %s | %s | %s |\n", c.Name, strings.ToUpper(c.Status), strings.ReplaceAll(c.Note, "|", "\\|"))
	}
	fmt.Fprintln(w)
}

func (d *Data) writeRaw(w io.Writer) {
	fmt.Fprintf(w, "## Raw data per configuration\n\n")
	fmt.Fprintf(w, "| scenario | status | requests | errors | TTFT p50 ms | latency p50 ms | tok/s mean | throughput tok/s | TTFT p95 ms | latency p95 ms | TPOT p95 ms | mean output tokens | late arrivals | peak memory |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(c *Cell) {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %d | %s |\n", c.Name, c.Status, c.Requests, c.Errors,
			c.TTFTP50Ms, c.E2EP50Ms, c.TokPerSecMean, c.OutputTokPerSec, c.TTFTP95Ms, c.E2EP95Ms, c.TPOTP95Ms, c.MeanOutputTokens, c.Late,
			mib(c.PeakMemBytes))
	}
	for _, s := range d.Settings {
		for _, conc := range d.Conc {
			for _, size := range d.Sizes {
				if c := d.Cell(s, conc, size); c != nil {
					row(c)
				}
			}
		}
		for _, rate := range d.Header.Settings.Rates { // open-loop scenarios
			for _, size := range d.Sizes {
				if c := d.Cells[matrix.Scenario{Setting: s, Rate: rate, PromptSize: size}.Name()]; c != nil {
					row(c)
				}
			}
		}
	}
	fmt.Fprintln(w)
}

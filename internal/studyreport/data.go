// Package studyreport writes the parallelism study's report (report.md) and
// charts (PNG) from a run folder's raw results: every figure is computed
// from the requests on disk, so `supervisor report DIR` gives the same
// report as the run did.
package studyreport

import (
	"fmt"
	"slices"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// Cell is one scenario with its figures recomputed from its requests.
type Cell struct {
	matrix.Result
}

// Data is a run ready to report.
type Data struct {
	Header   matrix.Header
	Cells    map[string]*Cell // by scenario name
	Settings []matrix.Setting // in matrix order
	Conc     []int
	Sizes    []string
	// Capacity and Probes are a capacity search's answers and probes.
	Capacity []matrix.Capacity
	Probes   []matrix.Probe
}

// FromRun recomputes each scenario's figures from its requests.
func FromRun(h matrix.Header, results []matrix.Result, reqs []matrix.Request) *Data {
	d := &Data{Header: h, Cells: map[string]*Cell{}}
	byAttempt := map[string][]matrix.Request{}
	for _, q := range reqs {
		byAttempt[q.Attempt] = append(byAttempt[q.Attempt], q)
	}
	for _, r := range results {
		c := &Cell{Result: r}
		if r.Status == matrix.StatusOK {
			w := r.Window
			if w.Start.IsZero() {
				w = matrix.DrainedWindow(byAttempt[r.Attempt], h.Settings.Duration.D())
			}
			c.Figures = matrix.Compute(byAttempt[r.Attempt], w, h.Settings.SLO.PerRequest())
			c.WindowS = w.Length().Seconds()
		}
		d.Cells[r.Name] = c
		if !slices.Contains(d.Settings, r.Setting) {
			d.Settings = append(d.Settings, r.Setting)
		}
		if r.Rate == 0 && !slices.Contains(d.Conc, r.Concurrency) {
			d.Conc = append(d.Conc, r.Concurrency)
		}
		if !slices.Contains(d.Sizes, r.PromptSize) {
			d.Sizes = append(d.Sizes, r.PromptSize)
		}
	}
	order := func(xs []string, by []string) {
		slices.SortStableFunc(xs, func(a, b string) int { return index(by, a) - index(by, b) })
	}
	order(d.Sizes, h.Settings.PromptSizes)
	slices.Sort(d.Conc)
	slices.SortStableFunc(d.Settings, func(a, b matrix.Setting) int {
		if a.NumCtx != b.NumCtx {
			return a.NumCtx - b.NumCtx
		}
		return a.Parallel - b.Parallel
	})
	return d
}

func index(xs []string, x string) int {
	if i := slices.Index(xs, x); i >= 0 {
		return i
	}
	return len(xs)
}

// Cell returns the scenario's cell, or nil.
func (d *Data) Cell(s matrix.Setting, conc int, size string) *Cell {
	return d.Cells[matrix.Scenario{Setting: s, Concurrency: conc, PromptSize: size}.Name()]
}

// OK returns the cell when its scenario ran, else nil.
func (d *Data) OK(s matrix.Setting, conc int, size string) *Cell {
	if c := d.Cell(s, conc, size); c != nil && c.Status == matrix.StatusOK && c.Requests > c.Errors {
		return c
	}
	return nil
}

// Label names a setting in tables and charts.
func (d *Data) Label(s matrix.Setting) string {
	if d.multiCtx() {
		return fmt.Sprintf("p=%d ctx=%d", s.Parallel, s.NumCtx)
	}
	return fmt.Sprintf("p=%d", s.Parallel)
}

func (d *Data) multiCtx() bool {
	for _, s := range d.Settings {
		if s.NumCtx != d.Settings[0].NumCtx {
			return true
		}
	}
	return false
}

// SettingMemory is the memory of one setting: the peak over its scenarios,
// the idle figure after load, and what /api/ps says.
type SettingMemory struct {
	Setting matrix.Setting
	Peak    uint64
	Idle    uint64
	PS      int64
	// PeakVRAM is the process tree's GPU memory (nvidia-smi); PSVRAM what
	// /api/ps says is on the GPU (size_vram).
	PeakVRAM uint64
	PSVRAM   int64
	// WarmupPeak is the RAM peak over the warm-ups, kept apart from the
	// measured windows' peak.
	WarmupPeak uint64
	Status     string // "ok", or the status that kept it from running
	Verified   string
	Ready      float64
	Load       float64
}

// Memory returns each setting's memory.
func (d *Data) Memory() []SettingMemory {
	var out []SettingMemory
	for _, s := range d.Settings {
		m := SettingMemory{Setting: s, Status: matrix.StatusOK}
		anyOK := false
		for _, c := range d.Cells {
			if c.Setting != s {
				continue
			}
			m.Peak = max(m.Peak, c.PeakMemBytes)
			m.PS = max(m.PS, c.PSPeakBytes, c.PSSizeBytes)
			m.PeakVRAM = max(m.PeakVRAM, c.PeakVRAMBytes)
			m.WarmupPeak = max(m.WarmupPeak, c.WarmupPeakMemBytes)
			m.PSVRAM = max(m.PSVRAM, c.PSPeakVRAMBytes, c.PSVRAMBytes)
			if c.IdleMemBytes > 0 {
				m.Idle = c.IdleMemBytes
			}
			if c.Verified != "" {
				m.Verified, m.Ready, m.Load = c.Verified, c.TimeToReadyS, c.ColdLoadS
			}
			if c.Status == matrix.StatusOK {
				anyOK = true
			} else if m.Status == matrix.StatusOK {
				m.Status = c.Status
			}
		}
		if anyOK && m.Status != matrix.StatusOK {
			m.Status = "partly " + m.Status
		}
		out = append(out, m)
	}
	return out
}

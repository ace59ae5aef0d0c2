package matrix

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Files of a capacity search.
const (
	ProbesFile   = "probes.jsonl"
	CapacityFile = "capacity.jsonl"
	CapacityCSV  = "capacity.csv"
)

// Probe is one measured load of a capacity search (a line of probes.jsonl):
// the scenario it ran as, with all its figures, and whether it met the SLO.
type Probe struct {
	// Search names the search: its setting and prompt size.
	Search string  `json:"search"`
	Index  int     `json:"index"`
	Load   float64 `json:"load"`
	Met    bool    `json:"met"`
	Why    string  `json:"why,omitempty"`
	Result
}

// Capacity is a search's answer for one setting and prompt size (a line
// of capacity.jsonl and capacity.csv): the highest load that met the SLO,
// with the figures of that probe.
type Capacity struct {
	Name string `json:"name"`
	Setting
	PromptSize string `json:"prompt_size"`
	Search     string `json:"search"`
	SLO        string `json:"slo"`
	// MaxConcurrency (closed loop) or MaxRateRPS (open loop) is the
	// capacity: 0 when even the lowest load missed the SLO.
	MaxConcurrency int     `json:"max_concurrency,omitempty"`
	MaxRateRPS     float64 `json:"max_rate_rps,omitempty"`
	// AtBound says the search stopped at --max-concurrency or --max-rate:
	// the capacity may be higher.
	AtBound bool `json:"at_bound,omitempty"`
	// The figures of the probe at the capacity.
	GoodputRPS       float64 `json:"goodput_rps"`
	ReqPerSec        float64 `json:"req_per_s"`
	TTFTP95Ms        float64 `json:"ttft_p95_ms"`
	TPOTP95Ms        float64 `json:"tpot_p95_ms"`
	E2EP95Ms         float64 `json:"latency_p95_ms"`
	MeanOutputTokens float64 `json:"mean_output_tokens"`
	PeakMemBytes     uint64  `json:"peak_mem_bytes"`
	PSPeakBytes      int64   `json:"ps_peak_bytes"`
	// Probes counts the loads measured; Status is ok, or why the search
	// could not finish (the engine's oom, crash or failed start).
	Probes int    `json:"probes"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

var capacityColumns = columns[Capacity]{
	{"parallel", func(c Capacity) string { return fmtInt(c.Parallel) }},
	{"num_ctx", func(c Capacity) string { return fmtInt(c.NumCtx) }},
	{"prompt_size", func(c Capacity) string { return c.PromptSize }},
	{"search", func(c Capacity) string { return c.Search }},
	{"slo", func(c Capacity) string { return c.SLO }},
	{"max_concurrency", func(c Capacity) string { return fmtInt(c.MaxConcurrency) }},
	{"max_rate_rps", func(c Capacity) string { return fmtFloat(c.MaxRateRPS) }},
	{"at_bound", func(c Capacity) string { return fmt.Sprint(c.AtBound) }},
	{"goodput_rps", func(c Capacity) string { return fmtFloat(c.GoodputRPS) }},
	{"req_per_s", func(c Capacity) string { return fmtFloat(c.ReqPerSec) }},
	{"ttft_p95_ms", func(c Capacity) string { return fmtFloat(c.TTFTP95Ms) }},
	{"tpot_p95_ms", func(c Capacity) string { return fmtFloat(c.TPOTP95Ms) }},
	{"latency_p95_ms", func(c Capacity) string { return fmtFloat(c.E2EP95Ms) }},
	{"mean_output_tokens", func(c Capacity) string { return fmtFloat(c.MeanOutputTokens) }},
	{"peak_mem_bytes", func(c Capacity) string { return fmtUint(c.PeakMemBytes) }},
	{"ps_peak_bytes", func(c Capacity) string { return fmtInt64(c.PSPeakBytes) }},
	{"probes", func(c Capacity) string { return fmtInt(c.Probes) }},
	{"status", func(c Capacity) string { return c.Status }},
	{"note", func(c Capacity) string { return c.Note }},
}

// probeScenario is the scenario that measures one load of a search.
func probeScenario(search Scenario, load float64) Scenario {
	sc := Scenario{Setting: search.Setting, PromptSize: search.PromptSize}
	if search.Search == SearchRate {
		sc.Rate = load
	} else {
		sc.Concurrency = int(load)
	}
	return sc
}

// errEngineDied ends a search whose engine died in a probe.
var errEngineDied = errors.New("engine died")

// runSearch finds a setting's capacity for one prompt size: every probe is
// a scenario of its own (warm-up, then the measured window), recorded in
// results.jsonl and probes.jsonl; the answer goes to capacity.jsonl and
// capacity.csv. died says how the engine died in a probe.
func (r *Runner) runSearch(ctx context.Context, search Scenario, facts SettingFacts) (died string, err error) {
	slo := r.Settings.SLO
	cfg := r.Settings.Search
	// The progress bar counts searches, not probes.
	if progress := r.Progress; progress != nil {
		progress.Start(search.Name())
		r.Progress = nil
		defer func() { r.Progress = progress; progress.Finish(Result{}) }()
	}
	var probes []Probe
	capacity, _, err := cfg.FindCapacity(func(load float64) (bool, error) {
		sc := probeScenario(search, load)
		res, reqs, how, err := r.measure(ctx, sc, facts)
		if err != nil {
			return false, err
		}
		if res, err = r.write(res, reqs); err != nil {
			return false, err
		}
		p := Probe{Search: search.Name(), Index: len(probes), Load: load, Result: res}
		switch {
		case res.Status != StatusOK:
			p.Why = res.Status + ": " + res.Note
		default:
			p.Met, p.Why = slo.Met(res.Figures)
			// An open loop holds only while the engine keeps up: when the
			// requests served fall behind the arrivals, the queue grows
			// and any latency limit fails given time.
			if arrived, served := float64(res.Requests), res.ReqPerSec*res.WindowS; p.Met && search.Search == SearchRate &&
				served < (1-KeepUpTolerance)*arrived-KeepUpSlack {
				p.Met, p.Why = false, fmt.Sprintf("served %.0f of %.0f requests that arrived in the window: the queue grows", served, arrived)
			}
		}
		probes = append(probes, p)
		if err := r.Store.AppendProbe(p); err != nil {
			return false, err
		}
		verdict := "meets the SLO"
		if !p.Met {
			verdict = "misses the SLO: " + p.Why
		}
		fmt.Fprintf(r.Log, "%s: %s %g %s\n", search.Name(), search.Search, load, verdict)
		if how != "" {
			died = how
			return false, errEngineDied
		}
		return p.Met, nil
	})
	c := Capacity{Name: search.Name(), Setting: search.Setting, PromptSize: search.PromptSize, Search: search.Search,
		SLO: slo.String(), Probes: len(probes), Status: StatusOK}
	switch {
	case errors.Is(err, errEngineDied):
		last := probes[len(probes)-1]
		c.Status, c.Note = last.Status, "engine died at "+last.Name+": "+died
	case err != nil:
		return "", err
	}
	for _, p := range probes {
		if p.Met && p.Load == capacity {
			c.GoodputRPS, c.ReqPerSec, c.TTFTP95Ms, c.TPOTP95Ms, c.E2EP95Ms = p.GoodputRPS, p.ReqPerSec, p.TTFTP95Ms, p.TPOTP95Ms, p.E2EP95Ms
			c.MeanOutputTokens, c.PeakMemBytes, c.PSPeakBytes = p.MeanOutputTokens, p.PeakMemBytes, p.PSPeakBytes
		}
	}
	if capacity > 0 {
		if search.Search == SearchRate {
			c.MaxRateRPS = capacity
		} else {
			c.MaxConcurrency = int(capacity)
		}
		c.AtBound = capacity >= cfg.Max
	}
	if err := r.Store.AppendCapacity(c); err != nil {
		return "", err
	}
	fmt.Fprintf(r.Log, "%s: capacity %s after %d probes\n", search.Name(), c.Describe(), c.Probes)
	return died, nil
}

// Describe says the capacity in words: "3 users", "2.5 requests/s".
func (c Capacity) Describe() string {
	bound := ""
	if c.AtBound {
		bound = " or more (the search's bound)"
	}
	switch {
	case c.Status != StatusOK && c.MaxConcurrency == 0 && c.MaxRateRPS == 0:
		return "unknown (" + c.Status + ")"
	case c.Search == SearchRate:
		return fmt.Sprintf("%.3g requests/s%s", c.MaxRateRPS, bound)
	case c.MaxConcurrency == 1:
		return "1 user" + bound
	}
	return fmt.Sprintf("%d users%s", c.MaxConcurrency, bound)
}

// recordSearchFailure writes a search that could not run.
func (r *Runner) recordSearchFailure(search Scenario, status, note string) error {
	c := Capacity{Name: search.Name(), Setting: search.Setting, PromptSize: search.PromptSize, Search: search.Search,
		SLO: r.Settings.SLO.String(), Status: status, Note: note}
	fmt.Fprintf(r.Log, "%s: %s %s\n", c.Name, status, note)
	return r.Store.AppendCapacity(c)
}

// AppendProbe appends one probe to probes.jsonl.
func (s *Store) AppendProbe(p Probe) error {
	line, err := json.Marshal(p)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := appendFile(filepath.Join(s.dir, ProbesFile), append(line, '\n')); err != nil {
		return fmt.Errorf("write probe %s: %w", p.Name, err)
	}
	return nil
}

// AppendCapacity appends a search's answer to capacity.jsonl and
// capacity.csv; the search is then done.
func (s *Store) AppendCapacity(c Capacity) error {
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := appendFile(filepath.Join(s.dir, CapacityFile), append(line, '\n')); err != nil {
		return fmt.Errorf("write capacity of %s: %w", c.Name, err)
	}
	path := filepath.Join(s.dir, CapacityCSV)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		w.Write(capacityColumns.header())
	}
	w.Write(capacityColumns.row(c))
	w.Flush()
	if err := appendFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("write capacity of %s: %w", c.Name, err)
	}
	s.done[c.Name] = true
	return nil
}

// LoadCapacity reads a run folder's capacity answers (the last of each
// search) and probes, in the order written.
func LoadCapacity(dir string) ([]Capacity, []Probe, error) {
	caps, err := readLastOfEach(filepath.Join(dir, CapacityFile), func(c Capacity) string { return c.Name })
	if err != nil {
		return nil, nil, err
	}
	var probes []Probe
	err = readJSONL(filepath.Join(dir, ProbesFile), func(line []byte) error {
		var p Probe
		if err := json.Unmarshal(line, &p); err != nil {
			return err
		}
		probes = append(probes, p)
		return nil
	})
	return caps, probes, err
}

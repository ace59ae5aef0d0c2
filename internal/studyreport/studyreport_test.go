package studyreport

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/matrix"
)

// run writes a run folder of two settings, one concurrency, one size.
func run(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := matrix.Settings{Model: "m", Concurrency: []int{4}, PromptSizes: []string{"small"}, NumParallel: []int{1, 4},
		NumCtx: []int{4096}, Duration: matrix.Duration(time.Second)}
	st, err := matrix.Create(dir, matrix.Header{Settings: s, Model: mInfo()})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	for _, tc := range []struct {
		p          int
		ttft, tps  float64
		tokens     int
		peak, idle uint64
	}{
		{1, 900, 80, 100, 5000 << 20, 4900 << 20},
		{4, 100, 30, 200, 6000 << 20, 5800 << 20},
	} {
		sc := matrix.Scenario{Setting: matrix.Setting{Parallel: tc.p, NumCtx: 4096}, Concurrency: 4, PromptSize: "small"}
		q := matrix.Request{Scenario: sc.Name(), Attempt: sc.Name(), Start: t0, OK: true, TTFTMs: tc.ttft, HasTTFT: true,
			E2EMs: 500, TokPerSec: tc.tps, OutputTokens: tc.tokens}
		res := matrix.Result{Scenario: sc, Name: sc.Name(), Attempt: sc.Name(), Status: matrix.StatusOK,
			PeakMemBytes: tc.peak, SettingFacts: matrix.SettingFacts{IdleMemBytes: tc.idle, Verified: "yes"}}
		if err := st.Append(res, []matrix.Request{q}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mInfo() backend.ModelInfo {
	return backend.ModelInfo{Name: "m", ModelInfo: map[string]any{"general.architecture": "qwen2", "qwen2.block_count": 28.0,
		"qwen2.embedding_length": 3584.0, "qwen2.attention.head_count": 28.0, "qwen2.attention.head_count_kv": 4.0}}
}

func TestReportFromRun(t *testing.T) {
	dir := run(t)
	d, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	low, high, conc, rows, ok := d.Executive()
	if !ok || low.Parallel != 1 || high.Parallel != 4 || conc != 4 || len(rows) != 4 {
		t.Fatalf("executive summary: %v %v %d %v %v", low, high, conc, rows, ok)
	}
	winners := map[string]string{}
	for _, r := range rows {
		winners[r.Figure] = r.Winner("p=1", "p=4")
	}
	want := map[string]string{"TTFT p50": "p=4", "per-request tok/s": "p=1", "system throughput": "p=4", "peak memory": "p=1"}
	for fig, w := range want {
		if winners[fig] != w {
			t.Errorf("%s: winner %s, want %s", fig, winners[fig], w)
		}
	}
	report, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| TTFT p50 (ms) | 900 | 100 | -89% | p=4 |",
		// (6000 − 5000) MiB over 3 added slots; the model's KV cache is 224 MiB per 4096-token slot.
		"| p=4 | ok | 5800.0 MiB | 6000.0 MiB | – | – | – | 333.3 MiB | 224.0 MiB |",
		"| p1-ctx4096-c4-small | ok | 1 | 0 | 900.00 | 500.00 | 80.00 | 100.00 |",
		"![ttft_vs_concurrency](ttft_vs_concurrency.png)",
	} {
		if !bytes.Contains(report, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, c := range []string{ChartTTFT, ChartTokPerSec, ChartThroughput, ChartMemory} {
		if b, err := os.ReadFile(filepath.Join(dir, c)); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s: not a PNG (%v)", c, err)
		}
	}
	if !strings.Contains(d.Summary(), "| figure | p=1 | p=4 |") {
		t.Errorf("summary:\n%s", d.Summary())
	}
}

func TestReportOfEmptyRunFails(t *testing.T) {
	dir := t.TempDir()
	if _, err := matrix.Create(dir, matrix.Header{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir); err == nil {
		t.Error("a report of a run without results")
	}
}

func TestAnswerLengthsAndCapacitySection(t *testing.T) {
	dir := run(t) // p=1 answered 100 tokens, p=4 200: not the same work
	st, _, err := matrix.Resume(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []matrix.Capacity{
		{Name: "a", Setting: matrix.Setting{Parallel: 1, NumCtx: 4096}, PromptSize: "small", Search: matrix.SearchConcurrency,
			SLO: "ttft_p95=2s", MaxConcurrency: 1, GoodputRPS: 0.5, TTFTP95Ms: 300, PeakMemBytes: 5000 << 20, Probes: 2, Status: matrix.StatusOK},
		{Name: "b", Setting: matrix.Setting{Parallel: 4, NumCtx: 4096}, PromptSize: "small", Search: matrix.SearchConcurrency,
			SLO: "ttft_p95=2s", MaxConcurrency: 6, GoodputRPS: 2.5, TTFTP95Ms: 1800, PeakMemBytes: 6000 << 20, Probes: 5, Status: matrix.StatusOK},
	} {
		if err := st.AppendCapacity(c); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	flagged := 0
	for _, a := range d.AnswerLengths() {
		if a.Flagged() {
			flagged++
		}
	}
	if flagged != 2 {
		t.Errorf("%d settings flagged, want both (100 against 200 tokens): %+v", flagged, d.AnswerLengths())
	}
	report, _ := os.ReadFile(filepath.Join(dir, ReportFile))
	for _, want := range []string{
		"## Capacity under the SLO",
		"With small prompts, p=4 serves the most within ttft_p95=2s: 6 users (goodput 2.50 requests/s, TTFT p95 1800 ms) at 6000 MiB peak memory.",
		"differs: not the same work",
		"![capacity](capacity.png)",
	} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ChartCapacity)); err != nil {
		t.Error(err)
	}
}

// Settings that all stopped at the search's bound are not ranked: the answer
// says the search cannot tell them apart, and which needs the least memory.
func TestCapacityAnswerWhenSettingsTieAtTheBound(t *testing.T) {
	d := &Data{Header: matrix.Header{Settings: matrix.Settings{PromptSizes: []string{"small"}}}}
	for _, p := range []int{1, 4} {
		d.Capacity = append(d.Capacity, matrix.Capacity{Setting: matrix.Setting{Parallel: p, NumCtx: 2048}, PromptSize: "small",
			Search: matrix.SearchConcurrency, SLO: "ttft_p95=1s", MaxConcurrency: 8, AtBound: true,
			GoodputRPS: float64(p), TTFTP95Ms: 500, PeakMemBytes: uint64(p) * 100 << 20, Status: matrix.StatusOK})
	}
	want := "With small prompts, 2 settings served the search's bound within ttft_p95=1s, so the search cannot tell them apart " +
		"(raise --max-concurrency or --max-rate); of those, p=1 needs the least memory, 100 MiB (goodput 1.00 requests/s, TTFT p95 500 ms)."
	if got := d.CapacityAnswer(); got != want {
		t.Errorf("answer:\n%s\nwant\n%s", got, want)
	}
}

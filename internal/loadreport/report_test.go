package loadreport

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/stream"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// result makes a Result carrying f, started at offset from t0.
func result(t *testing.T, attack string, seq uint64, offset time.Duration, f loadgen.Figures) vegeta.Result {
	t.Helper()
	f.Start = t0.Add(offset)
	r := vegeta.Result{Attack: attack, Seq: seq, Timestamp: f.Start, Latency: f.End, Code: 200, Headers: http.Header{}}
	if err := f.Encode(r.Headers); err != nil {
		t.Fatal(err)
	}
	return r
}

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestComputeFollowsMetricsDefinitions(t *testing.T) {
	ok := func(ttft, last, end float64, tokens int, gaps ...float64) loadgen.Figures {
		f := loadgen.Figures{API: "ollama", Status: 200, FirstToken: ms(ttft), LastToken: ms(last), End: ms(end),
			OutputChunks: len(gaps) + 1, OutputTokens: tokens, InputTokens: 10,
			Ollama: &stream.OllamaTimings{TotalDuration: 50e6, LoadDuration: 5e6, PromptEvalDuration: 10e6, EvalDuration: 20e6, EvalCount: tokens}}
		for _, g := range gaps {
			f.Gaps = append(f.Gaps, ms(g))
		}
		return f
	}
	results := []vegeta.Result{
		result(t, "a", 0, 0, ok(100, 300, 400, 3, 100, 100)),        // TPOT 100ms, ends 0.4s
		result(t, "a", 1, time.Second, ok(200, 200, 250, 1)),        // one token: no TPOT, ends 1.25s
		result(t, "b", 0, 2*time.Second, ok(50, 450, 3000, 5, 400)), // TPOT 100ms, ends 5s
		result(t, "b", 1, 1500*time.Millisecond, loadgen.Figures{API: "ollama", Status: 503, End: ms(5),
			ErrorType: "503", Error: "server busy"}),
	}
	r, err := Compute(results, Options{SLO: SLO{TTFT: 150 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"requests", float64(r.Requests), 4},
		{"succeeded", float64(r.Succeeded), 3},
		{"success ratio", r.SuccessRatio, 0.75},
		// the span of ends: 0.4s → 5s; the first end opens it and is not counted.
		{"window", r.Window, 4.6},
		// successful requests ending in (0.4s, 5s]: a/1 and b/0
		{"request throughput", r.RequestThroughput, 2 / 4.6},
		// their output tokens (1 + 5) and the error's (0)
		{"output throughput", r.OutputThroughput, 6 / 4.6},
		{"TTFT p50", r.TTFT.P50, 0.1},
		{"TTFT max", r.TTFT.Max, 0.2},
		{"E2E count", float64(r.E2E.Count), 3},
		{"ITL count", float64(r.ITL.Count), 3},
		{"ITL max", r.ITL.Max, 0.4},
		{"TPOT count", float64(r.TPOT.Count), 2},
		{"TPOT mean", r.TPOT.Mean, 0.1},
		{"decode speed mean", r.DecodeSpeed.Mean, 10},
		{"queue wait", r.QueueWait.P50, 0.015},
		{"server decode speed max", r.ServerDecodeSpeed.Max, 250},
		// TTFT ≤ 150ms: a/0 (opens the window, not counted) and b/0.
		{"good", float64(r.GoodRequests), 1},
		{"goodput", r.Goodput, 1 / 4.6},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(r.Errors) != 1 || r.Errors[0].Type != "503" || r.Errors[0].Example != "server busy" {
		t.Errorf("errors %+v", r.Errors)
	}
	if strings.Join(r.Attacks, ",") != "a,b" {
		t.Errorf("attacks %v", r.Attacks)
	}
}

func TestWindow(t *testing.T) {
	f := func(end float64) loadgen.Figures {
		return loadgen.Figures{API: "ollama", Status: 200, End: ms(end), OutputTokens: 10, OutputChunks: 10}
	}
	tests := []struct {
		name        string
		results     []vegeta.Result
		opts        Options
		wantWindow  float64
		wantReqRate float64
	}{
		{"steady closed loop: ends 1s apart", []vegeta.Result{
			result(t, "a", 0, 0, f(2000)), result(t, "a", 1, time.Second, f(2000)),
			result(t, "a", 2, 2*time.Second, f(2000)), result(t, "a", 3, 3*time.Second, f(2000)),
		}, Options{}, 3, 1},
		{"one round ends together", []vegeta.Result{
			result(t, "a", 0, 0, f(1000)), result(t, "a", 1, 0, f(1001)), result(t, "a", 2, 0, f(1002)),
		}, Options{}, 1.002, 3 / 1.002},
		{"explicit window", []vegeta.Result{
			result(t, "a", 0, 0, f(500)), result(t, "a", 1, 0, f(1500)), result(t, "a", 2, 0, f(2500)),
		}, Options{Start: t0, End: t0.Add(2 * time.Second)}, 2, 1},
	}
	for _, tc := range tests {
		r, err := Compute(tc.results, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if !near(r.Window, tc.wantWindow) || !near(r.RequestThroughput, tc.wantReqRate) || !near(r.OutputThroughput, 10*tc.wantReqRate) {
			t.Errorf("%s: window %v, %v req/s, %v tok/s; want %v, %v, %v", tc.name, r.Window, r.RequestThroughput,
				r.OutputThroughput, tc.wantWindow, tc.wantReqRate, 10*tc.wantReqRate)
		}
	}
}

func TestPlainVegetaResultsAndEstimatesAreMarked(t *testing.T) {
	est := loadgen.Figures{API: "openai", Status: 200, FirstToken: ms(10), LastToken: ms(30), End: ms(40),
		OutputChunks: 3, OutputTokens: 3, TokensEstimated: true, Gaps: []time.Duration{ms(10), ms(10)}}
	rs := []vegeta.Result{
		result(t, "x", 0, 0, est),
		{Attack: "x", Seq: 1, Timestamp: t0.Add(time.Second), Latency: ms(20), Code: 0, Error: "dial tcp: connection refused"},
	}
	r, err := Compute(rs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Unmeasured != 1 || r.EstimatedTokens != 1 || r.Succeeded != 1 || len(r.Errors) != 1 {
		t.Fatalf("report %+v", r)
	}
	var text bytes.Buffer
	if err := Write(&text, r, "text"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"estimated: 1 requests", "connection refused", "Unmeasured"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestBadFiguresAreAnError(t *testing.T) {
	r := vegeta.Result{Headers: http.Header{loadgen.FiguresHeader: {"{not json"}}}
	if _, err := Compute([]vegeta.Result{r}, Options{}); err == nil {
		t.Fatal("Compute accepted malformed figures")
	}
}

func TestWriteFormats(t *testing.T) {
	f := loadgen.Figures{API: "ollama", Status: 200, FirstToken: ms(100), LastToken: ms(300), End: ms(400),
		OutputChunks: 3, OutputTokens: 3, Gaps: []time.Duration{ms(100), ms(100)}}
	r, err := Compute([]vegeta.Result{result(t, "a", 0, 0, f)}, Options{SLO: SLO{E2E: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ format, want string }{
		{"text", "ttft (ms)"},
		{"json", `"ttft_seconds"`},
		{"csv", "ttft_p50_ms,100.000"},
		{"markdown", "| ttft (ms) | 1 |"},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := Write(&b, r, tc.format); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s output lacks %q:\n%s", tc.format, tc.want, b.String())
		}
		if tc.format == "json" {
			var back Report
			if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.TTFT.P50 != 0.1 {
				t.Errorf("JSON does not read back: %v %+v", err, back.TTFT)
			}
		}
	}
	if err := Write(&bytes.Buffer{}, r, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestParseSLO(t *testing.T) {
	tests := []struct {
		in      string
		want    SLO
		wantErr string
	}{
		{"", SLO{}, ""},
		{"ttft=500ms", SLO{TTFT: 500 * time.Millisecond}, ""},
		{"ttft=500ms, tpot=50ms ,E2E=10s", SLO{500 * time.Millisecond, 50 * time.Millisecond, 10 * time.Second}, ""},
		{"ttft", SLO{}, "not name=duration"},
		{"ttft=fast", SLO{}, "not a positive duration"},
		{"ttft=-1s", SLO{}, "not a positive duration"},
		{"itl=1s", SLO{}, "unknown limit"},
		{"ttft=1s,ttft=2s", SLO{}, "given twice"},
	}
	for _, tc := range tests {
		got, err := ParseSLO(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSLO(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSLO(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseSLO(f *testing.F) {
	for _, s := range []string{"ttft=1s", "ttft=500ms,tpot=50ms,e2e=10s", "=", ",,", "tpot=1e9h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		slo, err := ParseSLO(s)
		if err != nil {
			return
		}
		if slo.TTFT < 0 || slo.TPOT < 0 || slo.E2E < 0 {
			t.Fatalf("ParseSLO(%q) = %+v: negative limit", s, slo)
		}
		back, err := ParseSLO(slo.String())
		if err != nil || back != slo {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, back, err, slo)
		}
	})
}

func TestPlot(t *testing.T) {
	f := loadgen.Figures{API: "ollama", Status: 200, FirstToken: ms(100), LastToken: ms(300), End: ms(400),
		OutputChunks: 3, OutputTokens: 3}
	bad := loadgen.Figures{API: "ollama", End: ms(5), ErrorType: "transport", Error: "refused"}
	p := NewPlot("test plot")
	for _, r := range []vegeta.Result{
		result(t, "p1", 1, time.Second, f), result(t, "p1", 0, 0, f), result(t, "p2", 0, 0, bad),
	} {
		if err := p.Add(&r); err != nil {
			t.Fatal(err)
		}
	}
	var html bytes.Buffer
	if err := p.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"test plot", `"p1: TTFT"`, `"p1: E2E"`, `"p2: E2E ERROR"`, "uPlot"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	if strings.Contains(html.String(), "<script src=") {
		t.Error("HTML loads a script from elsewhere; it must be self-contained")
	}
	var img bytes.Buffer
	if err := p.WritePNG(&img, 640, 400); err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(&img)
	if err != nil || cfg.Width != 640 || cfg.Height != 400 {
		t.Fatalf("PNG: %v %dx%d", err, cfg.Width, cfg.Height)
	}
}

// TestWarmupRecordsCountOnlyInTheWindowsThroughput: a request started in
// the warm-up that ends inside a known window is throughput of that
// window, and no other figure.
func TestWarmupRecordsCountOnlyInTheWindowsThroughput(t *testing.T) {
	c := NewCollector(Options{Start: t0.Add(time.Second), End: t0.Add(3 * time.Second), SLO: SLO{TTFT: time.Second}})
	c.AddRecord(Record{Start: t0, OK: true, HasTTFT: true, TTFTMs: 100, E2EMs: 1500, OutputTokens: 10, Warmup: true})
	c.AddRecord(Record{Start: t0.Add(500 * time.Millisecond), OK: true, HasTTFT: true, TTFTMs: 100, E2EMs: 100, OutputTokens: 7, Warmup: true}) // ended before the window
	c.AddRecord(Record{Start: t0.Add(time.Second), OK: true, HasTTFT: true, TTFTMs: 300, E2EMs: 1000, OutputTokens: 20})
	r := c.Report()
	if r.Requests != 1 || r.TTFT.Count != 1 || r.TTFT.P50 != 0.3 || r.OutputTokens != 20 {
		t.Errorf("warm-up counted outside throughput: %+v", r)
	}
	if r.RequestThroughput != 1 || r.OutputThroughput != 15 || r.GoodRequests != 2 {
		t.Errorf("throughput %v req/s, %v tok/s, %d good; want 1, 15, 2", r.RequestThroughput, r.OutputThroughput, r.GoodRequests)
	}
}

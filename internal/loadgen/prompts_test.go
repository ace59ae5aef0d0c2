package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestReadPrompts(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Prompt
		wantErr  string
	}{
		{"string and objects", "\"hi\"\n\n{\"prompt\":\"p\"}\n{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]}\n",
			[]Prompt{UserPrompt("hi"), UserPrompt("p"), {Messages: []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}}}}, ""},
		{"empty file", "\n\n", nil, "no prompt"},
		{"not json", "{\"prompt\":\"a\"}\nnope\n", nil, "line 2"},
		{"empty prompt", "{\"prompt\":\"\"}", nil, "empty prompt"},
		{"both", "{\"prompt\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}", nil, "both"},
		{"neither", "{\"text\":\"a\"}", nil, "neither"},
		{"no role", "{\"messages\":[{\"content\":\"b\"}]}", nil, "no role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadPrompts(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if !bytes.Equal(gj, wj) {
				t.Fatalf("got %s, want %s", gj, wj)
			}
		})
	}
}

func FuzzReadPrompts(f *testing.F) {
	for _, s := range []string{"\"hi\"\n", "{\"prompt\":\"p\"}\n", "{\"messages\":[{\"role\":\"user\",\"content\":\"u\"}]}", "{", "\"\\u0000\"", "[]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := ReadPrompts(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i, p := range ps {
			if err := p.validate(); err != nil {
				t.Fatalf("prompt %d accepted but invalid: %v", i, err)
			}
		}
	})
}

func TestBuiltinPromptsGrow(t *testing.T) {
	sizes := PromptSizes()
	if strings.Join(sizes, ",") != "small,medium,large,xlarge" {
		t.Fatalf("sizes %v", sizes)
	}
	// Rough token counts (≈ 4 characters a token), the ranges docs/loadtest.md gives.
	want := map[string][2]int{"small": {8, 20}, "medium": {40, 90}, "large": {120, 250}, "xlarge": {500, 1000}}
	for _, s := range sizes {
		p, _ := BuiltinPrompt(s)
		n := len(p.Text()) / 4
		if n < want[s][0] || n > want[s][1] {
			t.Errorf("%s prompt ≈ %d tokens, want %d..%d", s, n, want[s][0], want[s][1])
		}
	}
}

func TestFiguresRoundTrip(t *testing.T) {
	f := Figures{API: "openai", Status: 200, Start: time.Unix(0, 1_700_000_000_123_456_789),
		FirstByte: 5 * time.Millisecond, FirstToken: 7 * time.Millisecond, LastToken: 27 * time.Millisecond,
		End: 30 * time.Millisecond, OutputChunks: 3, Gaps: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond},
		InputTokens: 9, OutputTokens: 3, FinishReason: "stop", Model: "m", ErrorType: "", TraceID: "abc", BytesIn: 99}
	h := map[string][]string{}
	if err := f.Encode(h); err != nil {
		t.Fatal(err)
	}
	got, err := parseFigures([]byte(h[FiguresHeader][0]))
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(f)
	if !bytes.Equal(gj, wj) {
		t.Fatalf("round trip\n got %s\nwant %s", gj, wj)
	}
	if tpot, ok := got.TPOT(); !ok || tpot != 10*time.Millisecond || got.DecodeSpeed() != 100 {
		t.Fatalf("TPOT %v %v speed %v", tpot, ok, got.DecodeSpeed())
	}
}

func FuzzParseFigures(f *testing.F) {
	f.Add([]byte(`{"v":1,"api":"ollama","start_unix_ns":1,"end_ns":5,"chunks":2,"gaps_us":[3],"output_tokens":2}`))
	f.Add([]byte(`{"v":1,"end_ns":-1}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fig, err := parseFigures(b)
		if err != nil {
			return
		}
		if fig.End < 0 || fig.OutputTokens < 0 {
			t.Fatalf("accepted negative figures: %+v", fig)
		}
		fig.TPOT()
		fig.DecodeSpeed()
	})
}

func TestPoissonPacer(t *testing.T) {
	p, err := NewPoissonPacer(50, 7)
	if err != nil {
		t.Fatal(err)
	}
	// Walk the schedule: each hit is due when Pace says; gaps must average
	// 1/rate with a coefficient of variation near 1 (exponential).
	var elapsed time.Duration
	var gaps []float64
	const n = 20000
	for hits := uint64(0); hits < n; hits++ {
		wait, stop := p.Pace(elapsed, hits)
		if stop {
			t.Fatal("a Poisson pacer never stops")
		}
		gaps = append(gaps, wait.Seconds())
		elapsed += wait
	}
	var sum, sq float64
	for _, g := range gaps[1:] {
		sum += g
	}
	mean := sum / float64(len(gaps)-1)
	for _, g := range gaps[1:] {
		sq += (g - mean) * (g - mean)
	}
	cv := math.Sqrt(sq/float64(len(gaps)-2)) / mean
	if math.Abs(mean-0.02) > 0.001 || math.Abs(cv-1) > 0.05 {
		t.Fatalf("mean gap %.5fs (want 0.02), CV %.3f (want 1)", mean, cv)
	}
	if late, _ := p.Pace(elapsed+time.Hour, n); late != 0 {
		t.Fatalf("a late hit waits %s, want 0", late)
	}
	if _, err := NewPoissonPacer(0, 1); err == nil {
		t.Fatal("rate 0 accepted")
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"defaults with URL", func(o *Options) {}, ""},
		{"no URL", func(o *Options) { o.URL = "" }, "URL"},
		{"bad scheme", func(o *Options) { o.URL = "ftp://x" }, "scheme"},
		{"openai generate", func(o *Options) { o.API, o.Endpoint = "openai", "generate" }, "Endpoint"},
		{"prompt size", func(o *Options) { o.PromptSize = "huge" }, "PromptSize"},
		{"no loop", func(o *Options) { o.Concurrency = 0 }, "Concurrency"},
		{"arrival", func(o *Options) { o.Rate, o.Arrival = 1, "bursty" }, "Arrival"},
		{"two warmups", func(o *Options) { o.Warmup, o.WarmupRequests = time.Second, 3 }, "Warmup"},
		{"timeout", func(o *Options) { o.Timeout = 0 }, "Timeout"},
	}
	for _, tc := range tests {
		o := DefaultOptions()
		o.URL = "http://localhost:11434"
		tc.set(&o)
		err := o.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.uber.org/goleak"

	"github.com/tokentrace/tokentrace/internal/stats"
	"github.com/tokentrace/tokentrace/internal/stream"
)

func TestMain(m *testing.M) {
	// As the loadtest command runs (GOGC=800): collections delay the
	// goroutines reading streams, which the timing tests would count.
	debug.SetGCPercent(800)
	goleak.VerifyTestMain(m)
}

// timingP99 is the strict bound of TestTimingMatchesGroundTruth at every
// concurrency; `make test-loadtest` sets 1ms and runs it alone, serially,
// without the race detector, and runs it again when a neighbour's stall
// made it miss. Left at 0 (plain `go test`, which runs beside every other
// package on a busy machine), no p99 is held: a stall of a few milliseconds
// is the machine, not the measurement. The unit run checks what does not
// depend on load instead (see checkLoadFree).
var timingP99 = flag.Duration("timing-p99", 0, "hold TestTimingMatchesGroundTruth to this p99 error at every concurrency")

// looseMedian bounds the median arrival error in the unit run: far above
// any stall that lasts less than half the run, far below a figure that
// measures the wrong moment by a whole request.
const looseMedian = 50 * time.Millisecond

// checkLoadFree asserts what holds on any machine, however loaded: no
// output chunk is seen before the server began writing it (a read cannot
// precede its write), and the median error stays under looseMedian.
// clockSlack is how far a measured arrival may precede the server's stamp
// before it counts as impossible (see checkLoadFree).
const clockSlack = 500 * time.Microsecond

func checkLoadFree(t *testing.T, name string, f Figures, sent []sentChunk) {
	t.Helper()
	at := f.Start.Add(f.FirstToken)
	for k := range sent {
		if k > 0 {
			at = at.Add(f.Gaps[k-1])
		}
		// The record's times are a wall-clock start plus monotonic durations
		// kept to the microsecond, the server's stamps wall-clock readings: the
		// two clocks may part by tens of microseconds while the wall clock is
		// slewed. A chunk attributed to the wrong write is a whole interval off.
		if at.Before(sent[k].write.Add(-clockSlack)) {
			t.Errorf("%s: chunk %d measured %s before the server began writing it", name, k, sent[k].write.Sub(at))
		}
	}
}

// checkTiming holds a summary of arrival errors to the strict bound when
// one is set, and to looseMedian otherwise; at high concurrency under the
// race detector even the median is the machine's (hundreds of
// milliseconds of draining 256 streams), so a caller passes held=false
// where only the strict run should hold a bound.
func checkTiming(t *testing.T, name string, s stats.Summary, held bool) {
	t.Helper()
	if !held {
		return
	}
	if *timingP99 > 0 {
		if s.P99 > timingP99.Seconds() {
			t.Errorf("%s error p99 %.3f ms, want ≤ %s", name, s.P99*1e3, *timingP99)
		}
		return
	}
	if s.P50 > looseMedian.Seconds() {
		t.Errorf("%s error p50 %.3f ms, want ≤ %s even on a loaded machine", name, s.P50*1e3, looseMedian)
	}
}

// collect runs an attack and returns every result with its figures.
func collect(t *testing.T, ctx context.Context, o Options) ([]*vegeta.Result, []Figures) {
	t.Helper()
	var rs []*vegeta.Result
	var fs []Figures
	err := Run(ctx, o, func(r *vegeta.Result) error {
		f, err := Decode(r)
		if err != nil {
			return err
		}
		rs, fs = append(rs, r), append(fs, f)
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rs, fs
}

func testOptions(url, api string) Options {
	o := DefaultOptions()
	o.URL, o.API, o.Model, o.PromptSize, o.Timeout = url, api, "m", "small", 20*time.Second
	return o
}

// TestTimingMatchesGroundTruth checks the figures against the moments the
// server sent each chunk (from the start of its write to the return of its
// flush), at concurrency 1 and 256: token counts exact, no chunk seen
// before its write began, and TTFT and every gap within -timing-p99 at p99
// (1 ms in make test-loadtest; the unit run holds only the loose median).
func TestTimingMatchesGroundTruth(t *testing.T) {
	tests := []struct {
		api         string
		concurrency int
		requests    uint64
		interval    time.Duration
	}{
		{"ollama", 1, 40, 3 * time.Millisecond},
		{"openai", 1, 40, 3 * time.Millisecond},
		// 256 streams of 10 chunks/s each; the first round, which opens
		// 256 connections at once, is the warm-up.
		{"ollama", 256, 256, 100 * time.Millisecond},
		{"openai", 256, 256, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.api+"/c"+itoa(tc.concurrency), func(t *testing.T) {
			fake := &fakeLLM{api: tc.api, chunks: 10, interval: tc.interval, phase: tc.concurrency > 1}
			srv := newFakeLLM(t, fake)
			o := testOptions(srv.URL, tc.api)
			o.Concurrency, o.Requests = tc.concurrency, tc.requests
			if tc.concurrency > 1 {
				o.WarmupRequests = uint64(tc.concurrency)
			}
			rs, fs := collect(t, context.Background(), o)
			if uint64(len(rs)) != tc.requests {
				t.Fatalf("got %d results, want %d", len(rs), tc.requests)
			}
			var ttftErr, gapErr []float64
			for i, f := range fs {
				if !f.OK() {
					t.Fatalf("request %d failed: %s %s", rs[i].Seq, f.ErrorType, f.Error)
				}
				if f.OutputTokens != 20 || f.InputTokens != 17 || f.TokensEstimated || f.OutputChunks != 10 {
					t.Fatalf("request %d: tokens in %d out %d estimated %v chunks %d, want 17, 20, false, 10",
						rs[i].Seq, f.InputTokens, f.OutputTokens, f.TokensEstimated, f.OutputChunks)
				}
				sent := fake.stamps(rs[i].Seq)
				if len(sent) != 10 || len(f.Gaps) != 9 {
					t.Fatalf("request %d: %d stamps, %d gaps", rs[i].Seq, len(sent), len(f.Gaps))
				}
				checkLoadFree(t, "request "+itoa(int(rs[i].Seq)), f, sent)
				ttft, _, gaps := arrivalError(f, sent)
				ttftErr, gapErr = append(ttftErr, ttft), append(gapErr, gaps...)
				if rs[i].BytesIn == 0 || rs[i].Code != 200 || rs[i].Error != "" {
					t.Fatalf("request %d: vegeta fields code %d bytes %d error %q", rs[i].Seq, rs[i].Code, rs[i].BytesIn, rs[i].Error)
				}
			}
			for name, errs := range map[string][]float64{"TTFT": ttftErr, "gap": gapErr} {
				s := stats.Summarize(errs)
				t.Logf("%s error: p50 %.0fµs p99 %.0fµs max %.0fµs over %d", name, s.P50*1e6, s.P99*1e6, s.Max*1e6, s.Count)
				checkTiming(t, name, s, tc.concurrency == 1 || *timingP99 > 0)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestRequestsCarryWhatTheServerNeeds(t *testing.T) {
	tests := []struct {
		api, endpoint, path string
		want                []string
	}{
		{"ollama", "chat", "/api/chat", []string{`"messages":[`, `"stream":true`, `"num_predict":7`}},
		{"ollama", "generate", "/api/generate", []string{`"prompt":"[run `, `"stream":true`, `"num_predict":7`}},
		{"openai", "chat", "/v1/chat/completions", []string{`"messages":[`, `"include_usage":true`, `"max_tokens":7`}},
		{"openai", "completions", "/v1/completions", []string{`"prompt":"[run `, `"include_usage":true`, `"max_tokens":7`}},
		{"responses", "chat", "/v1/responses", []string{`"input":[{"role":"user","content":"[run `, `"stream":true`, `"max_output_tokens":7`}},
		{"anthropic", "chat", "/v1/messages", []string{`"messages":[{"role":"user","content":"[run `, `"stream":true`, `"max_tokens":7`}},
	}
	for _, tc := range tests {
		t.Run(tc.api+"/"+tc.endpoint, func(t *testing.T) {
			fake := &fakeLLM{api: tc.api, chunks: 2}
			srv := newFakeLLM(t, fake)
			o := testOptions(srv.URL, tc.api)
			o.Endpoint, o.MaxTokens, o.Requests, o.VaryPrompts = tc.endpoint, 7, 2, true
			o.Scenario, o.Headers = "s1", map[string][]string{"Authorization": {"Bearer x"}}
			rs, _ := collect(t, context.Background(), o)
			if len(rs) != 2 || !strings.HasSuffix(rs[0].URL, tc.path) {
				t.Fatalf("got %d results, URL %q; want 2 to %s", len(rs), rs[0].URL, tc.path)
			}
			h0, b0 := fake.request(0)
			_, b1 := fake.request(1)
			for _, w := range tc.want {
				if !strings.Contains(b0, w) {
					t.Errorf("body %s lacks %s", b0, w)
				}
			}
			if b0 == b1 || !strings.Contains(b0, "request 0]") {
				t.Errorf("vary-prompts: bodies not unique: %s / %s", b0, b1)
			}
			if h0.Get("Traceparent") == "" || h0.Get(ScenarioHeader) != "s1" || h0.Get("Authorization") != "Bearer x" {
				t.Errorf("headers: %v", h0)
			}
		})
	}
}

func TestFailuresBecomeErrorRecords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name, api, mode string
		wantType        string
		wantMsg         string
	}{
		{"unreachable", "ollama", "", stream.ErrTransport, "connection refused"},
		{"status 500", "ollama", "status500", "500", "model exploded"},
		{"garbage", "ollama", "garbage", stream.ErrMalformed, "not JSON"},
		{"error in stream", "openai", "instream", stream.ErrInStream, "out of memory"},
		{"error in ndjson", "ollama", "instream", stream.ErrInStream, "out of memory"},
		{"truncated", "openai", "truncated", stream.ErrIncomplete, "final marker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := closedURL
			if tc.name != "unreachable" {
				url = newFakeLLM(t, &fakeLLM{api: tc.api, chunks: 3, mode: tc.mode}).URL
			}
			o := testOptions(url, tc.api)
			o.Requests, o.Concurrency = 4, 2
			rs, fs := collect(t, context.Background(), o)
			if len(rs) != 4 {
				t.Fatalf("got %d records, want 4", len(rs))
			}
			for i, f := range fs {
				if f.ErrorType != tc.wantType || !strings.Contains(f.Error, tc.wantMsg) || rs[i].Error == "" {
					t.Errorf("record %d: type %q error %q vegeta error %q; want %q containing %q",
						i, f.ErrorType, f.Error, rs[i].Error, tc.wantType, tc.wantMsg)
				}
			}
		})
	}
}

func TestPromptsFile(t *testing.T) {
	fake := &fakeLLM{api: "ollama", chunks: 1}
	srv := newFakeLLM(t, fake)
	file := filepath.Join(t.TempDir(), "p.jsonl")
	if err := os.WriteFile(file, []byte("\"first prompt\"\n{\"prompt\":\"second prompt\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions(srv.URL, "ollama")
	o.PromptsFile, o.PromptSize, o.Requests = file, "", 2
	collect(t, context.Background(), o)
	_, b0 := fake.request(0)
	_, b1 := fake.request(1)
	if !strings.Contains(b0, "first prompt") || !strings.Contains(b1, "second prompt") {
		t.Fatalf("bodies %s / %s do not take the file's prompts in turn", b0, b1)
	}
	o.PromptsFile = filepath.Join(t.TempDir(), "missing.jsonl")
	if err := Run(context.Background(), o, func(*vegeta.Result) error { return nil }); err == nil {
		t.Fatal("a missing prompts file was accepted")
	}
}

func TestNoServerCountsAreMarkedEstimated(t *testing.T) {
	srv := newFakeLLM(t, &fakeLLM{api: "openai", chunks: 5, mode: "nousage"})
	o := testOptions(srv.URL, "openai")
	o.Requests = 1
	_, fs := collect(t, context.Background(), o)
	if f := fs[0]; !f.OK() || !f.TokensEstimated || f.OutputTokens != 5 {
		t.Fatalf("figures %+v: want OK, estimated, 5 tokens", f)
	}
}

func TestWarmupIsExcluded(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Options)
		want int
	}{
		{"by count", func(o *Options) { o.WarmupRequests, o.Requests = 3, 5 }, 5},
		{"by time", func(o *Options) { o.Warmup, o.Requests = 50*time.Millisecond, 4 }, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeLLM(t, &fakeLLM{api: "ollama", chunks: 2, interval: time.Millisecond})
			o := testOptions(srv.URL, "ollama")
			tc.set(&o)
			rs, _ := collect(t, context.Background(), o)
			if len(rs) != tc.want {
				t.Fatalf("got %d results, want %d", len(rs), tc.want)
			}
			if tc.name == "by count" && rs[0].Seq < 3 {
				t.Fatalf("first kept seq %d is warm-up", rs[0].Seq)
			}
		})
	}
}

func TestStopAndAbortKeepEveryRecordWhole(t *testing.T) {
	srv := newFakeLLM(t, &fakeLLM{api: "ollama", chunks: 50, interval: 20 * time.Millisecond})
	o := testOptions(srv.URL, "ollama")
	o.Concurrency = 4
	abort := make(chan struct{})
	o.Abort = abort
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(); close(abort) })
	start := time.Now()
	rs, fs := collect(t, ctx, o)
	if time.Since(start) > 900*time.Millisecond {
		t.Fatalf("abort took %s: requests in flight were not cancelled", time.Since(start))
	}
	if len(rs) != 4 {
		t.Fatalf("got %d records, want the 4 in flight", len(rs))
	}
	for _, f := range fs {
		if f.ErrorType != stream.ErrCanceled {
			t.Errorf("aborted request: error type %q (%s), want %q", f.ErrorType, f.Error, stream.ErrCanceled)
		}
	}
}

func TestCallbackErrorStopsTheAttack(t *testing.T) {
	srv := newFakeLLM(t, &fakeLLM{api: "ollama", chunks: 2})
	o := testOptions(srv.URL, "ollama")
	o.Concurrency = 8
	boom := errors.New("disk full")
	var mu sync.Mutex
	calls := 0
	err := Run(context.Background(), o, func(*vegeta.Result) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Run = %v after %d calls, want %v after 1", err, calls, boom)
	}
}

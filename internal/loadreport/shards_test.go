package loadreport

import (
	"net/http"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
)

var shardT0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// shardResult is one successful request of a shard: started at offset by the pod's clock (whose error against
// the server's is skew), answered after e2e, first byte after fb; the server's Date is its true clock, truncated
// to the second as HTTP sends it.
func shardResult(t *testing.T, s loadgen.Shard, skew, offset, fb, e2e time.Duration) vegeta.Result {
	t.Helper()
	start := shardT0.Add(offset)
	f := loadgen.Figures{API: "ollama", Status: 200, Start: start, FirstByte: fb, FirstToken: fb, LastToken: e2e,
		End: e2e, OutputChunks: 2, OutputTokens: 2, InputTokens: 5, Gaps: []time.Duration{e2e - fb}}
	r := vegeta.Result{Attack: "a", Timestamp: start, Latency: e2e, Code: 200, Headers: http.Header{}}
	if err := f.Encode(r.Headers); err != nil {
		t.Fatal(err)
	}
	if err := s.Encode(r.Headers); err != nil {
		t.Fatal(err)
	}
	// The server stamps its Date while answering: at the pod's send time plus half the first-byte time, on its
	// own clock, which is the pod's minus skew.
	server := start.Add(fb / 2).Add(-skew)
	r.Headers.Set("Date", server.UTC().Format(http.TimeFormat))
	return r
}

func collectShards(t *testing.T, by string, results []vegeta.Result) ShardReport {
	t.Helper()
	sc, err := NewShardCollector(ShardOptions{By: by})
	if err != nil {
		t.Fatal(err)
	}
	for i := range results {
		if err := sc.Add(&results[i]); err != nil {
			t.Fatal(err)
		}
	}
	return sc.Report()
}

// pods makes n shards that all started at the agreed instant plus lag[i].
func pods(n int, lag ...time.Duration) []loadgen.Shard {
	var out []loadgen.Shard
	for i := range n {
		s := loadgen.Shard{Index: i, Count: n, Pod: "pod-" + string(rune('a'+i)), Node: "node-" + string(rune('a'+i%2)),
			StartAt: shardT0, Started: shardT0}
		if i < len(lag) {
			s.Started = shardT0.Add(lag[i])
		}
		out = append(out, s)
	}
	return out
}

// Responses at many sub-second phases narrow each pod's clock offset to about the first-byte time, so a skew of
// 300 ms between two pods is found, and bounded, from whole-second Date headers.
func TestShardClockSkewFromDateHeaders(t *testing.T) {
	ps := pods(2)
	skews := []time.Duration{0, 300 * time.Millisecond}
	var rs []vegeta.Result
	for i, p := range ps {
		for k := range 200 {
			// Start times step 37 ms, so Date's second boundary falls at every phase.
			rs = append(rs, shardResult(t, p, skews[i], time.Duration(k)*37*time.Millisecond, 20*time.Millisecond, 50*time.Millisecond))
		}
	}
	r := collectShards(t, "pod", rs)
	if r.ClockSkew == nil {
		t.Fatal("no clock skew measured")
	}
	if r.ClockSkew.Lo > 0.300 || r.ClockSkew.Hi < 0.300 {
		t.Errorf("clock skew bounds [%.3f, %.3f] s do not hold the true 0.300 s", r.ClockSkew.Lo, r.ClockSkew.Hi)
	}
	if w := r.ClockSkew.Hi - r.ClockSkew.Lo; w > 0.1 {
		t.Errorf("clock skew bounds %.3f s wide; 200 responses with 20 ms first bytes should give about 40 ms", w)
	}
	for _, row := range r.Rows {
		if row.ClockOffset == nil {
			t.Fatalf("row %s: no clock offset", row.Key)
		}
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings for a clean run: %q", r.Warnings)
	}
}

func TestShardWarnings(t *testing.T) {
	ps := pods(4, 0, 3*time.Second, 0, 0)
	var rs []vegeta.Result
	for _, i := range []int{0, 1, 3} { // shard 2 wrote nothing
		for k := range 20 {
			rs = append(rs, shardResult(t, ps[i], 0, time.Duration(k)*500*time.Millisecond, 10*time.Millisecond, time.Second))
		}
	}
	// Shard 3 also ran again in a second pod, briefly.
	again := ps[3]
	again.Pod = "pod-d-retry"
	rs = append(rs, shardResult(t, again, 0, 0, 10*time.Millisecond, time.Second))
	r := collectShards(t, "pod", rs)
	want := []string{"shard 2/4: no results", "shard 3/4: results from 2 pods", "pod pod-b (shard 1/4) started 3s after -start-at",
		"pod pod-d-retry (shard 3/4) ended"}
	all := strings.Join(r.Warnings, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("warnings lack %q:\n%s", w, all)
		}
	}
	if r.Count != 4 || len(r.Rows) != 4 {
		t.Errorf("count %d, %d rows; want 4 and 4 (three pods and the retry)", r.Count, len(r.Rows))
	}
}

func TestShardRowsByNodeAddUp(t *testing.T) {
	ps := pods(3)
	var rs []vegeta.Result
	for _, p := range ps {
		for k := range 10 {
			rs = append(rs, shardResult(t, p, 0, time.Duration(k)*100*time.Millisecond, 10*time.Millisecond, 200*time.Millisecond))
		}
	}
	r := collectShards(t, "node", rs)
	if len(r.Rows) != 2 {
		t.Fatalf("%d rows, want 2 nodes", len(r.Rows))
	}
	total := 0
	for _, row := range r.Rows {
		total += row.Figures.Requests
	}
	if total != 30 || r.Rows[0].Figures.Requests != 20 {
		t.Errorf("rows hold %d requests (node-a %d); want 30 (node-a 20: two pods)", total, r.Rows[0].Figures.Requests)
	}
	var b strings.Builder
	for _, f := range []string{"text", "markdown", "csv"} {
		if err := WriteShards(&b, r, f); err != nil {
			t.Errorf("WriteShards %s: %v", f, err)
		}
	}
	if !strings.Contains(b.String(), "node-a") {
		t.Errorf("output names no node:\n%s", b.String())
	}
}

func TestShardOptionsValidate(t *testing.T) {
	if _, err := NewShardCollector(ShardOptions{By: "zone"}); err == nil {
		t.Error("By zone accepted")
	}
	if _, err := NewShardCollector(ShardOptions{By: "pod", LateAfter: -time.Second}); err == nil {
		t.Error("negative LateAfter accepted")
	}
}

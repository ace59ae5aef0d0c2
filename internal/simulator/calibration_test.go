//go:build calibration

package simulator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/stats"
)

// BenchmarkCalibration measures the default profile in real time (TimeScale
// 1) the way the seed's study did, with the load tester's built-in prompts:
// TTFT and decode speed of one stream, and the per-stream decode speed of
// four users on four slots. Run it with `make bench-simulator`.
func BenchmarkCalibration(b *testing.B) {
	prompt := func(size string) string {
		p, ok := loadgen.BuiltinPrompt(size)
		if !ok {
			b.Fatalf("no built-in prompt %q", size)
		}
		return p.Text()
	}
	body := func(text string, n int) string {
		return fmt.Sprintf(`{"model":"qwen2.5:7b-instruct","messages":[{"role":"user","content":%q}],"options":{"num_predict":%d}}`, text, n)
	}
	for range b.N {
		s, url := startServer(b, Config{Parallel: 4})
		ctx := context.Background()
		measure(b, ctx, url, "/api/chat", body("warm up: load the model", 1))

		// One user: a new prompt, then the same prompt again (prefix cache).
		var first, cached []float64
		var speed1 []float64
		for i := range 5 {
			r := measure(b, ctx, url, "/api/chat", body(fmt.Sprintf("%d. %s", i, prompt("small")), 2))
			d, _ := r.m.TTFT()
			first = append(first, ms(d))
			r = measure(b, ctx, url, "/api/chat", body(fmt.Sprintf("%d. %s", i, prompt("small")), 100))
			d, _ = r.m.TTFT()
			cached = append(cached, ms(d))
			speed1 = append(speed1, r.m.DecodeSpeed())
		}
		// Four users on four slots, decoding together.
		var speed4 []float64
		for round := range 2 {
			rs := concurrently(b, 4, url, "/api/chat", func(i int) string {
				return body(fmt.Sprintf("user %d round %d: %s", i, round, prompt("medium")), 150)
			})
			for _, r := range rs {
				speed4 = append(speed4, r.m.DecodeSpeed())
			}
		}
		sf, sc, s1, s4 := stats.Summarize(first), stats.Summarize(cached), stats.Summarize(speed1), stats.Summarize(speed4)
		b.ReportMetric(sc.P50, "ttft-cached-ms")
		b.ReportMetric(sf.P50, "ttft-new-small-ms")
		b.ReportMetric(s1.P50, "tok/s-c1")
		b.ReportMetric(s4.P50, "tok/s-per-stream-p4c4")
		b.Logf("c=1 TTFT, small prompt already cached: p50 %.1f ms (min %.1f, max %.1f)", sc.P50, sc.Min, sc.Max)
		b.Logf("c=1 TTFT, small prompt new to the slot: p50 %.1f ms (min %.1f, max %.1f)", sf.P50, sf.Min, sf.Max)
		b.Logf("c=1 decode: p50 %.1f tok/s (min %.1f, max %.1f)", s1.P50, s1.Min, s1.Max)
		b.Logf("p=4 c=4 decode per stream: p50 %.1f tok/s (min %.1f, max %.1f)", s4.P50, s4.Min, s4.Max)
		for _, size := range loadgen.PromptSizes() {
			full := s.chatTemplate([]message{{Role: "user", Content: prompt(size)}})
			b.Logf("prompt %-6s: %4d prompt tokens, %3d output tokens", size, countTokens(full),
				naturalLength(prompt(size), promptSeed(full)))
		}
		s.Close()
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

package loadgen

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/simulator"
)

// TestEventAPIsAgainstSimulator: -api responses and -api anthropic against
// the simulator with reasoning before every answer: each record has the
// server's exact counts, one output chunk per token, and a thinking time.
// Timing is checked only for order here; TestTimingMatchesSimulator and
// the SDK stage hold it to the ground truth.
func TestEventAPIsAgainstSimulator(t *testing.T) {
	prof := simulator.Profiles["cpu-25m"]
	prof.LoadTime, prof.RequestOverhead, prof.PrefillPerToken, prof.StepBase, prof.StepPerSeq = 0, time.Millisecond, 0, 2*time.Millisecond, 0
	prof.AttentionPerPair, prof.DecodePerContextToken = 0, 0
	sim, err := simulator.New(simulator.Config{CustomProfile: &prof, Parallel: 2, ThinkingTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	for _, api := range []string{"responses", "anthropic"} {
		t.Run(api, func(t *testing.T) {
			o := testOptions(srv.URL, api)
			o.Model, o.MaxTokens, o.Concurrency, o.Requests = prof.Model, 8, 2, 4
			_, fs := collect(t, context.Background(), o)
			if len(fs) != 4 {
				t.Fatalf("%d records, want 4", len(fs))
			}
			for _, f := range fs {
				if !f.OK() || f.API != api {
					t.Fatalf("record %+v", f)
				}
				if f.OutputTokens != 8 || f.OutputChunks != 8 || f.TokensEstimated || f.InputTokens == 0 {
					t.Errorf("tokens in %d out %d in %d chunks (estimated %v), want 8 in 8", f.InputTokens, f.OutputTokens, f.OutputChunks, f.TokensEstimated)
				}
				th, ok := f.ThinkingTime()
				// One read may complete the last reasoning chunk and the first of the
				// answer (a loaded machine): then the thinking time is 0, never less.
				if !ok || th < 0 || f.FirstContent < f.FirstToken || f.FirstContent > f.LastToken {
					t.Errorf("thinking time %v (%v): first token %v, first content %v, last %v", th, ok, f.FirstToken, f.FirstContent, f.LastToken)
				}
			}
		})
	}
}

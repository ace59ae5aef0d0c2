package matrix

import (
	"context"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/loadreport"
)

// LoadGenerator drives each scenario with the load generator
// (internal/loadgen) at url, usually the proxy in front of the engine:
//   - the warm-up and the measured window are one continuous load: the
//     window opens when the warm-up ends, without draining, so it starts
//     in the steady state rather than with every user arriving at once;
//   - warm-up requests carry the scenario name + "/warmup", so the proxy's
//     metrics keep them apart;
//   - every request asks for a greedy, seeded answer (temperature 0, seed
//     loadgen.GreedySeed), so each setting is asked for the same work;
//   - requests started in the warm-up are handed on marked Warmup: they
//     count in the window's throughput when they end inside it, and in no
//     other figure;
//   - a closed loop runs Concurrency users; an open loop Rate requests per
//     second with Poisson arrivals and no cap, so no arrival waits for a
//     free user (the records say how late any was sent).
func LoadGenerator(url string, s Settings, timeout time.Duration, tp trace.TracerProvider) LoadFunc {
	return func(ctx context.Context, sc Scenario, onWindow func(Window), onRequest func(Request)) error {
		o := loadgen.DefaultOptions()
		o.URL, o.API, o.Model, o.MaxTokens = url, s.API, s.Model, s.MaxTokens
		o.PromptSize, o.VaryPrompts, o.Concurrency, o.Greedy = sc.PromptSize, s.VaryPrompts, sc.Concurrency, true
		if sc.Rate > 0 {
			o.Rate, o.Arrival, o.Concurrency = sc.Rate, loadgen.ArrivalPoisson, 0
		}
		o.Timeout, o.Abort, o.TracerProvider = timeout, ctx.Done(), tp
		o.Name, o.Scenario = sc.Name(), sc.Name()
		o.Warmup, o.Duration = s.Warmup.D(), s.Duration.D()
		o.OnWindow = func(start, end time.Time) { onWindow(Window{Start: start, End: end}) }
		// Requests started in the warm-up that end inside the window are
		// the window's throughput too.
		o.OnWarmupResult = func(r *vegeta.Result) {
			if fig, err := loadgen.Decode(r); err == nil {
				q := loadreport.RecordOf(fig)
				q.Warmup = true
				onRequest(q)
			}
		}
		return loadgen.Run(ctx, o, func(r *vegeta.Result) error {
			fig, err := loadgen.Decode(r)
			if err != nil {
				return nil // a result without figures was never measured
			}
			onRequest(loadreport.RecordOf(fig))
			return nil
		})
	}
}

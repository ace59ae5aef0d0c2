//go:build ollama

package ollamatest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/gguf"
	"github.com/tokentrace/tokentrace/internal/ollamatest"
	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/stream"
)

// schedModel is the model for the scheduling checks: 25M parameters (the
// shape of the simulator's cpu-25m profile), so a generation takes long
// enough on two cores for queueing to show clearly.
func schedModel() gguf.Config {
	c := gguf.DefaultConfig()
	c.Name = "tokentrace-25m"
	c.Shape = gguf.Shape{Width: 512, Blocks: 8, Heads: 8, KVHeads: 2, FeedForward: 1536, Context: 4096, Vocab: 1024}
	return c
}

const (
	schedUsers  = 4  // concurrent requests
	schedTokens = 32 // num_predict of each
)

// distinctPrompt differs from the others from its first word, so no prompt
// shares a cached prefix with another beyond the template's "user: ".
func distinctPrompt(i, words int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "w%d", i)
	for j := 0; j < words; j++ {
		fmt.Fprintf(&b, " the sky is blue %d", (i*7919+j)%1000)
	}
	return b.String()
}

// burst sends one chat request per prompt at the same moment and returns
// the measurements sorted by first token.
func burst(ctx context.Context, t *testing.T, base, model string, prompts []string) []*stream.Measurement {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ms    []*stream.Measurement
		errs  []error
		start = make(chan struct{})
	)
	client := &http.Client{}
	for _, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := ollamatest.Post(ctx, client, base, "/api/chat", chatBody(model, p, schedTokens, true))
			mu.Lock()
			defer mu.Unlock()
			if err == nil && !res.Measurement.OK() {
				err = fmt.Errorf("%s: %s", res.Measurement.ErrorType, res.Measurement.Error)
			}
			if err != nil {
				errs = append(errs, err)
				return
			}
			ms = append(ms, res.Measurement)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].FirstToken.Before(ms[j].FirstToken) })
	return ms
}

func describe(ms []*stream.Measurement) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("TTFT %.2fs (gen %.2fs)", ttft(m).Seconds(), m.LastToken.Sub(m.FirstToken).Seconds()))
	}
	return strings.Join(parts, ", ")
}

// checkQueued: with one slot each request generates only after the one
// before it finished, so its TTFT grows by at least that generation time.
func checkQueued(t *testing.T, ms []*stream.Measurement) {
	t.Helper()
	for k := 1; k < len(ms); k++ {
		if !ms[k].FirstToken.After(ms[k-1].LastToken) {
			t.Errorf("request %d started generating at %v, before request %d finished (%v): not queued; %s",
				k, ms[k].FirstToken.Sub(ms[0].Start), k-1, ms[k-1].LastToken.Sub(ms[0].Start), describe(ms))
		}
	}
}

// checkConcurrent: with a slot each, every request has its first token
// before any request has its last: they all generate at once.
func checkConcurrent(t *testing.T, ms []*stream.Measurement) {
	t.Helper()
	lastFirst := ms[len(ms)-1].FirstToken
	for _, m := range ms {
		if !lastFirst.Before(m.LastToken) {
			t.Errorf("a request finished before the last one started generating: not concurrent; %s", describe(ms))
			return
		}
	}
}

// checkPrefixCache: sent again, a prompt reaches its first token sooner
// than a new prompt of the same length.
func checkPrefixCache(ctx context.Context, t *testing.T, base, model string) {
	t.Helper()
	client := &http.Client{}
	first := distinctPrompt(100, 12)
	other := distinctPrompt(200, 12)
	var ttfts []time.Duration
	for _, p := range []string{first, first, other} {
		res, err := ollamatest.Post(ctx, client, base, "/api/chat", chatBody(model, p, 4, true))
		if err != nil || !res.Measurement.OK() {
			t.Fatalf("chat: %v %+v", err, res)
		}
		ttfts = append(ttfts, ttft(res.Measurement))
	}
	t.Logf("prefix cache: new %v, same again %v, another new %v", ttfts[0], ttfts[1], ttfts[2])
	if ttfts[1] >= ttfts[0] || ttfts[1] >= ttfts[2] {
		t.Errorf("the repeated prompt was not faster to first token: new %v, repeated %v, other new %v", ttfts[0], ttfts[1], ttfts[2])
	}
}

func prompts(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = distinctPrompt(i, 1)
	}
	return ps
}

// backend is a server to run the scheduling checks against.
type backend struct {
	name  string
	start func(t *testing.T, parallel int) (base, model string, runnerParallel func(context.Context) (int, error))
}

func realOllama(model string) backend {
	return backend{"real ollama", func(t *testing.T, parallel int) (string, string, func(context.Context) (int, error)) {
		srv := ollamatest.Start(t, ollamatest.Options{Parallel: parallel, Model: model, Name: "tokentrace-25m"})
		return srv.URL(), srv.Model, func(ctx context.Context) (int, error) {
			r, err := srv.WaitRunner(ctx, 1)
			return r.Parallel, err
		}
	}}
}

// simulated is the simulator with the profile calibrated on this model.
var simulated = backend{"simulator", func(t *testing.T, parallel int) (string, string, func(context.Context) (int, error)) {
	sim, err := simulator.New(simulator.Config{Profile: "cpu-25m", Parallel: parallel})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(func() {
		hs.Close()
		_ = sim.Close()
	})
	return hs.URL, sim.Profile().Model, func(context.Context) (int, error) { return sim.Config().Parallel, nil }
}}

// TestSchedulingSideBySide runs the same bursts against the real Ollama and
// the simulator: one slot queues, four slots start together, a repeated
// prompt is faster to first token.
func TestSchedulingSideBySide(t *testing.T) {
	model := ollamatest.WriteModel(t, schedModel())
	for _, b := range []backend{realOllama(model), simulated} {
		for _, parallel := range []int{1, schedUsers} {
			t.Run(fmt.Sprintf("%s parallel %d", b.name, parallel), func(t *testing.T) {
				base, name, runnerParallel := b.start(t, parallel)
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
				defer cancel()
				// Load the model first so no request pays the load.
				burst(ctx, t, base, name, []string{"warm up"})
				got, err := runnerParallel(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got != parallel {
					t.Fatalf("runner parallel %d, want %d", got, parallel)
				}
				ms := burst(ctx, t, base, name, prompts(schedUsers))
				t.Logf("%s, parallel %d, %d users, %d tokens each: %s", b.name, parallel, schedUsers, schedTokens, describe(ms))
				if parallel == 1 {
					checkQueued(t, ms)
					checkPrefixCache(ctx, t, base, name)
				} else {
					checkConcurrent(t, ms)
				}
			})
		}
	}
}

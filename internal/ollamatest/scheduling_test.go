//go:build ollama

package ollamatest_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/gguf"
	"github.com/tokentrace/tokentrace/internal/ollamatest"
	"github.com/tokentrace/tokentrace/internal/stream"
)

// schedModel is the model for the scheduling checks: about 28M parameters, so
// a generation takes long enough on two cores for queueing to show clearly.
func schedModel() gguf.Config {
	c := gguf.DefaultConfig()
	c.Name = "tokentrace-28m"
	c.Shape = gguf.Shape{Width: 512, Blocks: 8, Heads: 8, KVHeads: 2, FeedForward: 1536, Context: 4096, Vocab: 4096}
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
	first := distinctPrompt(100, 30)
	other := distinctPrompt(200, 30)
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
		ps[i] = distinctPrompt(i, 4)
	}
	return ps
}

func TestRealOllamaScheduling(t *testing.T) {
	model := ollamatest.WriteModel(t, schedModel())
	for _, parallel := range []int{1, schedUsers} {
		t.Run(fmt.Sprintf("parallel %d", parallel), func(t *testing.T) {
			srv := ollamatest.Start(t, ollamatest.Options{Parallel: parallel, Model: model})
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			// Load the model first so no request pays the load.
			burst(ctx, t, srv.URL(), srv.Model, []string{"warm up"})
			r, err := srv.WaitRunner(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.Parallel != parallel {
				t.Fatalf("runner --parallel %d, want %d; cmd %s", r.Parallel, parallel, r.Cmd)
			}
			ms := burst(ctx, t, srv.URL(), srv.Model, prompts(schedUsers))
			t.Logf("real ollama, OLLAMA_NUM_PARALLEL=%d, %d users, %d tokens each: %s", parallel, schedUsers, schedTokens, describe(ms))
			if parallel == 1 {
				checkQueued(t, ms)
				checkPrefixCache(ctx, t, srv.URL(), srv.Model)
			} else {
				checkConcurrent(t, ms)
			}
		})
	}
}

package simulator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/stream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer runs a simulator behind an httptest server; both stop at cleanup.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts.URL
}

// result is one response as a client measured it.
type result struct {
	m      *stream.Measurement
	id     string
	status int
	body   []byte
}

// measure posts body and taps the response through stream.Meter, as the
// load tester and the proxy do.
func measure(t testing.TB, ctx context.Context, url, path, body string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req, stream.NewMeter(stream.Config{API: stream.APIOf(path), Start: time.Now()}))
}

// measureWith is measure with the caller's Meter.
func measureWith(t testing.TB, url, path, body string, mt *stream.Meter) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	return do(t, req, mt)
}

func do(t testing.TB, req *http.Request, mt *stream.Meter) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return result{m: mt.Finish(err)}
	}
	defer resp.Body.Close()
	mt.Response(resp.StatusCode, resp.Header.Get("Content-Type"))
	var buf bytes.Buffer
	_, err = io.Copy(io.MultiWriter(mt, &buf), resp.Body)
	return result{m: mt.Finish(err), id: resp.Header.Get(RequestIDHeader), status: resp.StatusCode, body: buf.Bytes()}
}

// concurrently runs n measurements at once and returns them in start order.
func concurrently(t testing.TB, n int, url, path string, body func(i int) string) []result {
	t.Helper()
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = measure(t, context.Background(), url, path, body(i))
		}()
	}
	wg.Wait()
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// stepProfile is a profile with only per-sequence step costs: one token
// takes step, a prompt token prefill.
func stepProfile(step, prefill time.Duration) *Profile {
	p := Profiles["tiny"]
	p.StepBase, p.StepPerSeq, p.PrefillPerToken, p.RequestOverhead, p.LoadTime = 0, step, prefill, 0, 0
	return &p
}

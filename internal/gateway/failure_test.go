package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// closedURL is an upstream address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func checkErrorShape(t *testing.T, path string, body []byte, wantCode string) {
	t.Helper()
	if strings.HasPrefix(path, "/v1/") {
		var e struct {
			Error struct{ Message, Type, Code string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" || e.Error.Code != wantCode {
			t.Errorf("OpenAI error body %q (code want %q): %v", body, wantCode, err)
		}
		return
	}
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("Ollama error body %q: %v", body, err)
	}
}

func TestUpstreamFailuresAnswerInTheAPIsShape(t *testing.T) {
	hang := make(chan struct{})
	slow := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets net/http notice the proxy hanging up
		select {                           // never answers in time
		case <-hang:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(hang) }) // runs before the upstream's Close
	for _, tc := range []struct {
		name, upstream, path string
		status               int
		code, errType        string
	}{
		{"refused ollama", closedURL(t), "/api/chat", 502, "", "transport"},
		{"refused openai", closedURL(t), "/v1/chat/completions", 502, "upstream_unreachable", "transport"},
		{"timeout ollama", slow.URL, "/api/generate", 504, "", "timeout"},
		{"timeout openai", slow.URL, "/v1/completions", 504, "upstream_timeout", "timeout"},
	} {
		ep, _ := stream.EndpointOf(tc.path)
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t, Config{UpstreamTimeout: 200 * time.Millisecond}, tc.upstream)
			resp, body := rg.do(t, "POST", tc.path, `{"model":"m1","stream":true}`, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			checkErrorShape(t, tc.path, body, tc.code)
			s := waitSpan(t, rg, ep.Operation)
			if a := attrs(s); a[semconv.ErrorTypeKey].AsString() != tc.errType || s.Status().Code != codes.Error {
				t.Errorf("span error.type %q status %v, want %q", a[semconv.ErrorTypeKey].AsString(), s.Status(), tc.errType)
			}
		})
	}
}

func TestBodyOverLimitIs413(t *testing.T) {
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) { t.Error("an over-limit body reached the upstream") })
	rg := newRig(t, Config{MaxBodyBytes: 64}, srv.URL)
	big := `{"model":"m1","prompt":"` + strings.Repeat("x", 100) + `"}`
	for _, path := range []string{"/api/generate", "/v1/completions"} {
		resp, body := rg.do(t, "POST", path, big, nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		checkErrorShape(t, path, body, "request_too_large")
	}
	for _, s := range rg.spans.Ended() {
		if attrs(s)[semconv.ErrorTypeKey].AsString() != "413" {
			t.Errorf("span %s error.type %v", s.Name(), attrs(s)[semconv.ErrorTypeKey].Emit())
		}
	}
}

// rawUpstream answers with hand-written HTTP, for responses net/http will not write.
func rawUpstream(t *testing.T, response string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, response)
			}
			c.Close()
		}
	}()
	return "http://" + l.Addr().String()
}

func TestBrokenStreamsPassThroughAndAreErrors(t *testing.T) {
	line := `{"model":"m1","message":{"content":"a"},"done":false}` + "\n"
	for _, tc := range []struct {
		name, response, wantBody, errType string
		clientErr                         bool
	}{
		{"truncated", "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n", len(line), line), line, "transport", true},
		{"no final chunk", "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(line), line), line, "incomplete_stream", false},
		{"malformed", "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: 12\r\n\r\nnot json {\n\n", "not json {\n\n", "malformed_stream", false},
		{"error in stream", "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: 25\r\n\r\n" + `{"error":"out of memory"}`, `{"error":"out of memory"}`, "stream_error", false},
		{"upstream 500", "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n" + `{"error":"boom"}`, `{"error":"boom"}`, "500", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t, Config{}, rawUpstream(t, tc.response))
			resp, err := rg.client.Post(rg.url+"/api/chat", "application/json", strings.NewReader(`{"model":"m1"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tc.wantBody || (err != nil) != tc.clientErr {
				t.Errorf("client got %q, err %v; want %q, error %v", body, err, tc.wantBody, tc.clientErr)
			}
			s := waitSpan(t, rg, "chat")
			if a := attrs(s); a[semconv.ErrorTypeKey].AsString() != tc.errType {
				t.Errorf("error.type %q, want %q", a[semconv.ErrorTypeKey].AsString(), tc.errType)
			}
			if _, ok := rg.metrics(t)["gen_ai.client.operation.time_to_first_chunk"]; ok {
				t.Error("a failed request counted in TTFT")
			}
		})
	}
}

// waitSpan waits (bounded) for the server span: when the client saw the
// stream cut, the proxy may still be ending it.
func waitSpan(t *testing.T, rg *rig, prefix string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range rg.spans.Ended() {
			if strings.HasPrefix(s.Name(), prefix) {
				return s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no span %q ended", prefix)
	return nil
}

func TestClientCancelReachesUpstreamAtOnce(t *testing.T) {
	upstreamDone := make(chan time.Time, 1)
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		chunked(w, ndjson, ollamaStream(1)[:1], 0, 0)
		<-r.Context().Done() // keeps streaming for ever, as far as the client knows
		upstreamDone <- time.Now()
	})
	rg := newRig(t, Config{}, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", rg.url+"/api/chat", strings.NewReader(`{"model":"m1"}`))
	resp, err := rg.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadBytes('\n'); err != nil {
		t.Fatal(err)
	}
	canceled := time.Now()
	cancel()
	resp.Body.Close()
	select {
	case at := <-upstreamDone:
		if d := at.Sub(canceled); d > 100*time.Millisecond {
			t.Errorf("upstream saw the cancel after %v, want within 100ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was never canceled")
	}
	s := waitSpan(t, rg, "chat")
	if a := attrs(s); a[semconv.ErrorTypeKey].AsString() != "canceled" || s.Status().Code != codes.Error {
		t.Errorf("span error.type %q status %v, want canceled", a[semconv.ErrorTypeKey].AsString(), s.Status())
	}
	if tokenUsage(t, rg.metrics(t))["output estimated"] != 1 {
		t.Error("the tokens streamed before the cancel are not counted")
	}
}

func TestShutdownDrainsThenCancels(t *testing.T) {
	release := make(chan struct{})
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		chunked(w, ndjson, ollamaStream(1)[:1], 0, 0)
		select {
		case <-release:
			_, _ = io.WriteString(w, ollamaStream(1)[1])
		case <-r.Context().Done():
		}
	})
	start := func(rg *rig) chan error {
		errc := make(chan error, 1)
		resp, err := rg.client.Post(rg.url+"/api/chat", "application/json", strings.NewReader(`{"model":"m1"}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(resp.Body).ReadBytes('\n'); err != nil { // in flight now
			t.Fatal(err)
		}
		go func() { _, err := io.ReadAll(resp.Body); resp.Body.Close(); errc <- err }()
		return errc
	}

	t.Run("drains", func(t *testing.T) {
		rg := newRig(t, Config{}, srv.URL)
		errc := start(rg)
		shut := make(chan error, 1)
		go func() { shut <- rg.gw.Shutdown(context.Background()) }()
		select {
		case err := <-shut:
			t.Fatalf("shutdown returned (%v) with a stream in flight", err)
		case <-time.After(100 * time.Millisecond):
		}
		if resp, _ := rg.do(t, "GET", "/api/tags", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("a new request while draining got %d", resp.StatusCode)
		}
		release <- struct{}{}
		if err := <-errc; err != nil {
			t.Errorf("drained stream ended with %v", err)
		}
		if err := <-shut; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		rg := newRig(t, Config{}, srv.URL)
		errc := start(rg)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := rg.gw.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown past its deadline returned %v", err)
		}
		if rg.gw.Active() != 0 {
			t.Errorf("%d requests still active after a bounded shutdown", rg.gw.Active())
		}
		if err := <-errc; err == nil {
			t.Error("the aborted stream ended cleanly for the client")
		}
	})
}

package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// connCounter serves h and counts the connections it was dialled on;
// configure may set its server up before it starts.
type connCounter struct {
	*httptest.Server
	mu     sync.Mutex
	opened int
	closed chan struct{} // one value per connection closed
}

func newConnCounter(t *testing.T, h http.Handler, configure ...func(*http.Server)) *connCounter {
	t.Helper()
	cc := &connCounter{closed: make(chan struct{}, 100)}
	cc.Server = httptest.NewUnstartedServer(h)
	cc.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cc.mu.Lock()
			cc.opened++
			cc.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			cc.closed <- struct{}{}
		}
	}
	for _, f := range configure {
		f(cc.Config)
	}
	cc.Start()
	t.Cleanup(cc.Close)
	return cc
}

func (cc *connCounter) conns() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.opened
}

// fetch sends req with do (a client's Do, a transport's RoundTrip) and
// reads the response's body to the end.
func fetch(t *testing.T, do func(*http.Request) (*http.Response, error), req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func testStreamTransport(t *testing.T) *streamTransport {
	t.Helper()
	st := newTransport(Config{UpstreamTimeout: 10 * time.Second})
	t.Cleanup(st.CloseIdleConnections)
	return st
}

func postWithBody(t *testing.T, ctx context.Context, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestStreamTransportKeepsConnectionsForTheNextRequest(t *testing.T) {
	up := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		_, _ = w.Write([]byte("got " + string(b)))
		w.(http.Flusher).Flush() // chunked, so the trailer follows the body
		w.Header().Set("X-Sum", "ok")
	}))
	st := testStreamTransport(t)
	for i := range 5 {
		resp, err := st.RoundTrip(postWithBody(t, context.Background(), up.URL, "prompt"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || string(b) != "got prompt" || resp.Trailer.Get("X-Sum") != "ok" {
			t.Fatalf("request %d: body %q (%v), trailer %q", i, b, err, resp.Trailer.Get("X-Sum"))
		}
	}
	// A HEAD answer has no body to read: its connection is kept at once.
	head, _ := http.NewRequest(http.MethodHead, up.URL, nil)
	resp, err := st.RoundTrip(head)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	fetch(t, st.RoundTrip, postWithBody(t, context.Background(), up.URL, "again"))
	if n := up.conns(); n != 1 {
		t.Errorf("7 requests one after another took %d connections, want 1", n)
	}
}

func TestStreamTransportClosesABodyNotReadToItsEnd(t *testing.T) {
	cut := make(chan struct{})
	up := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then net/http notices the connection close
		if r.URL.Path == "/short" {
			_, _ = io.WriteString(w, "short")
			return
		}
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the stream goes on until the proxy lets go
		close(cut)
	}))
	st := testStreamTransport(t)
	resp, err := st.RoundTrip(postWithBody(t, context.Background(), up.URL+"/stream", "{}"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := resp.Body.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "data: first") {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	_ = resp.Body.Close() // returns at once: the rest of the stream is not read through
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream did not see its connection closed")
	}
	if _, err := resp.Body.Read(buf); !errors.Is(err, errReadOnClosedBody) {
		t.Errorf("read after close: %v, want %v", err, errReadOnClosedBody)
	}
	fetch(t, st.RoundTrip, postWithBody(t, context.Background(), up.URL+"/short", "{}"))
	if n := up.conns(); n != 2 {
		t.Errorf("a cut stream and the next request took %d connections, want 2", n)
	}
}

func TestStreamTransportDropsIdleConnectionsTheUpstreamClosed(t *testing.T) {
	up := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
	st := testStreamTransport(t)
	for i := range 2 {
		// A POST whose connection was closed while idle is not sent again
		// by the transport: it must not be given a closed one.
		fetch(t, st.RoundTrip, postWithBody(t, context.Background(), up.URL, "{}"))
		if i == 0 {
			select {
			case <-up.closed: // the upstream closed the idle connection
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream kept its idle connection")
			}
		}
	}
	if n := up.conns(); n != 2 {
		t.Errorf("took %d connections, want 2", n)
	}
}

// closingUpstream answers each connection's first request with "ok", keeps
// the connection, and closes it on the second request without answering:
// an upstream that closed an idle connection just as it was reused.
func closingUpstream(t *testing.T) (url string, conns func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				_, _ = http.ReadRequest(br) // then closes
			}()
		}
	}()
	return "http://" + ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func TestStreamTransportSendsAgainOnlyWhatTransportWould(t *testing.T) {
	for _, tc := range []struct {
		name    string
		req     func(url string) *http.Request
		wantErr error
	}{
		{"GET is sent again", func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, url, nil)
			return r
		}, nil},
		{"POST with an idempotency key is sent again", func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
			r.Header.Set("Idempotency-Key", "k1")
			return r
		}, nil},
		{"POST is not", func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
			return r
		}, errServerClosedIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, conns := closingUpstream(t)
			st := testStreamTransport(t)
			first, _ := http.NewRequest(http.MethodGet, url, nil)
			fetch(t, st.RoundTrip, first)
			resp, err := st.RoundTrip(tc.req(url))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("second request: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(b) != "ok" || conns() != 2 {
				t.Errorf("sent again: body %q over %d connections, want \"ok\" over 2", b, conns())
			}
		})
	}
}

func TestStreamTransportEndsWithTheRequestsContext(t *testing.T) {
	gotRequest := make(chan struct{}, 1)
	up := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then net/http notices the connection close
		if r.URL.Path == "/body" {
			_, _ = io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
		}
		gotRequest <- struct{}{}
		<-r.Context().Done()
	}))
	st := testStreamTransport(t)

	t.Run("awaiting the headers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-gotRequest; cancel() }()
		_, err := st.RoundTrip(postWithBody(t, ctx, up.URL+"/headers", "{}"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RoundTrip: %v, want %v", err, context.Canceled)
		}
	})
	t.Run("reading the body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := st.RoundTrip(postWithBody(t, ctx, up.URL+"/body", "{}"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		<-gotRequest
		buf := make([]byte, 64)
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v, want %v", err, context.Canceled)
		}
	})
}

func TestStreamTransportTimesOutAwaitingHeaders(t *testing.T) {
	release := make(chan struct{})
	up := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer close(release)
	st := newTransport(Config{UpstreamTimeout: 50 * time.Millisecond})
	defer st.CloseIdleConnections()
	_, err := st.RoundTrip(postWithBody(t, context.Background(), up.URL, "{}"))
	if !errors.Is(err, errHeaderTimeout) || stream.ClassifyError(err) != stream.ErrTimeout {
		t.Errorf("RoundTrip: %v (classified %s), want %v, a timeout", err, stream.ClassifyError(err), errHeaderTimeout)
	}
}

func TestStreamTransportPassesInformationalResponses(t *testing.T) {
	up := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "final")
	}))
	st := testStreamTransport(t)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, http.StatusText(code)+": "+h.Get("Link"))
		return nil
	}}
	resp, err := st.RoundTrip(postWithBody(t, httptrace.WithClientTrace(context.Background(), trace), up.URL, "{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != "final" || len(got) != 1 || got[0] != "Early Hints: </style.css>; rel=preload" {
		t.Errorf("body %q, 1xx seen %q", b, got)
	}
}

func TestStreamTransportLeavesToNetHTTPWhatItDoesNotTake(t *testing.T) {
	st := testStreamTransport(t)
	for _, tc := range []struct {
		name  string
		req   func() *http.Request
		takes bool
	}{
		{"plain POST", func() *http.Request { return postWithBody(t, context.Background(), "http://u/v1", "{}") }, true},
		{"GET", func() *http.Request { r, _ := http.NewRequest(http.MethodGet, "http://u/", nil); return r }, true},
		{"TLS", func() *http.Request { return postWithBody(t, context.Background(), "https://u/v1", "{}") }, false},
		{"upgrade", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://u/ws", nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			return r
		}, false},
		{"expects 100 Continue", func() *http.Request {
			r := postWithBody(t, context.Background(), "http://u/v1", "{}")
			r.Header.Set("Expect", "100-continue")
			return r
		}, false},
		{"a body of unknown length that cannot be sent again", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://u/v1", io.NopCloser(strings.NewReader("{}")))
			return r
		}, false},
		{"a body of known length", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://u/v1", io.NopCloser(strings.NewReader("{}")))
			r.ContentLength = 2
			return r
		}, true},
	} {
		if got := st.takes(tc.req()); got != tc.takes {
			t.Errorf("%s: takes %v, want %v", tc.name, got, tc.takes)
		}
	}
	// What it does not take, net/http's transport sends.
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	defer up.Close()
	st.next.TLSClientConfig = up.Client().Transport.(*http.Transport).TLSClientConfig
	resp, err := st.RoundTrip(postWithBody(t, context.Background(), up.URL, "{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.TLS == nil || !bytes.HasPrefix(b, []byte("HTTP/1.1")) {
		t.Errorf("TLS upstream: %q, TLS state %v", b, resp.TLS != nil)
	}
}

func TestStreamTransportRefusesWhatTransportRefuses(t *testing.T) {
	st := testStreamTransport(t)
	req := postWithBody(t, context.Background(), "http://127.0.0.1:1/", "{}")
	req.Header["Bad\nName"] = []string{"x"}
	body := &closeNoted{Reader: strings.NewReader("{}")}
	req.Body = body
	if _, err := st.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid header field name") {
		t.Errorf("RoundTrip: %v, want an invalid header field name", err)
	}
	if !body.closed {
		t.Error("the refused request's body was not closed")
	}
}

type closeNoted struct {
	io.Reader
	closed bool
}

func (c *closeNoted) Close() error { c.closed = true; return nil }

func TestStreamTransportKeepsNothingAfterCloseIdleConnections(t *testing.T) {
	up := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	st := testStreamTransport(t)
	resp, err := st.RoundTrip(postWithBody(t, context.Background(), up.URL, "{}"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	st.CloseIdleConnections() // as a shutdown does, with this request still open
	_ = resp.Body.Close()
	select {
	case <-up.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection of a request ended after CloseIdleConnections was kept")
	}
}

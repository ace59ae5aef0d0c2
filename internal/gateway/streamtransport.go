package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// streamTransport sends requests to plain-HTTP upstreams over HTTP/1.1
// from the goroutine that serves them, and keeps the connections for the
// next request. net/http's Transport gives each connection a goroutine that
// writes and one that reads, and hands every request to both and back:
// three goroutine wake-ups per request, and at 1,000 streams 2,000
// goroutines kept. Here the serving goroutine writes the request, reads the
// response's headers and, as with Transport, reads the body.
//
// Transport notices an idle connection the upstream has closed because its
// reading goroutine sees the close; here a connection taken from the idle
// ones is first peeked at without blocking, and one found closed or with
// bytes nobody asked for is dropped.
//
// What it does not take goes to next, unchanged: TLS upstreams (and so
// HTTP/2), protocol upgrades, requests that expect 100 Continue, and bodies
// of unknown length that cannot be sent again (an upstream may answer those
// while they are still being sent, which Transport handles by writing and
// reading at once).
type streamTransport struct {
	next          *http.Transport
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration // 0: none
	idleTimeout   time.Duration
	maxIdle       int // idle connections kept per upstream

	mu     sync.Mutex
	idle   map[string][]*upstreamConn // by host:port, the most recently used last
	reaper *time.Timer                // closes connections idle too long; nil when none are idle
	// closeIdle, set by CloseIdleConnections until the next dial, closes
	// connections given back meanwhile (as Transport: a shutdown's
	// in-flight requests leave none behind).
	closeIdle bool
}

// upstreamConn is a connection to an upstream with its read buffer.
type upstreamConn struct {
	net.Conn
	addr      string
	br        *bufio.Reader
	raw       syscall.RawConn // nil when the connection is not a socket of this process
	idleSince time.Time
	written   int64 // bytes of the request under way written to the connection
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written += int64(n)
	return n, err
}

var requestWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

// errHeaderTimeout is Transport's own, so it reads the same in logs and
// classifies as a timeout.
var errHeaderTimeout error = headerTimeoutError{}

type headerTimeoutError struct{}

func (headerTimeoutError) Error() string   { return "net/http: timeout awaiting response headers" }
func (headerTimeoutError) Timeout() bool   { return true }
func (headerTimeoutError) Temporary() bool { return true }

func (t *streamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.takes(req) {
		return t.next.RoundTrip(req)
	}
	if err := validRequest(req); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for {
		c, reused, err := t.conn(req.Context(), addr)
		if err != nil {
			closeRequestBody(req)
			return nil, err
		}
		resp, err := t.exchange(c, req, reused)
		var stale staleConnError
		if !errors.As(err, &stale) {
			return resp, err
		}
		if req.Context().Err() != nil || !stale.retryable(req) {
			return nil, stale.err
		}
		// The upstream had closed the connection before it saw the request:
		// as Transport, send it again on another.
		if req, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

// takes reports whether req is sent here rather than by next.
func (t *streamTransport) takes(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.Method == http.MethodConnect {
		return false
	}
	if _, ok := req.Header["Expect"]; ok {
		return false
	}
	if httpguts.HeaderValuesContainsToken(req.Header["Connection"], "Upgrade") {
		return false
	}
	unknownLength := req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0
	return !unknownLength || req.GetBody != nil
}

// validRequest refuses what Transport refuses before sending.
func validRequest(req *http.Request) error {
	if req.URL.Host == "" {
		return errors.New("http: no Host in request URL")
	}
	if req.Method != "" && !validMethod(req.Method) {
		return fmt.Errorf("net/http: invalid method %q", req.Method)
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

func validMethod(m string) bool {
	for _, r := range m {
		if !httpguts.IsTokenRune(r) {
			return false
		}
	}
	return m != ""
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// staleConnError says a reused connection failed before a byte of the
// response came back: the upstream may have closed it while it was idle.
type staleConnError struct {
	err          error
	wroteNothing bool // not a byte of the request reached the socket
}

func (e staleConnError) Error() string { return e.err.Error() }
func (e staleConnError) Unwrap() error { return e.err }

// retryable follows Transport: a request not written at all is sent again
// if its body can be; one written is sent again only if it is idempotent.
func (e staleConnError) retryable(req *http.Request) bool {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return false
	}
	if e.wroteNothing {
		return true
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// exchange writes req on c and reads the response's headers; its error is
// a staleConnError when c was reused and may have been closed by the
// upstream while idle.
func (t *streamTransport) exchange(c *upstreamConn, req *http.Request, reused bool) (*http.Response, error) {
	ctx := req.Context()
	// A request given up on closes its connection, which ends a write or
	// read under way; the connection is not used again.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	fail := func(err error) error {
		stop()
		_ = c.Close()
		switch {
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return errHeaderTimeout
		}
		return err
	}

	bw := requestWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	c.written = 0
	werr := req.Write(bw) // closes the request's body
	if werr == nil {
		werr = bw.Flush()
	}
	bw.Reset(nil)
	requestWriters.Put(bw)
	if t.headerTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(t.headerTimeout))
	}
	if werr != nil {
		if reused && c.written == 0 {
			return nil, staleConnError{err: fail(werr), wroteNothing: true}
		}
		// An upstream may answer and close before it has read the whole
		// body: its answer is the one to pass on, if there is one.
		resp, err := t.readResponse(c, req, stop, false)
		if err != nil {
			return nil, fail(werr)
		}
		return resp, nil
	}
	if _, err := c.br.Peek(1); err != nil {
		if reused && ctx.Err() == nil && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
			_ = fail(err)
			return nil, staleConnError{err: errServerClosedIdle}
		}
		return nil, fail(err)
	}
	resp, err := t.readResponse(c, req, stop, true)
	if err != nil {
		return nil, fail(err)
	}
	return resp, nil
}

var errServerClosedIdle = errors.New("http: server closed idle connection")

// readResponse reads the final response's headers, passing 1xx ones to the
// request's httptrace, and gives it a body that keeps c (if reusable) or
// closes it.
func (t *streamTransport) readResponse(c *upstreamConn, req *http.Request, stop func() bool, reusable bool) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(req.Context())
	for informational := 0; ; informational++ {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code >= 200 || code == http.StatusSwitchingProtocols {
			if t.headerTimeout > 0 {
				_ = c.SetReadDeadline(time.Time{})
			}
			return t.withBody(c, req, resp, stop, reusable), nil
		}
		if informational == maxInformational {
			return nil, errors.New("net/http: too many 1xx informational responses")
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// maxInformational is Transport's limit on 1xx responses before the final one.
const maxInformational = 5

// withBody makes resp's body give c back once read to its end and closed.
func (t *streamTransport) withBody(c *upstreamConn, req *http.Request, resp *http.Response, stop func() bool, reusable bool) *http.Response {
	keep := reusable && !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	if resp.Body == http.NoBody {
		if stop() && keep {
			t.put(c)
		} else {
			_ = c.Close()
		}
		return resp
	}
	resp.Body = &upstreamBody{body: resp.Body, c: c, t: t, ctx: req.Context(), stop: stop, keep: keep}
	return resp
}

// upstreamBody is a response body read from its connection, which goes
// back to the idle ones when the body was read to its end, else is closed.
type upstreamBody struct {
	body   io.ReadCloser // http.ReadResponse's
	c      *upstreamConn
	t      *streamTransport
	ctx    context.Context
	stop   func() bool
	keep   bool
	eof    atomic.Bool
	closed atomic.Bool
}

var errReadOnClosedBody = errors.New("http: read on closed response body")

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadOnClosedBody
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case err != nil && b.ctx.Err() != nil:
		err = context.Cause(b.ctx) // the connection was closed because of it
	}
	return n, err
}

// Close gives the connection back, or closes it when the body was not read
// to its end: what is left of a stream is not read through to save it.
func (b *upstreamBody) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if b.stop() && b.keep && b.eof.Load() {
		b.t.put(b.c)
	} else {
		_ = b.c.Close()
	}
	return nil
}

// conn is an idle connection to addr that is still open, or a new one.
func (t *streamTransport) conn(ctx context.Context, addr string) (c *upstreamConn, reused bool, err error) {
	for {
		t.mu.Lock()
		idle := t.idle[addr]
		if len(idle) == 0 {
			t.mu.Unlock()
			break
		}
		c = idle[len(idle)-1]
		idle[len(idle)-1] = nil
		t.idle[addr] = idle[:len(idle)-1]
		t.mu.Unlock()
		if time.Since(c.idleSince) < t.idleTimeout && c.quiet() {
			return c, true, nil
		}
		_ = c.Close()
	}
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	t.mu.Lock()
	t.closeIdle = false
	t.mu.Unlock()
	c = &upstreamConn{Conn: nc, addr: addr, br: bufio.NewReaderSize(nc, 4<<10)}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c, false, nil
}

// quiet reports whether the upstream has neither closed c nor sent on it
// since it went idle, by peeking at the socket without waiting.
func (c *upstreamConn) quiet() bool {
	if c.raw == nil {
		return true
	}
	var b [1]byte
	var n int
	var perr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	})
	return err == nil && n < 0 && perr == syscall.EAGAIN
}

// put keeps c for the next request to its upstream.
func (t *streamTransport) put(c *upstreamConn) {
	if c.br.Buffered() > 0 { // bytes nobody asked for
		_ = c.Close()
		return
	}
	c.idleSince = time.Now()
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]*upstreamConn{}
	}
	if t.closeIdle || len(t.idle[c.addr]) >= t.maxIdle {
		t.mu.Unlock()
		_ = c.Close()
		return
	}
	t.idle[c.addr] = append(t.idle[c.addr], c)
	if t.reaper == nil {
		t.reaper = time.AfterFunc(t.idleTimeout, t.reap)
	}
	t.mu.Unlock()
}

// reap closes the connections idle longer than idleTimeout, and comes back
// while any are left.
func (t *streamTransport) reap() {
	var old []*upstreamConn
	t.mu.Lock()
	now := time.Now()
	for addr, idle := range t.idle {
		i := 0 // the oldest come first
		for i < len(idle) && now.Sub(idle[i].idleSince) >= t.idleTimeout {
			i++
		}
		old = append(old, idle[:i]...)
		if i == len(idle) {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = append(idle[:0], idle[i:]...)
		}
	}
	if len(t.idle) > 0 {
		t.reaper.Reset(t.idleTimeout / 2)
	} else {
		t.reaper = nil
	}
	t.mu.Unlock()
	for _, c := range old {
		_ = c.Close()
	}
}

// CloseIdleConnections closes the idle connections, here and in next.
func (t *streamTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closeIdle = nil, true
	if t.reaper != nil {
		t.reaper.Stop()
		t.reaper = nil
	}
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			_ = c.Close()
		}
	}
	t.next.CloseIdleConnections()
}

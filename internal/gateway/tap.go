package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
)

type flightKey struct{}

// flight is what every forwarded request carries: how to end it early.
type flight struct {
	cancel context.CancelCauseFunc
}

func flightFrom(ctx context.Context) *flight {
	f, _ := ctx.Value(flightKey{}).(*flight)
	return f
}

// tapResponse is the forwarder's ModifyResponse: it bounds the wait for
// each body byte of every response, and for an inference starts measuring
// the response and taps its body.
func (g *Gateway) tapResponse(resp *http.Response) error {
	ctx := resp.Request.Context()
	ex := exchangeFrom(ctx)
	if f := flightFrom(ctx); f != nil && g.cfg.StreamIdleTimeout > 0 {
		var idle *idleBody
		if ex != nil {
			idle = &ex.idle // in the exchange, with the rest of what each chunk touches
		} else {
			idle = new(idleBody)
		}
		idle.rc, idle.r, idle.limit, idle.cancel = resp.Body, readsOf(resp.Body), g.cfg.StreamIdleTimeout, f.cancel
		resp.Body = idle
	}
	if ex == nil {
		return nil
	}
	ex.meter.Response(resp.StatusCode, resp.Header.Get("Content-Type"))
	ex.status = resp.StatusCode
	tap := &ex.tapBody
	tap.rc, tap.r, tap.ex = resp.Body, readsOf(resp.Body), ex
	if enc := contentEncoding(resp.Header); enc != "" {
		d, err := newDecoder(enc, ex.meter.Write)
		if err != nil {
			ex.unmeasured = err.Error()
			tap.off = true
		} else {
			tap.dec = d
		}
	}
	resp.Body = tap
	return nil
}

// contentEncoding is the response's Content-Encoding, lower case, "" for
// none or identity.
func contentEncoding(h http.Header) string {
	enc := strings.ToLower(strings.TrimSpace(strings.Join(h.Values("Content-Encoding"), ",")))
	if enc == "identity" {
		return ""
	}
	return enc
}

// bodyTap feeds every body byte (decoded, when the body is compressed) to
// the exchange's Meter as the forwarder reads it, and notes how reading
// ended. The forwarder gets the bytes exactly as the upstream sent them.
//
// The forwarder's own copy loop reads with readHeld: the bytes reach the
// client first and the Meter after (settle), with the time they arrived,
// so measuring a chunk delays no token, the first one included.
type bodyTap struct {
	rc  io.ReadCloser
	r   io.Reader // rc, or the body under it for reads (readsOf)
	ex  *exchange
	off bool     // the body is not measured
	dec *decoder // set when the body is compressed

	held   []byte    // read by readHeld, not yet measured
	heldAt time.Time // when they arrived
}

func (t *bodyTap) Read(p []byte) (int, error) {
	n, err := t.readHeld(p)
	t.settle()
	return n, err
}

// readHeld reads as Read does but holds the bytes until settle, which the
// caller must call before it reuses p or returns. A compressed body is
// measured at once (its decoder keeps no time), and so is a read that ends
// the body (stop measures what is held).
func (t *bodyTap) readHeld(p []byte) (int, error) {
	t.settle()
	n, err := t.r.Read(p)
	if n > 0 && !t.off {
		if t.dec != nil {
			_, _ = t.dec.Write(p[:n])
		} else {
			t.held, t.heldAt = p[:n], t.ex.meter.Now()
		}
	}
	t.ended(err)
	return n, err
}

// settle measures the bytes readHeld holds.
func (t *bodyTap) settle() {
	if t.held != nil {
		t.ex.meter.WriteAt(t.held, t.heldAt)
		t.held = nil
	}
}

// ended notes how a read ended.
func (t *bodyTap) ended(err error) {
	if err == nil {
		return
	}
	if err == io.EOF {
		t.ex.sawEOF = true
		t.stop(true)
	} else if t.ex.readErr == nil {
		t.ex.readErr = err
	}
}

func (t *bodyTap) Close() error {
	t.stop(false)
	return t.rc.Close()
}

// stop ends measuring: it measures what is held, ends decoding (waiting
// for the decoder's last output when the body ended cleanly) and notes a
// decoding failure as unmeasured.
func (t *bodyTap) stop(clean bool) {
	t.settle()
	if t.dec == nil {
		return
	}
	if err := t.dec.close(clean); err != nil && t.ex.unmeasured == "" {
		t.ex.unmeasured = err.Error()
	}
	t.dec = nil
}

// closeHook is a response body wrapper that acts only when the body is
// closed; its reads are those of the body under it.
type closeHook interface{ underBody() io.ReadCloser }

// readsOf is where reads of body go: past the wrappers that act only on
// Close (the pool's release of its upstream, the client span's end), to the
// body under them. Close still goes through every wrapper. Each wrapper
// skipped is one call and one object fewer per read, so per chunk.
func readsOf(body io.ReadCloser) io.Reader {
	for {
		h, ok := body.(closeHook)
		if !ok {
			return body
		}
		body = h.underBody()
	}
}

// errStreamIdle is how a body read ends when the upstream sent nothing for
// too long; it is a timeout (error.type=timeout).
type errStreamIdle struct{ limit time.Duration }

func (e errStreamIdle) Error() string {
	return fmt.Sprintf("no byte from the upstream for %v (stream idle timeout)", e.limit)
}
func (e errStreamIdle) Timeout() bool { return true }
func (e errStreamIdle) Unwrap() error { return context.DeadlineExceeded }

// idleBody cuts a response body when a read waits longer than limit for
// the upstream: it cancels the request (closing the upstream connection)
// and ends the read with errStreamIdle. Time the forwarder spends writing
// to a slow client is not counted.
//
// A read only notes when it began; one timer per body, armed once, checks
// at most twice per limit whether the read under way has waited that long,
// and otherwise sets itself for the moment it would have. Resetting and
// stopping a timer around every read cost more than the rest of the
// body's bookkeeping per chunk.
type idleBody struct {
	rc     io.ReadCloser
	r      io.Reader // rc, or the body under it for reads (readsOf)
	limit  time.Duration
	cancel context.CancelCauseFunc
	base   time.Time    // start counts from here; set before the timer exists
	start  atomic.Int64 // when the read under way began, ns since base, +1; 0 between reads
	fired  atomic.Bool

	mu     sync.Mutex  // guards timer and closed, shared with the timer's callback
	timer  *time.Timer // nil until the first read
	closed bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.fired.Load() {
		return 0, errStreamIdle{b.limit}
	}
	if b.base.IsZero() {
		b.base = time.Now()
		b.start.Store(1)
		b.mu.Lock()
		if !b.closed {
			b.timer = time.AfterFunc(b.limit, b.check)
		}
		b.mu.Unlock()
	} else {
		b.start.Store(int64(time.Since(b.base)) + 1)
	}
	n, err := b.r.Read(p)
	b.start.Store(0)
	if err != nil && err != io.EOF && b.fired.Load() {
		err = errStreamIdle{b.limit}
	}
	return n, err
}

// check runs on the timer: it cuts the body when the read under way has
// waited limit, else sets the timer for when it (or a read starting now)
// would have.
func (b *idleBody) check() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	next := b.limit
	if s := b.start.Load(); s != 0 {
		next -= time.Since(b.base) - time.Duration(s-1)
	}
	if next > 0 {
		b.timer.Reset(next)
	}
	b.mu.Unlock()
	if next <= 0 {
		b.fired.Store(true)
		b.cancel(errStreamIdle{b.limit}) // outside the lock: canceling may close the body
	}
}

func (b *idleBody) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	return b.rc.Close()
}

// upstreamChosen is the pool's callback: the exchange learns its upstream.
func (g *Gateway) upstreamChosen(out *http.Request, u *upstream) {
	ex := exchangeFrom(out.Context())
	if ex == nil {
		return
	}
	ex.upstream, ex.provider = u, u.provider
	if ex.recording {
		ex.span.SetAttributes(semconv.ServerAddressKey.String(u.host), semconv.ServerPortKey.Int(u.port))
	}
}

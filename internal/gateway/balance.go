package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// maxEjectDoublings caps the ejection backoff at EjectBackoff × 2^5.
const maxEjectDoublings = 5

// upstream is one server of a pool, with what balancing and passive health
// know of it.
type upstream struct {
	url      *url.URL
	host     string
	port     int
	provider string

	inflight atomic.Int64 // requests sent and not yet done with (body closed)

	mu           sync.Mutex
	refusals     int       // consecutive failed connection attempts
	ejectedUntil time.Time // no new requests before then, unless every upstream is ejected
}

// ejected reports whether the upstream sits out at now.
func (u *upstream) ejected(now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return now.Before(u.ejectedUntil)
}

// refused ejects the upstream for backoff × 2^(consecutive refusals − 1),
// capped: its connections are refused or cannot be made.
func (u *upstream) refused(now time.Time, backoff time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refusals++
	u.ejectedUntil = now.Add(backoff << min(u.refusals-1, maxEjectDoublings))
}

// connected ends any ejection: the upstream accepted a connection.
func (u *upstream) connected() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refusals, u.ejectedUntil = 0, time.Time{}
}

// pool is a set of upstreams that share requests, least outstanding first.
// It is the forwarder's RoundTripper: it picks the upstream, sends the
// request there, and when connecting fails (so no byte reached that
// upstream) ejects it and tries once more on another.
type pool struct {
	name    string // "" for the default pool, else the model routed to it
	ups     []*upstream
	rotate  atomic.Uint64 // breaks ties between equally loaded upstreams
	next    http.RoundTripper
	backoff time.Duration
	chosen  func(*http.Request, *upstream) // tells the exchange which upstream serves it
	proxy   http.Handler                   // the ReverseProxy using this pool
	stream  http.Handler                   // the forwarder of inference exchanges using this pool
}

// pick returns the upstream with the fewest requests in flight among those
// not ejected, skipping skip; when every other upstream is ejected, the
// least loaded of them (a pool never refuses on its own). nil when there is
// no other upstream at all.
func (p *pool) pick(skip *upstream) *upstream {
	now := time.Now()
	n := len(p.ups)
	start := int((p.rotate.Add(1) - 1) % uint64(n))
	var best, fallback *upstream
	for i := range n {
		u := p.ups[(start+i)%n]
		if u == skip {
			continue
		}
		if fallback == nil || u.inflight.Load() < fallback.inflight.Load() {
			fallback = u
		}
		if u.ejected(now) {
			continue
		}
		if best == nil || u.inflight.Load() < best.inflight.Load() {
			best = u
		}
	}
	if best == nil {
		return fallback
	}
	return best
}

// RoundTrip sends req to the least loaded upstream, and once more to
// another when the first could not be connected to.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	first := p.pick(nil)
	resp, err := p.send(req, first)
	if err == nil || !neverSent(req.Context(), err) || !rewindable(req) {
		return resp, err
	}
	second := p.pick(first)
	if second == nil {
		return nil, err
	}
	retry, rerr := rewind(req)
	if rerr != nil {
		return nil, err
	}
	return p.send(retry, second)
}

func (p *pool) send(req *http.Request, u *upstream) (*http.Response, error) {
	out := *req // shallow: the next RoundTripper clones before it changes headers
	target := *req.URL
	target.Scheme, target.Host = u.url.Scheme, u.url.Host
	out.URL, out.Host = &target, ""
	if p.chosen != nil {
		p.chosen(&out, u)
	}
	u.inflight.Add(1)
	resp, err := p.next.RoundTrip(&out)
	if err != nil {
		u.inflight.Add(-1)
		if neverSent(req.Context(), err) {
			u.refused(time.Now(), p.backoff)
		}
		return nil, err
	}
	u.connected()
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, u: u}
	return resp, nil
}

// releaseOnClose counts the request out of its upstream's in-flight
// requests when its response body is done with.
type releaseOnClose struct {
	io.ReadCloser
	u    *upstream
	done atomic.Bool
}

func (b *releaseOnClose) underBody() io.ReadCloser { return b.ReadCloser }

func (b *releaseOnClose) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.u.inflight.Add(-1)
	}
	return b.ReadCloser.Close()
}

// neverSent reports whether err says no connection to the upstream was
// made (refused, unreachable, no route, dial timeout), so not a byte of the
// request reached it. A request the client canceled is not counted.
func neverSent(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// rewindable reports whether the request body can be sent again: none, a
// body that can be remade, or one not yet read at all.
func rewindable(req *http.Request) bool {
	switch b := req.Body.(type) {
	case nil:
		return true
	case *declaredBody:
		return !b.read
	}
	return req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns req with its body ready to be sent again.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	if _, ok := req.Body.(*declaredBody); ok {
		return req, nil // never read: the same reader serves again
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	out := *req
	out.Body = body
	return &out, nil
}

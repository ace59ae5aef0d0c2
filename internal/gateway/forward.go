package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// forwarder copies an inference exchange through its pool: what the
// pool's httputil.ReverseProxy does for the gateway (the request cloned and
// rewritten by Gateway.rewrite, hop-by-hop headers dropped both ways, 1xx
// answers and trailers passed on, the pool as transport, tapResponse and
// handleUpstreamError), with a copy loop of its own. The goroutine serving
// the request writes and flushes each upstream read to the client at once;
// the response headers are flushed as they arrive, from the same
// goroutine. ReverseProxy flushes them from a timer goroutine started per
// request and takes a lock around every write, so it costs a goroutine
// wake-up more per request and a lock per chunk.
//
// Requests it does not take are served by the ReverseProxy, unchanged:
// protocol upgrades, and query strings ReverseProxy would re-encode.
type forwarder struct {
	g *Gateway
	p *pool
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.takes(r) {
		f.p.proxy.ServeHTTP(w, r)
		return
	}
	g := f.g
	// 1xx answers (103 Early Hints) pass on while the final one is awaited.
	var mu sync.Mutex
	done := false
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return nil
		}
		h := w.Header()
		copyHeader(h, http.Header(header))
		w.WriteHeader(code)
		clear(h)
		return nil
	}}
	out := r.Clone(httptrace.WithClientTrace(r.Context(), trace))
	if r.ContentLength == 0 {
		out.Body = nil // as ReverseProxy: lets the transport retry on a dead idle connection
	}
	// out.Body is the exchange's own reader of the bytes read (see
	// instrument): closing it closes nothing of the client's.
	out.Close = false
	removeHopByHopHeaders(out.Header)
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		out.Header.Set("Te", "trailers")
	}
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(k)
	}
	g.rewrite(&httputil.ProxyRequest{In: r, Out: out})
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // not Go's own
	}

	res, err := f.p.RoundTrip(out)
	mu.Lock()
	done = true
	mu.Unlock()
	if err != nil {
		g.handleUpstreamError(w, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		_ = res.Body.Close()
		g.handleUpstreamError(w, out, errUnaskedUpgrade)
		return
	}
	removeHopByHopHeaders(res.Header)
	if err := g.tapResponse(res); err != nil {
		_ = res.Body.Close()
		g.handleUpstreamError(w, out, err)
		return
	}
	h := w.Header()
	copyHeader(h, res.Header)
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	flush := flusherOf(w)
	flush() // the headers reach the client now, before the first body byte

	if err := g.copyBody(w, res.Body, flush); err != nil {
		defer res.Body.Close()
		// Streaming, all that is left is to cut the client's response too,
		// as the upstream's was cut (instrument recovers, measures, re-panics).
		panic(http.ErrAbortHandler)
	}
	_ = res.Body.Close() // now, not deferred: it fills in res.Trailer
	if len(res.Trailer) > 0 {
		flush() // forces chunking, so net/http adds no Content-Length
	}
	if len(res.Trailer) == announced {
		copyHeader(h, res.Trailer)
		return
	}
	for k, vs := range res.Trailer {
		for _, v := range vs {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}

var errUnaskedUpgrade = fmt.Errorf("the upstream switched protocols unasked")

// takes reports whether the forwarder serves r itself: not a protocol
// upgrade, and a query ReverseProxy would pass as it is (no ';', no
// malformed escape, not too many parameters).
func (f *forwarder) takes(r *http.Request) bool {
	if httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade") {
		return false
	}
	q := r.URL.RawQuery
	if strings.Count(q, "&") >= maxCleanQueryParams {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

// maxCleanQueryParams is below net/url's default limit on query
// parameters, past which ReverseProxy re-encodes the query.
const maxCleanQueryParams = 1000

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// copyBody copies the upstream's body to the client, each read written
// and flushed before the next. It returns a read error other than EOF or a
// write error (a flush error shows in the next write, as in ReverseProxy).
// A tapped body's bytes are measured after they are written (readHeld).
func (g *Gateway) copyBody(w io.Writer, body io.Reader, flush func()) error {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	read := body.Read
	if tap, ok := body.(*bodyTap); ok {
		read = tap.readHeld
		defer tap.settle() // before buf goes back to the pool, even on a panic
	}
	for {
		n, rerr := read(buf)
		if n > 0 {
			nw, werr := w.Write(buf[:n])
			if werr == nil && nw < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return werr
			}
			flush()
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			if rerr != context.Canceled {
				g.errorLog.Printf("reading the upstream's body: %v", rerr)
			}
			return rerr
		}
	}
}

// flusherOf returns how to flush w: directly when it is net/http's own
// writer (or any http.Flusher), else through a ResponseController, which
// finds a flusher under wrappers that have Unwrap.
func flusherOf(w http.ResponseWriter) func() {
	if f, ok := w.(http.Flusher); ok {
		return f.Flush
	}
	rc := http.NewResponseController(w)
	return func() { _ = rc.Flush() }
}

// hopByHopHeaders are the hop-by-hop headers ReverseProxy drops (RFC 9110
// 7.6.1, and the ones RFC 2616 named).
var hopByHopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHopHeaders drops the headers named in Connection and the
// hop-by-hop ones, as ReverseProxy does.
func removeHopByHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopByHopHeaders {
		h.Del(k)
	}
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

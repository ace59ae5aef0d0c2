package gateway

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// forwarded is what an upstream saw of a request, and what a client saw of
// the answer.
type forwarded struct {
	upHeader   http.Header
	upQuery    string
	upBody     string
	status     int
	early      []int // 1xx codes the client got
	header     http.Header
	trailer    http.Header
	body       string
	earlyLinks []string
}

// TestForwarderMatchesReverseProxy: an inference exchange goes through the
// gateway's own forwarder, a request to another path through
// httputil.ReverseProxy; both must reach the upstream and the client alike:
// hop-by-hop headers (named in Connection or not) dropped both ways, Te:
// trailers kept, no User-Agent of the proxy's own, forwarding headers set,
// query strings (a ';' one ReverseProxy re-encodes), 103 Early Hints,
// trailers announced and not, the body byte for byte.
func TestForwarderMatchesReverseProxy(t *testing.T) {
	var mu sync.Mutex
	var up forwarded
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		up = forwarded{upHeader: r.Header.Clone(), upQuery: r.URL.RawQuery, upBody: string(b)}
		mu.Unlock()
		h := w.Header()
		h.Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		delete(h, "Link")
		h.Set("Content-Type", "text/event-stream")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("X-Keep", "kept")
		h.Set("Trailer", "X-Announced")
		w.WriteHeader(http.StatusOK)
		for _, c := range openAIChatStream {
			_, _ = io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
		h.Set("X-Announced", "yes")
		h.Set(http.TrailerPrefix+"X-Unannounced", "also")
	})
	rg := newRig(t, Config{}, srv.URL)

	exchange := func(path string) forwarded {
		t.Helper()
		body := `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		var s forwarded
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			s.early = append(s.early, code)
			s.earlyLinks = append(s.earlyLinks, h.Values("Link")...)
			return nil
		}}
		req, err := http.NewRequest(http.MethodPost, rg.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		req.Header["User-Agent"] = []string{""} // sends none
		req.Header.Set("Connection", "X-Secret")
		req.Header.Set("X-Secret", "s")
		req.Header.Set("Te", "trailers")
		req.Header.Set("Proxy-Authorization", "Basic eA==")
		req.Header.Set("X-Forwarded-For", "10.9.9.9")
		req.Header.Set("X-Real-Ip", "10.9.9.9")
		req.Header.Set("Authorization", "Bearer k")
		resp, b := fetch(t, rg.client.Do, req)
		mu.Lock()
		s.upHeader, s.upQuery, s.upBody = up.upHeader, up.upQuery, up.upBody
		mu.Unlock()
		s.status, s.header, s.trailer, s.body = resp.StatusCode, resp.Header, resp.Trailer, b
		delete(s.header, "Date")
		delete(s.upHeader, "Traceparent") // only inference requests get one
		return s
	}
	for _, query := range []string{"", "?api-version=2024-10-21&x=%2F", "?a=1;b=2"} {
		t.Run(query, func(t *testing.T) {
			inference := exchange("/v1/chat/completions" + query)
			other := exchange("/api/create" + query)
			if inference.upQuery != other.upQuery || inference.upBody != other.upBody || inference.body != other.body {
				t.Errorf("upstream query %q / %q, bodies differ: %v / %v", inference.upQuery, other.upQuery,
					inference.upBody != other.upBody, inference.body != other.body)
			}
			if !maps.EqualFunc(inference.upHeader, other.upHeader, equalValues) {
				t.Errorf("the upstream saw headers\n%v\nfor an inference, and\n%v\nfor another request", inference.upHeader, other.upHeader)
			}
			if !maps.EqualFunc(inference.header, other.header, equalValues) || !maps.EqualFunc(inference.trailer, other.trailer, equalValues) {
				t.Errorf("the client got\n%v %v\nfor an inference, and\n%v %v\nfor another request", inference.header, inference.trailer, other.header, other.trailer)
			}
			if inference.status != other.status || len(inference.early) != len(other.early) {
				t.Errorf("status %d, 1xx %v for an inference; %d, %v for another request", inference.status, inference.early, other.status, other.early)
			}
			// And what both must be, not only alike.
			s := inference
			for _, k := range []string{"X-Secret", "Connection", "Proxy-Authorization", "User-Agent", "X-Real-Ip"} {
				if v, ok := s.upHeader[k]; ok {
					t.Errorf("the upstream got hop-by-hop or unwanted header %s: %q", k, v)
				}
			}
			if s.upHeader.Get("Te") != "trailers" || s.upHeader.Get("Authorization") != "Bearer k" ||
				strings.Contains(s.upHeader.Get("X-Forwarded-For"), "10.9.9.9") || s.upHeader.Get("X-Forwarded-For") == "" {
				t.Errorf("the upstream got Te %q, Authorization %q, X-Forwarded-For %q", s.upHeader.Get("Te"),
					s.upHeader.Get("Authorization"), s.upHeader.Get("X-Forwarded-For"))
			}
			if s.header.Get("X-Keep") != "kept" || s.header.Get("X-Hop") != "" || s.header.Get("Keep-Alive") != "" {
				t.Errorf("the client got headers %v", s.header)
			}
			if s.trailer.Get("X-Announced") != "yes" || s.trailer.Get("X-Unannounced") != "also" {
				t.Errorf("the client got trailers %v", s.trailer)
			}
			if len(s.early) != 1 || s.early[0] != http.StatusEarlyHints || len(s.earlyLinks) != 1 {
				t.Errorf("the client got 1xx answers %v with links %v, want one 103 with its link", s.early, s.earlyLinks)
			}
			if s.body != strings.Join(openAIChatStream, "") {
				t.Errorf("the client got body %q", s.body)
			}
		})
	}
}

func equalValues(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

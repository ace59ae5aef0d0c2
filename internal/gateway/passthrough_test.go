package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is what the fake upstream received.
type seen struct {
	Method, URI, Body, Auth, Cookie, Scenario string
}

// cannedUpstream answers each path with a fixed response and records requests.
type cannedUpstream struct {
	mu   sync.Mutex
	got  []seen
	resp map[string]canned
}

type canned struct {
	status      int
	contentType string
	chunks      []string
	extra       map[string]string
}

func (c *cannedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.got = append(c.got, seen{r.Method, r.RequestURI, string(b), r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get(DefaultScenarioHeader)})
	c.mu.Unlock()
	cn, ok := c.resp[r.Method+" "+r.URL.Path]
	if !ok {
		http.Error(w, "no such canned response", 404)
		return
	}
	for k, v := range cn.extra {
		w.Header().Set(k, v)
	}
	if cn.contentType != "" {
		w.Header().Set("Content-Type", cn.contentType)
	}
	w.Header().Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
	if len(cn.chunks) == 1 {
		w.Header().Set("Content-Length", fmt.Sprint(len(cn.chunks[0])))
	}
	w.WriteHeader(cn.status)
	for _, ch := range cn.chunks {
		_, _ = io.WriteString(w, ch)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

const (
	ndjson = "application/x-ndjson"
	sse    = "text/event-stream"
	js     = "application/json; charset=utf-8"
)

var ollamaChatStream = []string{
	`{"model":"m1","created_at":"t","message":{"role":"assistant","content":"Hel"},"done":false}` + "\n",
	`{"model":"m1","created_at":"t","message":{"role":"assistant","content":"lo"},"done":false}` + "\n",
	`{"model":"m1","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":900000000,"load_duration":100000000,"prompt_eval_count":7,"prompt_eval_duration":200000000,"eval_count":2,"eval_duration":300000000}` + "\n",
}

var openAIChatStream = []string{
	"data: {\"id\":\"c1\",\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n",
	"data: {\"id\":\"c1\",\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
	"data: {\"id\":\"c1\",\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
	"data: {\"id\":\"c1\",\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
	"data: {\"id\":\"c1\",\"model\":\"m1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n",
	"data: [DONE]\n\n",
}

func passThroughCases() map[string]canned {
	return map[string]canned{
		"POST /api/chat":             {200, ndjson, ollamaChatStream, nil},
		"POST /api/generate":         {200, js, []string{`{"model":"m1","response":"Hello","done":true,"eval_count":2,"prompt_eval_count":3}`}, nil},
		"POST /api/embed":            {200, js, []string{`{"model":"m1","embeddings":[[0.1,0.2]]}`}, nil},
		"POST /api/embeddings":       {200, js, []string{`{"embedding":[0.1,0.2]}`}, nil},
		"GET /api/tags":              {200, js, []string{`{"models":[{"name":"m1"}]}`}, map[string]string{"X-Upstream": "a"}},
		"POST /api/show":             {200, js, []string{`{"modelfile":"FROM x"}`}, nil},
		"GET /api/ps":                {200, js, []string{`{"models":[]}`}, nil},
		"POST /api/pull":             {200, ndjson, []string{`{"status":"pulling manifest"}` + "\n", `{"status":"success"}` + "\n"}, nil},
		"GET /api/version":           {200, js, []string{`{"version":"0.6.5"}`}, nil},
		"DELETE /api/delete":         {404, js, []string{`{"error":"model 'x' not found"}`}, nil},
		"POST /v1/chat/completions":  {200, sse, openAIChatStream, map[string]string{"Cache-Control": "no-cache"}},
		"POST /v1/completions":       {200, js, []string{`{"model":"m1","choices":[{"text":"Hello","finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`}, nil},
		"POST /v1/embeddings":        {200, js, []string{`{"data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":3}}`}, nil},
		"GET /v1/models":             {200, js, []string{`{"data":[{"id":"m1"}]}`}, nil},
		"POST /api/create":           {500, "text/plain", []string{"boom"}, nil},
		"GET /":                      {200, "text/plain; charset=utf-8", []string{"Ollama is running"}, nil},
		"GET /no/content/type/given": {200, "", []string{"\x00\x01binary"}, nil},
	}
}

// hopHeaders differ by connection, not by content.
var hopHeaders = map[string]bool{"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true}

func TestPassThroughIsByteIdentical(t *testing.T) {
	cases := passThroughCases()
	up := &cannedUpstream{resp: cases}
	srv := fakeUpstream(t, up.ServeHTTP)
	rg := newRig(t, Config{}, srv.URL)
	direct := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(direct.CloseIdleConnections)

	for key := range cases {
		method, path, _ := strings.Cut(key, " ")
		body := ""
		if method == "POST" {
			body = `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		}
		t.Run(key, func(t *testing.T) {
			send := func(base string, c *http.Client) (*http.Response, []byte) {
				req, _ := http.NewRequest(method, base+path+"?q=1&r=%2F", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer secret-token")
				req.Header.Set("Cookie", "session=abc")
				req.Header.Set(DefaultScenarioHeader, "pass-through")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp, b
			}
			want, wantBody := send(srv.URL, direct)
			got, gotBody := send(rg.url, rg.client)
			if got.StatusCode != want.StatusCode {
				t.Errorf("status %d, want %d", got.StatusCode, want.StatusCode)
			}
			if !bytes.Equal(gotBody, wantBody) {
				t.Errorf("body differs:\n got %q\nwant %q", gotBody, wantBody)
			}
			for k := range mergeKeys(got.Header, want.Header) {
				if hopHeaders[k] {
					continue
				}
				if g, w := strings.Join(got.Header.Values(k), ","), strings.Join(want.Header.Values(k), ","); g != w {
					t.Errorf("header %s = %q, want %q", k, g, w)
				}
			}
			up.mu.Lock()
			last := up.got[len(up.got)-2:] // direct, then through the proxy
			up.mu.Unlock()
			d, p := last[0], last[1]
			if p.Method != d.Method || p.URI != d.URI || p.Body != d.Body || p.Auth != d.Auth || p.Cookie != d.Cookie {
				t.Errorf("upstream saw %+v through the proxy, %+v directly", p, d)
			}
			if p.Scenario != "" {
				t.Errorf("scenario header forwarded upstream: %q", p.Scenario)
			}
		})
	}
}

func mergeKeys(a, b http.Header) map[string]bool {
	k := map[string]bool{}
	for x := range a {
		k[x] = true
	}
	for x := range b {
		k[x] = true
	}
	return k
}

// TestChunksAreFlushedOneByOne: the upstream sends chunk k+1 only after the
// client has read chunk k, so a proxy that buffers deadlocks and fails.
func TestChunksAreFlushedOneByOne(t *testing.T) {
	for _, tc := range []struct {
		name, path, ct string
		chunks         []string
	}{
		{"ndjson", "/api/chat", ndjson, ollamaChatStream},
		{"sse", "/v1/chat/completions", sse, openAIChatStream},
		{"pull progress", "/api/pull", ndjson, []string{`{"status":"a"}` + "\n", `{"status":"b"}` + "\n", `{"status":"success"}` + "\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ack := make(chan struct{})
			srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(200)
				for _, c := range tc.chunks {
					_, _ = io.WriteString(w, c)
					w.(http.Flusher).Flush()
					select {
					case <-ack:
					case <-time.After(5 * time.Second):
						return // the client never saw the chunk: it was buffered
					case <-r.Context().Done():
						return
					}
				}
			})
			rg := newRig(t, Config{}, srv.URL)
			resp, err := rg.client.Post(rg.url+tc.path, "application/json", strings.NewReader(`{"model":"m1","stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			for i, c := range tc.chunks {
				buf := make([]byte, len(c))
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("chunk %d not delivered before the next was sent: %v", i, err)
				}
				if string(buf) != c {
					t.Fatalf("chunk %d = %q, want %q", i, buf, c)
				}
				ack <- struct{}{}
			}
		})
	}
}

// serverBody acts as net/http's server request body: reading it after
// the server closed it (as it does once the response starts) fails.
type serverBody struct {
	r      *strings.Reader
	closed bool
}

func (b *serverBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.r.Read(p)
}

func (b *serverBody) Close() error { b.closed = true; return nil }

// TestDeclaredBodyEndsByItself: the transport's extra read after
// Content-Length bytes must not reach the server's body, which the server
// may have closed by then (see declaredBody).
func TestDeclaredBodyEndsByItself(t *testing.T) {
	sb := &serverBody{r: strings.NewReader(`{"name":"m1"}`)}
	b := &declaredBody{r: io.LimitReader(sb, 13)}
	got, err := io.ReadAll(io.LimitReader(b, 13))
	if err != nil || string(got) != `{"name":"m1"}` {
		t.Fatalf("read %q, %v", got, err)
	}
	sb.Close() // the response started
	if n, err := b.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read past the declared length: %d, %v; want 0, EOF", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

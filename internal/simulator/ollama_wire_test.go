//go:build ollama

package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/ollamatest"
)

// TestWireMatchesOllama sends the same requests to a real Ollama v0.17.4 and
// to the simulator and compares what comes back: status, Content-Type, the
// framing, and the shape of every kind of chunk (keys in order, value
// types); error bodies must be identical. Run by `make test-simulator-ollama`.
func TestWireMatchesOllama(t *testing.T) {
	real, ts, client := realAndSimulated(t)

	m := real.Model
	// Greedy and seeded: the random-weight model then answers the same every
	// run, never with an end-of-sequence token before any text.
	msgs := `[{"role":"user","content":"Tell me a story."}]`
	tests := []struct {
		name, method, path, body string
		exact                    bool // error bodies: byte for byte
	}{
		{"chat stream", "POST", "/api/chat", `{"model":"` + m + `","messages":` + msgs + `,"options":{"num_predict":4,"temperature":0,"seed":1}}`, false},
		{"chat whole", "POST", "/api/chat", `{"model":"` + m + `","messages":` + msgs + `,"stream":false,"options":{"num_predict":4,"temperature":0,"seed":1}}`, false},
		{"generate stream", "POST", "/api/generate", `{"model":"` + m + `","prompt":"Tell me a story.","options":{"num_predict":4,"temperature":0,"seed":1}}`, false},
		{"generate whole", "POST", "/api/generate", `{"model":"` + m + `","prompt":"Tell me a story.","stream":false,"options":{"num_predict":4,"temperature":0,"seed":1}}`, false},
		{"openai chat stream", "POST", "/v1/chat/completions", `{"model":"` + m + `","messages":` + msgs + `,"stream":true,"stream_options":{"include_usage":true},"max_tokens":4,"temperature":0,"seed":1}`, false},
		{"openai chat stream no usage", "POST", "/v1/chat/completions", `{"model":"` + m + `","messages":` + msgs + `,"stream":true,"max_tokens":4,"temperature":0,"seed":1}`, false},
		{"openai chat whole", "POST", "/v1/chat/completions", `{"model":"` + m + `","messages":` + msgs + `,"max_tokens":4,"temperature":0,"seed":1}`, false},
		{"openai completion stream", "POST", "/v1/completions", `{"model":"` + m + `","prompt":"Tell me a story.","stream":true,"stream_options":{"include_usage":true},"max_tokens":4,"temperature":0,"seed":1}`, false},
		{"openai completion whole", "POST", "/v1/completions", `{"model":"` + m + `","prompt":"Tell me a story.","max_tokens":4,"temperature":0,"seed":1}`, false},
		{"tags", "GET", "/api/tags", ``, false},
		{"ps", "GET", "/api/ps", ``, false},
		{"version", "GET", "/api/version", ``, true}, // the simulator claims the version it imitates
		{"models", "GET", "/v1/models", ``, false},
		{"truncated json", "POST", "/api/chat", `{"model":`, true},
		{"empty body", "POST", "/api/generate", ``, true},
		{"chat unknown model", "POST", "/api/chat", `{"model":"nope","messages":` + msgs + `}`, true},
		{"generate unknown model", "POST", "/api/generate", `{"model":"nope","prompt":"hi"}`, true},
		{"show unknown model", "POST", "/api/show", `{"model":"nope"}`, true},
		{"openai truncated json", "POST", "/v1/chat/completions", `{"model":`, true},
		{"openai no messages", "POST", "/v1/chat/completions", `{"model":"` + m + `","messages":[]}`, true},
		{"openai unknown model", "POST", "/v1/chat/completions", `{"model":"nope","messages":` + msgs + `}`, true},
		{"completions unknown model", "POST", "/v1/completions", `{"model":"nope","prompt":"hi"}`, true},
		{"unknown path", "GET", "/api/nope", ``, true},
		{"wrong method", "GET", "/api/chat", ``, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := fetch(t, client, tc.method, real.URL()+tc.path, tc.body)
			got := fetch(t, client, tc.method, ts.URL+tc.path, tc.body)
			if got.status != want.status || got.contentType != want.contentType {
				t.Errorf("simulator %d %q, ollama %d %q", got.status, got.contentType, want.status, want.contentType)
			}
			if tc.exact {
				if !bytes.Equal(got.body, want.body) {
					t.Errorf("simulator body %q\nollama body    %q", got.body, want.body)
				}
				return
			}
			gs, ws := chunkShapes(t, got), chunkShapes(t, want)
			if len(gs) != len(ws) {
				t.Fatalf("kinds of chunks: simulator\n%s\nollama\n%s", strings.Join(gs, "\n"), strings.Join(ws, "\n"))
			}
			for i := range ws {
				if gs[i] != ws[i] {
					t.Errorf("chunk kind %d:\nsimulator %s\nollama    %s", i, gs[i], ws[i])
				}
			}
		})
	}
}

type fetched struct {
	status      int
	contentType string
	body        []byte
}

func fetch(t *testing.T, client *http.Client, method, url, body string) fetched {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fetched{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

// chunkShapes cuts a body into its chunks (NDJSON lines, SSE events, or the
// whole body) and returns the shapes of its kinds of chunk in order, with
// runs of the same shape (the token chunks) folded into one.
func chunkShapes(t *testing.T, f fetched) []string {
	t.Helper()
	var parts [][]byte
	switch {
	case strings.HasPrefix(f.contentType, "text/event-stream"):
		for _, ev := range bytes.Split(bytes.TrimSpace(f.body), []byte("\n\n")) {
			parts = append(parts, bytes.TrimPrefix(ev, []byte("data: ")))
		}
	case strings.HasPrefix(f.contentType, "application/x-ndjson"):
		parts = bytes.Split(bytes.TrimSpace(f.body), []byte("\n"))
	default:
		parts = [][]byte{f.body}
	}
	var shapes []string
	for _, p := range parts {
		s := string(p)
		if s != "[DONE]" {
			s = shapeOf(t, p)
		}
		if len(shapes) == 0 || shapes[len(shapes)-1] != s {
			shapes = append(shapes, s)
		}
	}
	return shapes
}

// shapeOf writes a JSON value with every scalar replaced by its type and
// object keys in their order on the wire. Values under "model_info"-like
// maps are kept as types too; arrays show their first element.
func shapeOf(t *testing.T, data []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var b strings.Builder
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				b.WriteString("{")
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					fmt.Fprintf(&b, "%v:", k)
					if err := walk(); err != nil {
						return err
					}
					b.WriteString(",")
				}
				dec.Token()
				b.WriteString("}")
			case '[':
				b.WriteString("[")
				first := true
				for dec.More() {
					if first {
						if err := walk(); err != nil {
							return err
						}
						first = false
						continue
					}
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						return err
					}
				}
				dec.Token()
				b.WriteString("]")
			}
		case json.Number:
			b.WriteString("number")
		case string:
			b.WriteString("string")
		case bool:
			fmt.Fprintf(&b, "%t", v) // done:true/false matters
		case nil:
			b.WriteString("null")
		}
		return nil
	}
	if err := walk(); err != nil {
		t.Fatalf("shape of %s: %v", data, err)
	}
	return b.String()
}

// realAndSimulated starts a real Ollama and the simulator (profile tiny)
// serving the same model, and a client for both; all stop when the test ends.
func realAndSimulated(t *testing.T) (*ollamatest.Server, *httptest.Server, *http.Client) {
	t.Helper()
	real := ollamatest.Start(t, ollamatest.Options{Parallel: 1})
	sim, err := New(Config{Profile: "tiny", Model: real.Model})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() {
		ts.Close()
		sim.Close()
	})
	client := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Minute}
	t.Cleanup(client.CloseIdleConnections)
	return real, ts, client
}

package simulator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestBadInput: the answers of Ollama v0.17.4 to bad requests.
func TestBadInput(t *testing.T) {
	_, url := startServer(t, Config{Profile: "tiny"})
	openAIErr := func(msg, typ string) string {
		return `{"error":{"message":"` + msg + `","type":"` + typ + `","param":null,"code":null}}`
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
		contentType              string
	}{
		{"truncated json", "POST", "/api/chat", `{"model":`, 400, `{"error":"unexpected EOF"}`, "application/json; charset=utf-8"},
		{"empty body", "POST", "/api/generate", ``, 400, `{"error":"missing request body"}`, "application/json; charset=utf-8"},
		{"not json", "POST", "/api/show", `hello`, 400, `{"error":"invalid character 'h' looking for beginning of value"}`, "application/json; charset=utf-8"},
		{"chat unknown model", "POST", "/api/chat", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`,
			404, `{"error":"model 'nope' not found"}`, "application/json; charset=utf-8"},
		{"generate unknown model", "POST", "/api/generate", `{"model":"nope","prompt":"hi"}`,
			404, `{"error":"model 'nope' not found"}`, "application/json; charset=utf-8"},
		{"chat without model", "POST", "/api/chat", `{"messages":[{"role":"user","content":"hi"}]}`,
			400, `{"error":"model is required"}`, "application/json; charset=utf-8"},
		{"show unknown model", "POST", "/api/show", `{"model":"nope"}`, 404, `{"error":"model 'nope' not found"}`, "application/json; charset=utf-8"},
		{"openai truncated json", "POST", "/v1/chat/completions", `{"model":`, 400,
			openAIErr("unexpected EOF", "invalid_request_error"), "application/json; charset=utf-8"},
		{"openai no messages", "POST", "/v1/chat/completions", `{"model":"tiny","messages":[]}`, 400,
			openAIErr("[] is too short - 'messages'", "invalid_request_error"), "application/json; charset=utf-8"},
		{"openai unknown model", "POST", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`,
			404, openAIErr(`model 'nope' not found`, "api_error") + "\n", "application/json"},
		{"completions unknown model", "POST", "/v1/completions", `{"model":"nope","prompt":"hi"}`,
			404, openAIErr(`model 'nope' not found`, "api_error") + "\n", "application/json"},
		{"unknown path", "GET", "/api/nope", ``, 404, "404 page not found", "text/plain"},
		{"wrong method", "GET", "/api/chat", ``, 405, "405 method not allowed", "text/plain"},
		{"wrong method on a route not simulated", "GET", "/api/pull", ``, 405, "405 method not allowed", "text/plain"},
		{"wrong method on a route with a parameter", "POST", "/v1/models/x", ``, 405, "405 method not allowed", "text/plain"},
		{"route not simulated", "POST", "/api/pull", `{}`, 404, "404 page not found", "text/plain"},
		{"unknown model info", "GET", "/v1/models/nope", ``, 404, openAIErr(`model 'nope' not found`, "api_error") + "\n", "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(context.Background(), tc.method, url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || string(body) != tc.want || resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("got %d %q %s\nwant %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body,
					tc.status, tc.contentType, tc.want)
			}
		})
	}
}

// TestModelNames: Ollama's name matching (case, default tag and namespace).
func TestModelNames(t *testing.T) {
	s, err := New(Config{Model: "qwen2.5:7b-instruct"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string]bool{
		"qwen2.5:7b-instruct": true, "Qwen2.5:7B-Instruct": true, "library/qwen2.5:7b-instruct": true,
		"registry.ollama.ai/library/qwen2.5:7b-instruct": true, "qwen2.5": false, "qwen2.5:7b": false, "": false,
	} {
		if got := s.knows(name); got != want {
			t.Errorf("knows(%q) = %t, want %t", name, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := Profiles["tiny"]
	bad.Heads = 7
	for name, c := range map[string]Config{
		"unknown profile": {Profile: "nope"},
		"parallel":        {Parallel: -1},
		"queue":           {MaxQueue: -1},
		"context":         {ContextLength: 8},
		"time scale":      {TimeScale: -1},
		"memory":          {MemoryLimit: -1},
		"weights scale":   {WeightsScale: 2},
		"custom profile":  {CustomProfile: &bad},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
}

// FuzzTokenize: the tokens cover the text exactly, whatever it is.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "<|im_start|>user\nhi<|im_end|>\n", "  a  b\n\n\tc", "über 123 ¿qué?", "<|x", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		n := 0
		forEachPiece(s, func(p string) {
			if p == "" {
				t.Fatal("empty piece")
			}
			b.WriteString(p)
			n++
		})
		if b.String() != s {
			t.Fatalf("pieces of %q join to %q", s, b.String())
		}
		if n != countTokens(s) || n != len(tokenize(s, 100)) || n > len(s) {
			t.Fatalf("%q: %d pieces, count %d", s, n, countTokens(s))
		}
		if utf8.ValidString(s) && len(s) > 0 && n == 0 {
			t.Fatal("no tokens")
		}
	})
}

// TestOutputLength: the length rule, deterministic per prompt.
func TestOutputLength(t *testing.T) {
	tests := []struct {
		text     string
		min, max int
	}{
		{"What is the capital of France? Answer in about 10 words.", 9, 11},
		{"Reply with a ~10-word answer.", 9, 11},
		{"Explain HTTP/2 in three paragraphs.", 208, 230},
		{"Write a detailed architecture design for a URL shortener.", 494, 546},
		{"Produce a comprehensive system design for a chat service.", 494, 546},
		{"hello", 60, 269},
	}
	for _, tc := range tests {
		n := naturalLength(tc.text, promptSeed(tc.text))
		if n < tc.min || n > tc.max || n != naturalLength(tc.text, promptSeed(tc.text)) {
			t.Errorf("%q: %d tokens, want %d…%d", tc.text, n, tc.min, tc.max)
		}
	}
}

// FuzzRequests: no request body crashes a handler, and every answer is one
// of the statuses the real server gives.
func FuzzRequests(f *testing.F) {
	paths := []string{"/api/chat", "/api/generate", "/api/show", "/v1/chat/completions", "/v1/completions"}
	for _, b := range []string{``, `{`, `{"model":"tiny","messages":[{"role":"user","content":"hi in two words"}]}`,
		`{"model":"tiny","prompt":"x","stream":false,"options":{"num_predict":2}}`, `{"model":"tiny","messages":[{"content":[{"type":"text","text":"a"}]}]}`,
		`{"model":"tiny","messages":[{"content":7}]}`, `[]`, `null`, `{"model":"tiny","options":{"num_predict":-1}}`} {
		for i := range paths {
			f.Add(uint8(i), []byte(b))
		}
	}
	s, err := New(Config{Profile: "tiny", TimeScale: 0.01})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		p := paths[int(path)%len(paths)]
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, p, bytes.NewReader(body)))
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("%s %q: status %d %s", p, body, rec.Code, rec.Body.Bytes())
		}
	})
}

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Every API's fake answer is read by the project's meter as exactly the
// tokens it streams, so the benchmark's broken-stream check holds for all.
func TestFakeUpstreamSpeaksEveryAPI(t *testing.T) {
	srv := httptest.NewServer(&fakeUpstream{release: make(chan struct{})})
	defer srv.Close()
	for name, api := range benchAPIs {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{2, 7} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				r := streamOnce(ctx, srv.Client(), srv.URL, answer{api: api, tokens: n, gap: time.Millisecond}, nil)
				cancel()
				if r.broken != "" || r.chunks != n {
					t.Fatalf("%d tokens: got %d chunks, broken %q", n, r.chunks, r.broken)
				}
			}
		})
	}
}

func TestFakeUpstreamRefusesUnknownPath(t *testing.T) {
	srv := httptest.NewServer(&fakeUpstream{release: make(chan struct{})})
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/v1/embeddings", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
}

func TestParseAPIs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  string
	}{
		{"", 0, ""},
		{"openai, responses,anthropic,ollama", 4, ""},
		{"openai,openai", 0, `"openai" is unknown or repeated`},
		{"grpc", 0, "want some of anthropic, ollama, openai, responses"},
	} {
		got, err := parseAPIs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseAPIs(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != tc.want {
			t.Errorf("parseAPIs(%q) = %d APIs, %v; want %d", tc.in, len(got), err, tc.want)
		}
	}
}

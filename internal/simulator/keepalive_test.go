package simulator

import (
	"context"
	"strings"
	"testing"
	"time"
)

func loaded(s *Server) bool {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	return s.loaded
}

// TestKeepAlive: an idle model unloads after its keep-alive (memory freed,
// /api/ps empty) and the next request loads it again.
func TestKeepAlive(t *testing.T) {
	p := stepProfile(testStep, 0)
	p.LoadTime = 50 * time.Millisecond
	s, url := startServer(t, Config{CustomProfile: p, KeepAlive: 100 * time.Millisecond, Allocate: true})
	first := measure(t, context.Background(), url, "/api/chat", chatBody("hello", 2))
	if load := time.Duration(first.m.Ollama.LoadDuration); load < p.LoadTime {
		t.Errorf("first load_duration %v, want at least %v", load, p.LoadTime)
	}
	if models := getPs(t, url); len(models) != 1 {
		t.Fatalf("/api/ps right after the request: %v", models)
	}
	waitFor(t, "the idle model to unload", func() bool { return !loaded(s) })
	if models := getPs(t, url); len(models) != 0 || s.alloc != nil {
		t.Errorf("unloaded, yet /api/ps lists %v (memory held: %t)", models, s.alloc != nil)
	}
	again := measure(t, context.Background(), url, "/api/chat", chatBody("hello", 2))
	if load := time.Duration(again.m.Ollama.LoadDuration); !again.m.OK() || load < p.LoadTime {
		t.Errorf("after the unload: ok %t, load_duration %v", again.m.OK(), load)
	}
}

// TestKeepAliveRequests: keep_alive in a request, as Ollama reads it.
func TestKeepAliveRequests(t *testing.T) {
	s, url := startServer(t, Config{CustomProfile: stepProfile(testStep, 0)})
	forever := `{"model":"tiny","prompt":"hi","keep_alive":-1,"options":{"num_predict":1}}`
	if r := measure(t, context.Background(), url, "/api/generate", forever); !r.m.OK() {
		t.Fatal(r.m.Error)
	}
	waitFor(t, "the request to end", func() bool { _, b := s.Load(); return b == 0 })
	models := getPs(t, url)
	if len(models) != 1 {
		t.Fatalf("/api/ps: %v", models)
	}
	if exp, err := time.Parse(time.RFC3339Nano, models[0]["expires_at"].(string)); err != nil || exp.Before(time.Now().AddDate(100, 0, 0)) {
		t.Errorf("keep_alive -1: expires_at %v (%v), want centuries ahead", models[0]["expires_at"], err)
	}
	unload := measure(t, context.Background(), url, "/api/generate", `{"model":"tiny","keep_alive":0}`)
	if string(unload.body) == "" || !contains(string(unload.body), `"done_reason":"unload"`) || loaded(s) {
		t.Errorf("unload request: %s (loaded %t)", unload.body, loaded(s))
	}
	if r := measure(t, context.Background(), url, "/api/chat", `{"model":"tiny","messages":[],"keep_alive":"5m"}`); !contains(string(r.body), `"done_reason":"load"`) || !loaded(s) {
		t.Errorf("load request: %s (loaded %t)", r.body, loaded(s))
	}
	zero := `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"keep_alive":"0s","options":{"num_predict":1}}`
	if r := measure(t, context.Background(), url, "/api/chat", zero); !r.m.OK() {
		t.Fatal(r.m.Error)
	}
	waitFor(t, "keep_alive 0 to unload the model", func() bool { return !loaded(s) })
	bad := measure(t, context.Background(), url, "/api/chat", `{"model":"tiny","messages":[],"keep_alive":"soon"}`)
	if bad.status != 400 || string(bad.body) != `{"error":"time: invalid duration \"soon\""}` {
		t.Errorf("bad keep_alive: %d %s", bad.status, bad.body)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

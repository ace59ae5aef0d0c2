package simulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestKVBytesPerSlot(t *testing.T) {
	p := Profiles[DefaultProfile]
	// 2 × 28 layers × 4 KV heads × 128 head dim × 4096 context × 2 bytes.
	if got := p.KVBytesPerSlot(4096); got != 234881024 || p.HeadDim() != 128 {
		t.Errorf("KV per slot = %d (head dim %d), want 234881024 (128)", got, p.HeadDim())
	}
}

func getPs(t *testing.T, url string) []map[string]any {
	t.Helper()
	resp, err := http.Get(url + "/api/ps")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ps struct {
		Models []map[string]any `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
		t.Fatal(err)
	}
	return ps.Models
}

// TestPsReportsMemory: nothing loaded before the first request; then the
// weights plus one KV cache per slot.
func TestPsReportsMemory(t *testing.T) {
	for _, parallel := range []int{1, 4} {
		s, url := startServer(t, Config{Profile: "tiny", Parallel: parallel, ContextLength: 1024})
		if models := getPs(t, url); len(models) != 0 {
			t.Fatalf("loaded before any request: %v", models)
		}
		if r := measure(t, context.Background(), url, "/api/generate", requestBody("/api/generate", "tiny", false, false, 1)); !r.m.OK() {
			t.Fatal(r.m.Error)
		}
		models := getPs(t, url)
		kv := int64(2 * 4 * 2 * 32 * 1024 * 2)
		want := float64(Profiles["tiny"].WeightsBytes + int64(parallel)*kv)
		if len(models) != 1 || models[0]["size"] != want || models[0]["name"] != "tiny:latest" || s.Memory().Total() != int64(want) {
			t.Errorf("parallel %d: /api/ps %v, want size %.0f", parallel, models, want)
		}
	}
}

// TestMemoryLimit: a model that does not fit fails every request the way
// Ollama's load does, on both APIs, and tells OnLoadFailure.
func TestMemoryLimit(t *testing.T) {
	var failures atomic.Int32
	_, url := startServer(t, Config{Parallel: 8, MemoryLimit: 6 << 30, TimeScale: 0.01,
		OnLoadFailure: func(error) { failures.Add(1) }})
	// 4,683,087,332 + 8 × 234,881,024 bytes = 6,562,135,524 ≈ 6.1 GiB.
	const msg = "model requires more system memory (6.1 GiB) than is available (6.0 GiB)"
	for _, tc := range []struct{ path, body, want string }{
		{"/api/chat", `{"model":"qwen2.5:7b-instruct","messages":[{"role":"user","content":"hi"}]}`, `{"error":"` + msg + `"}`},
		{"/v1/chat/completions", `{"model":"qwen2.5:7b-instruct","messages":[{"role":"user","content":"hi"}],"stream":true}`,
			`{"error":{"message":"` + msg + `","type":"api_error","param":null,"code":null}}` + "\n"},
	} {
		resp, err := http.Post(url+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || string(body) != tc.want {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
	}
	if failures.Load() != 2 {
		t.Errorf("OnLoadFailure called %d times, want once per failed load (2)", failures.Load())
	}
	if models := getPs(t, url); len(models) != 0 {
		t.Errorf("a failed model is listed: %v", models)
	}
}

// TestAllocate: with Allocate the server holds the scaled weights and every
// slot's KV cache, and gives them back on Close.
func TestAllocate(t *testing.T) {
	s, url := startServer(t, Config{Profile: "tiny", Parallel: 3, Allocate: true, WeightsScale: 0.5})
	if r := measure(t, context.Background(), url, "/api/generate", requestBody("/api/generate", "tiny", true, false, 1)); !r.m.OK() {
		t.Fatal(r.m.Error)
	}
	m := s.Memory()
	want := Profiles["tiny"].WeightsBytes/2 + 3*m.KVPerSlot
	s.loadMu.Lock()
	got := s.alloc.bytes()
	s.loadMu.Unlock()
	if got != want || m.Resident != want {
		t.Errorf("allocated %d (resident %d), want %d", got, m.Resident, want)
	}
	s.Close()
	if s.alloc != nil {
		t.Error("memory still held after Close")
	}
}

package ollamaproc

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/testproc"
)

func writeGGUF(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Serve prints where the model is served, keeps serving until ctx ends,
// then leaves no process of the group behind.
func TestServeUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testproc.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Config{Binary: os.Args[0], Dir: dir, Env: []string{fakeEnv + "=serve"}, StopGrace: 2 * time.Second},
			"tiny", writeGGUF(t), 20*time.Second, &out)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("Serve ended early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Serve printed no address within 20 s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(out.String())
	if url == "" || !strings.Contains(out.String(), `curl -s `+url+`/api/chat -d '{"model":"tiny"`) {
		t.Fatalf("output lacks the loopback URL and a curl example:\n%s", out.String())
	}
	resp, err := http.Get(url + "/api/version")
	if err != nil {
		t.Fatalf("the served URL does not answer: %v", err)
	}
	resp.Body.Close()
	log, _ := os.ReadFile(filepath.Join(dir, "ollama.log"))
	m := regexp.MustCompile(`--port (\d+)`).FindSubmatch(log) // the fake logs its runner's pid as the port
	if m == nil {
		t.Fatalf("no runner line in the log:\n%s", log)
	}
	runner, _ := strconv.Atoi(string(m[1]))
	if !alive(runner) {
		t.Fatalf("fake runner %d not running", runner)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not stop within 20 s of the cancel")
	}
	if alive(runner) {
		t.Errorf("runner %d outlived Serve", runner)
	}
	if _, err := http.Get(url + "/api/version"); err == nil {
		t.Errorf("%s still answers after Serve returned", url)
	}
}

func TestServeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, fake, gguf, want string
		printed                bool // the address may have been printed before the error
	}{
		{"server crashes", "crash", "", "address already in use", false},
		{"no model file", "serve", "/nonexistent/m.gguf", "no such file", false},
		{"server dies while serving", "brief", "", "runner process has terminated", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gguf := tc.gguf
			if gguf == "" {
				gguf = writeGGUF(t)
			}
			var out testproc.Buffer
			err := Serve(context.Background(), Config{Binary: os.Args[0], Dir: t.TempDir(), Env: []string{fakeEnv + "=" + tc.fake}},
				"tiny", gguf, 20*time.Second, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Serve = %v, want an error saying %q", err, tc.want)
			}
			if !tc.printed && out.String() != "" {
				t.Errorf("Serve printed an address though it failed:\n%s", out.String())
			}
		})
	}
}

// Create makes the model and returns with the server and its runner stopped.
func TestCreateStopsTheServer(t *testing.T) {
	dir := t.TempDir()
	if err := Create(context.Background(), Config{Binary: os.Args[0], Dir: dir, Env: []string{fakeEnv + "=serve"}, StopGrace: 2 * time.Second},
		"tiny", writeGGUF(t), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "ollama.log"))
	m := regexp.MustCompile(`--port (\d+)`).FindSubmatch(log) // the fake logs its runner's pid as the port
	if m == nil {
		t.Fatalf("no runner line in the log:\n%s", log)
	}
	if runner, _ := strconv.Atoi(string(m[1])); alive(runner) {
		t.Errorf("runner %d outlived Create", runner)
	}
	if err := Create(context.Background(), Config{Binary: os.Args[0], Dir: t.TempDir(), Env: []string{fakeEnv + "=serve"}},
		"tiny", "/nonexistent/m.gguf", 20*time.Second); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Create of a missing file = %v, want an error saying so", err)
	}
}

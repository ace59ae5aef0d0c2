//go:build ollama

package ollamatest_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enginelog "github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/ollamatest"
)

// captureDir, when set, receives the log lines the runner parser reads, one
// file per parallel setting, for internal/backend/testdata
// (`make capture-ollama-logs`).
var captureDir = flag.String("capture", "", "write the runner's log lines to this folder")

// The real engine's log tells its runner at p = 1, 2 and 4: slots, the
// context per slot, the whole KV cache, its type and flash attention.
func TestRunnerLogTellsTheSetting(t *testing.T) {
	for _, p := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("p%d", p), func(t *testing.T) {
			srv := ollamatest.Start(t, ollamatest.Options{Parallel: p, ContextLength: 1024})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			res, err := ollamatest.Post(ctx, client, srv.URL(), "/api/chat", chatBody(srv.Model, "hello world", 4, false))
			if err != nil || res.Status != 200 {
				t.Fatalf("chat: %v %+v", err, res)
			}
			if _, err := srv.WaitRunner(ctx, 1); err != nil {
				t.Fatal(err)
			}
			r := srv.Runners()[0]
			t.Logf("engine says: %s (from %v)", r.Summary(), r.From)
			if r.Parallel != p || r.SlotContext() != 1024 || r.CtxSize != 1024*p || len(r.Conflicts) > 0 {
				t.Errorf("runner %+v, want %d slots of 1024", r, p)
			}
			if r.KVCacheType == "" || r.KVBytes <= 0 || r.FlashAttention == "" {
				t.Errorf("runner %+v: KV cache type, size and flash attention not all told", r)
			}
			if *captureDir != "" {
				capture(t, srv.LogPath(), filepath.Join(*captureDir, fmt.Sprintf("p%d.log", p)), srv.HomeDir())
			}
		})
	}
}

// capture keeps the lines the parser reads (and the runner's start and
// readiness), with this machine's folders taken out.
func capture(t *testing.T, from, to, home string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(home)
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if _, ok := enginelog.ParseLogLine(line); ok || strings.Contains(line, "llama runner started") {
			line = strings.ReplaceAll(line, dir, "/state")
			line = strings.ReplaceAll(line, ollamatest.Binary(t), "/bin/ollama")
			keep = append(keep, line)
		}
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A context beyond the model's trained length (2048 for the generated
// model): v0.17 cuts it and says so; the runner gets the trained length.
func TestRunnerLogTellsATruncatedContext(t *testing.T) {
	srv := ollamatest.Start(t, ollamatest.Options{Parallel: 1, ContextLength: 4096})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	res, err := ollamatest.Post(ctx, client, srv.URL(), "/api/chat", chatBody(srv.Model, "hello world", 4, false))
	if err != nil || res.Status != 200 {
		t.Fatalf("chat: %v %+v", err, res)
	}
	r, err := srv.WaitRunner(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("engine says: %s", r.Summary())
	if r.SlotContext() != 2048 || len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "num_ctx 4096 cut to the trained 2048") {
		t.Errorf("runner %+v: want a context of 2048 and the engine's warning", r)
	}
	if *captureDir != "" {
		capture(t, srv.LogPath(), filepath.Join(*captureDir, "p1-ctx4096.log"), srv.HomeDir())
	}
}

// Package ollamatest runs a real Ollama for tests: it finds the cached
// binary, serves a generated GGUF model on a free loopback port with its own
// model store and home, and stops the server and its runner (the whole
// process group) when the test ends.
//
// The binary and model come from the environment that `make test-ollama`
// sets (EnvBinary, EnvModel). Without a binary the tests skip with a message
// saying how to run them, except under CI=true, where they fail.
package ollamatest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/gguf"
	"github.com/tokentrace/tokentrace/internal/ollamaproc"
)

// Environment variables the tests read (set by mk/ollama.mk).
const (
	// EnvBinary is the path of the ollama binary.
	EnvBinary = "TOKENTRACE_OLLAMA_BIN"
	// EnvModel is the path of the small generated GGUF model.
	EnvModel = "TOKENTRACE_MODEL_GGUF"
)

// ModelName is the name the generated model is created under.
const ModelName = "tokentrace-tiny"

// StartTimeout bounds starting the server and creating the model.
const StartTimeout = 2 * time.Minute

// Binary returns the ollama binary: skips the test when it is not configured,
// or fails it when CI=true (the build is part of `make test` there).
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: on CI the real Ollama must be built and tested (make test-ollama)", EnvBinary)
		}
		t.Skipf("%s is not set: run `make test-ollama` to build Ollama and run these tests", EnvBinary)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v", EnvBinary, err)
	}
	return bin
}

// Model returns the small generated model from EnvModel, or writes the default
// model (gguf.DefaultConfig) into the test's temporary folder.
func Model(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvModel); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", EnvModel, err)
		}
		return p
	}
	return WriteModel(t, gguf.DefaultConfig())
}

// WriteModel writes a generated model into the test's temporary folder.
func WriteModel(t testing.TB, c gguf.Config) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.gguf")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.Write(f, c); err != nil {
		f.Close()
		t.Fatalf("write model: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Options change the server a test gets.
type Options struct {
	// Parallel sets OLLAMA_NUM_PARALLEL when > 0.
	Parallel int
	// ContextLength sets OLLAMA_CONTEXT_LENGTH when > 0.
	ContextLength int
	// Env is added to the server's environment.
	Env []string
	// Model is the GGUF to serve; Model(t) when empty.
	Model string
	// Name is the model's name in requests; ModelName when empty.
	Name string
}

// Server is a real Ollama serving one generated model; its store, home and
// log (LogPath) are in the test's temporary folder.
type Server struct {
	*ollamaproc.Server
	// Model is the name to put in requests.
	Model string
}

// Start starts `ollama serve`, waits for it, creates the model from the
// generated GGUF and stops everything when the test ends. On failure the
// log's tail is in the test output.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	model := o.Model
	if model == "" {
		model = Model(t)
	}
	env := append([]string{}, o.Env...)
	if o.Parallel > 0 {
		env = append(env, "OLLAMA_NUM_PARALLEL="+strconv.Itoa(o.Parallel))
	}
	if o.ContextLength > 0 {
		env = append(env, "OLLAMA_CONTEXT_LENGTH="+strconv.Itoa(o.ContextLength))
	}
	s, err := ollamaproc.Start(ollamaproc.Config{Binary: bin, Dir: t.TempDir(), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop ollama: %v", err)
		}
		if t.Failed() {
			t.Logf("ollama log tail:\n%s", s.LogTail())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	name := o.Name
	if name == "" {
		name = ModelName
	}
	if err := s.CreateFromGGUF(ctx, name, model); err != nil {
		t.Fatal(err)
	}
	return &Server{Server: s, Model: name}
}

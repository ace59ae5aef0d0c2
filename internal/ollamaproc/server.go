// Package ollamaproc runs a real `ollama serve` apart from a user's own
// Ollama: its own model store and home under one folder, a free loopback
// port, nothing inherited from the caller's environment, and models created
// from local GGUF files. The process itself (its own process group, log,
// readiness, runner arguments, stop of the whole group) is a
// backend.Process.
package ollamaproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
)

// Config describes one server.
type Config struct {
	// Binary is the ollama executable (required).
	Binary string
	// Dir holds the server's state: OLLAMA_MODELS is Dir/models, HOME is
	// Dir/home and the log is Dir/ollama.log, so nothing is shared with a
	// user's own Ollama (required).
	Dir string
	// Addr is host:port to listen on; a free loopback port when empty.
	Addr string
	// Env is added to the server's environment, for example
	// "OLLAMA_NUM_PARALLEL=1". The server inherits nothing else.
	Env []string
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL;
	// DefaultStopGrace when 0.
	StopGrace time.Duration
	// Guard is backend.Config.Guard: a command that kills the server's
	// process group, runner included, if this process dies.
	Guard []string
}

// DefaultStopGrace is the default wait between SIGTERM and SIGKILL.
const DefaultStopGrace = 5 * time.Second

// Server is a running `ollama serve`.
type Server struct {
	cfg  Config
	addr string
	proc *backend.Process
}

// Start starts `ollama serve`; it does not wait for it to be ready (see
// WaitReady). The server and everything it spawns share a new process group.
func Start(cfg Config) (*Server, error) {
	if cfg.Binary == "" || cfg.Dir == "" {
		return nil, errors.New("start ollama: Binary and Dir are required")
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	s := &Server{cfg: cfg, addr: cfg.Addr}
	if s.addr == "" {
		var err error
		if s.addr, err = freeLoopbackAddr(); err != nil {
			return nil, fmt.Errorf("start ollama: %w", err)
		}
	}
	for _, d := range []string{s.ModelsDir(), s.HomeDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("start ollama: %w", err)
		}
	}
	env := append([]string{"HOME=" + s.HomeDir(), "OLLAMA_MODELS=" + s.ModelsDir(), "OLLAMA_HOST=" + s.addr}, cfg.Env...)
	proc, err := backend.Start(backend.Config{Name: "ollama", Path: cfg.Binary, Args: []string{"serve"}, Env: env,
		LogPath: s.LogPath(), BaseURL: s.URL(), StopTimeout: cfg.StopGrace, Guard: cfg.Guard})
	if err != nil {
		return nil, err
	}
	s.proc = proc
	return s, nil
}

// URL is the server's base URL, like http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.addr }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// ModelsDir is the server's OLLAMA_MODELS.
func (s *Server) ModelsDir() string { return filepath.Join(s.cfg.Dir, "models") }

// HomeDir is the server's HOME.
func (s *Server) HomeDir() string { return filepath.Join(s.cfg.Dir, "home") }

// LogPath is the file that receives everything the server and its runner write.
func (s *Server) LogPath() string { return filepath.Join(s.cfg.Dir, "ollama.log") }

// Pid is the server's process id; its process group id is the same.
func (s *Server) Pid() int { return s.proc.Pid() }

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.proc.Done() }

// WaitReady waits until the server answers /api/version, the process exits,
// or ctx ends.
func (s *Server) WaitReady(ctx context.Context) error {
	_, err := s.proc.WaitReady(ctx, 0)
	return err
}

// Runners lists the runners started so far, oldest first.
func (s *Server) Runners() []backend.RunnerArgs { return s.proc.Log().Runners() }

// WaitRunner waits until at least n runners have started and returns the
// n-th (from 1).
func (s *Server) WaitRunner(ctx context.Context, n int) (backend.RunnerArgs, error) {
	return s.proc.Log().WaitRunner(ctx, n)
}

// LogTail is the last lines of the server's log.
func (s *Server) LogTail() string { return s.proc.Log().Tail() }

// Stop ends the server and its runner (see backend.Process.Stop): SIGTERM to
// the process group, then SIGKILL after the grace period or when ctx ends.
// It returns once no live process of the group is left. Later calls return
// the first result.
func (s *Server) Stop(ctx context.Context) error { return s.proc.Stop(ctx) }

// Create runs `ollama create name -f modelfile` against this server.
func (s *Server) Create(ctx context.Context, name, modelfile string) error {
	cmd := exec.CommandContext(ctx, s.cfg.Binary, "create", name, "-f", modelfile)
	cmd.Env = []string{"HOME=" + s.HomeDir(), "OLLAMA_HOST=" + s.addr}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ollama create %s: %w: %s", name, err, lastLine(out))
	}
	return nil
}

// Template is the chat template of the generated models: it serves both
// /api/chat and /v1/chat/completions.
const Template = `{{ range .Messages }}{{ .Role }}: {{ .Content }}
{{ end }}assistant:`

// Modelfile is a Modelfile that creates a model from a local GGUF with Template.
func Modelfile(gguf string) string {
	return fmt.Sprintf("FROM %s\nTEMPLATE \"\"\"%s\"\"\"\n", gguf, Template)
}

// CreateFromGGUF creates model name from a local GGUF file, writing its
// Modelfile into the server's Dir.
func (s *Server) CreateFromGGUF(ctx context.Context, name, gguf string) error {
	abs, err := filepath.Abs(gguf)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	path := filepath.Join(s.cfg.Dir, "Modelfile."+strings.NewReplacer("/", "_", ":", "_").Replace(name))
	if err := os.WriteFile(path, []byte(Modelfile(abs)), 0o644); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return s.Create(ctx, name, path)
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

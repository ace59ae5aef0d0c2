// Package ollamaproc starts and stops a real `ollama serve` as a child
// process: isolated model store and home, a loopback port, its own process
// group (so the inference runner it spawns goes with it), readiness, model
// creation from a local GGUF, and the runner arguments read from its log.
package ollamaproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes one server.
type Config struct {
	// Binary is the ollama executable (required).
	Binary string
	// Dir holds the server's state: OLLAMA_MODELS is Dir/models and HOME is
	// Dir/home, so nothing is shared with a user's own Ollama (required).
	Dir string
	// Addr is host:port to listen on; a free loopback port when empty.
	Addr string
	// Env is added to the server's environment, for example
	// "OLLAMA_NUM_PARALLEL=1". The server inherits nothing else.
	Env []string
	// Log receives every line the server and its runner write; nil drops them.
	Log io.Writer
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL;
	// DefaultStopGrace when 0.
	StopGrace time.Duration
}

// DefaultStopGrace is the default wait between SIGTERM and SIGKILL.
const DefaultStopGrace = 5 * time.Second

// logTail is how many log lines a Server keeps for error messages.
const logTail = 40

// Server is a running `ollama serve`.
type Server struct {
	cfg  Config
	addr string
	cmd  *exec.Cmd

	exited  chan struct{} // closed when the server process has exited
	waitErr error         // how it exited; read after exited is closed
	logDone chan struct{} // closed when the log pipe is drained

	mu      sync.Mutex
	tail    []string
	runners []RunnerArgs
	changed chan struct{} // closed and replaced when a runner starts

	stopOnce sync.Once
	stopErr  error
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
	addr := cfg.Addr
	if addr == "" {
		var err error
		if addr, err = freeLoopbackAddr(); err != nil {
			return nil, fmt.Errorf("start ollama: %w", err)
		}
	}
	s := &Server{
		cfg: cfg, addr: addr,
		exited: make(chan struct{}), logDone: make(chan struct{}), changed: make(chan struct{}),
	}
	models, home := s.ModelsDir(), s.HomeDir()
	for _, d := range []string{models, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("start ollama: %w", err)
		}
	}
	cmd := exec.Command(cfg.Binary, "serve")
	cmd.Env = append([]string{"HOME=" + home, "OLLAMA_MODELS=" + models, "OLLAMA_HOST=" + addr}, cfg.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start ollama: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start ollama %s: %w", cfg.Binary, err)
	}
	pw.Close() // the children hold the write end; EOF comes when all are gone
	s.cmd = cmd
	go s.readLog(pr)
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
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

// Pid is the server's process id; its process group id is the same.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// WaitReady waits until the server answers /api/version, the process exits,
// or ctx ends.
func (s *Server) WaitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/api/version", nil)
		if err != nil {
			return fmt.Errorf("wait for ollama: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for ollama at %s: %w; log tail:\n%s", s.addr, ctx.Err(), s.LogTail())
		case <-s.exited:
			return fmt.Errorf("ollama exited before it was ready (%v); log tail:\n%s", s.waitErr, s.LogTail())
		case <-tick.C:
		}
	}
}

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

// Runners lists the runners started so far, oldest first.
func (s *Server) Runners() []RunnerArgs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RunnerArgs(nil), s.runners...)
}

// WaitRunner waits until at least n runners have started and returns the
// n-th (from 1).
func (s *Server) WaitRunner(ctx context.Context, n int) (RunnerArgs, error) {
	for {
		s.mu.Lock()
		if len(s.runners) >= n {
			r := s.runners[n-1]
			s.mu.Unlock()
			return r, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-s.logDone:
			return RunnerArgs{}, errors.New("ollama's log ended before a runner started")
		case <-ctx.Done():
			return RunnerArgs{}, fmt.Errorf("wait for ollama runner %d: %w", n, ctx.Err())
		}
	}
}

// LogTail is the last lines of the server's log.
func (s *Server) LogTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// Stop ends the server and its runner: SIGTERM to the process group, then
// SIGKILL after the grace period or when ctx ends. It returns once the log
// is drained. Later calls return the first result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		pgid := -s.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		grace := time.NewTimer(s.cfg.StopGrace)
		defer grace.Stop()
		select {
		case <-s.exited:
		case <-grace.C:
		case <-ctx.Done():
		}
		// The runner may outlive a server that exited: kill what is left.
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-s.exited
		waitGroupGone(pgid, s.cfg.StopGrace)
		select {
		case <-s.logDone:
		case <-time.After(s.cfg.StopGrace):
			s.stopErr = errors.New("stop ollama: its log pipe stayed open")
		}
	})
	return s.stopErr
}

func (s *Server) readLog(r io.ReadCloser) {
	defer close(s.logDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if s.cfg.Log != nil {
			fmt.Fprintln(s.cfg.Log, line)
		}
		s.mu.Lock()
		if len(s.tail) == logTail {
			s.tail = s.tail[1:]
		}
		s.tail = append(s.tail, line)
		if ra, ok := ParseRunnerLine(line); ok {
			s.runners = append(s.runners, ra)
			close(s.changed)
			s.changed = make(chan struct{})
		}
		s.mu.Unlock()
	}
	// A line longer than the buffer ends the scan: drain so the children
	// never block on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// waitGroupGone waits, at most d, until no live process is left in the
// group: SIGKILL is delivered asynchronously, and the runner is not our
// child, so once orphaned it may stay a zombie until init reaps it.
func waitGroupGone(pgid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for groupAlive(-pgid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// groupAlive reports whether a process of group pgid is alive (not a
// zombie), from /proc; without /proc, whether the group has any process.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
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

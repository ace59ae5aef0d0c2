// Package backend owns an inference engine's process: it starts `ollama
// serve`, the simulator or another engine in its own process group, logs it
// to a file, waits until it answers, watches its log and its exit, and stops
// the whole group (gracefully, then killed) until no process of it is left.
// It is the one implementation of an engine's process: internal/ollamaproc
// (a real Ollama for tests and `make ollama-serve`) is built on it.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Config describes one start of an engine.
type Config struct {
	// Name says which engine this is in messages ("ollama", "simulator").
	Name string
	// Path is the program; Args its arguments.
	Path string
	Args []string
	// Env is the whole environment of the process (the caller decides what
	// it inherits).
	Env []string
	// LogPath receives the process's stdout and stderr (appended).
	LogPath string
	// BaseURL is where the engine listens, e.g. http://127.0.0.1:11500.
	BaseURL string
	// ReadyPath is polled with GET until it answers 200; "/api/version"
	// when empty.
	ReadyPath string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL;
	// 10 s when 0.
	StopTimeout time.Duration
	// Guard, when set, is a command (program and arguments) that Start runs
	// beside the engine; it receives the engine's process group as its last
	// argument and kills that group when the supervisor's end of its stdin
	// closes, so even the engine's own children (Ollama's runner) die when
	// the supervisor is killed. See GuardMain.
	Guard []string
}

// Validate checks that the configuration can start a process.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("backend: no program to start")
	case c.BaseURL == "":
		return errors.New("backend: no base URL to wait for")
	case c.LogPath == "":
		return errors.New("backend: no log file")
	}
	return nil
}

// Process is a running engine.
type Process struct {
	cfg     Config
	cmd     *exec.Cmd
	log     *os.File
	out     *os.File // read end of the engine's output pipe
	watch   *LogWatch
	guard   *exec.Cmd
	guardW  io.WriteCloser
	started time.Time

	done    chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// Start starts the engine. It returns once the process runs; call
// WaitReady to wait until it answers.
func Start(cfg Config) (*Process, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReadyPath == "" {
		cfg.ReadyPath = "/api/version"
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	logf, err := os.OpenFile(cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", cfg.Name, err)
	}
	// The engine and its children (Ollama's runner) write into one pipe;
	// its end, once every writer is gone, tells that the whole output is in.
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	p := &Process{cfg: cfg, log: logf, out: pr, watch: newLogWatch(logf), done: make(chan struct{})}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = cfg.Env
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = groupAttr()
	p.started = time.Now()
	err = cmd.Start()
	pw.Close() // the engine holds its own copy
	if err != nil {
		pr.Close()
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", cfg.Name, cfg.Path, err)
	}
	p.cmd = cmd
	go func() {
		_, _ = io.Copy(p.watch, pr)
		p.watch.end()
	}()
	if len(cfg.Guard) > 0 {
		if err := p.startGuard(); err != nil {
			killGroup(cmd.Process.Pid)
			_ = cmd.Wait()
			<-p.watch.ended
			pr.Close()
			logf.Close()
			return nil, err
		}
	}
	go func() {
		err := cmd.Wait()
		// The last lines tell why it exited: wait for them, but not for a
		// child that keeps the pipe open after the engine is gone.
		t := time.NewTimer(time.Second)
		select {
		case <-p.watch.ended:
		case <-t.C:
		}
		t.Stop()
		p.waitErr = err
		close(p.done)
	}()
	return p, nil
}

func (p *Process) startGuard() error {
	args := append(append([]string(nil), p.cfg.Guard[1:]...), fmt.Sprint(p.cmd.Process.Pid))
	g := exec.Command(p.cfg.Guard[0], args...)
	w, err := g.StdinPipe()
	if err != nil {
		return fmt.Errorf("start %s guard: %w", p.cfg.Name, err)
	}
	g.Stderr = p.log
	if err := g.Start(); err != nil {
		return fmt.Errorf("start %s guard: %w", p.cfg.Name, err)
	}
	p.guard, p.guardW = g, w
	return nil
}

// Pid is the engine's process id (also its process group).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Log is what the engine has said so far that matters to a measurement.
func (p *Process) Log() *LogWatch { return p.watch }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// WaitReady polls the ready path until it answers 200 and returns the time
// since Start. It fails at once if the process exits first, and when the
// timeout (if > 0) passes or ctx ends.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	url := p.cfg.BaseURL + p.cfg.ReadyPath
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
		}
		select {
		case <-p.done:
			return 0, fmt.Errorf("%s exited before it was ready (%v); last log lines:\n%s",
				p.cfg.Name, p.waitErr, p.watch.Tail())
		case <-ctx.Done():
			return 0, fmt.Errorf("%s not ready at %s after %v: %w; last log lines:\n%s",
				p.cfg.Name, url, time.Since(p.started).Round(time.Millisecond), ctx.Err(), p.watch.Tail())
		case <-tick.C:
		}
	}
}

// Stop ends the whole process group: SIGTERM, then SIGKILL after the stop
// timeout or when ctx ends. It is idempotent and returns once no live
// process of the group is left and the output is read to its end; an exit
// caused by the stop signal is not an error.
func (p *Process) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() { p.stopErr = p.stop(ctx) })
	return p.stopErr
}

func (p *Process) stop(ctx context.Context) error {
	pid := p.cmd.Process.Pid
	select {
	case <-p.done:
	default:
		termGroup(pid)
		t := time.NewTimer(p.cfg.StopTimeout)
		select {
		case <-p.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	// The engine's children (Ollama's runner) share its group and may
	// outlive it: kill whatever is left.
	killGroup(pid)
	<-p.done
	var errs []error
	// SIGKILL is delivered asynchronously, and an orphaned runner is
	// reaped by init, not by us: wait until no live process is left.
	deadline := time.Now().Add(p.cfg.StopTimeout)
	for groupAlive(pid) {
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("stop %s: process group %d still runs %v after SIGKILL", p.cfg.Name, pid, p.cfg.StopTimeout))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t := time.NewTimer(p.cfg.StopTimeout)
	select {
	case <-p.watch.ended:
	case <-t.C:
		errs = append(errs, fmt.Errorf("stop %s: a process outside its group keeps its output open", p.cfg.Name))
		p.out.Close() // ends the copy
		<-p.watch.ended
	}
	t.Stop()
	p.out.Close()
	if p.guard != nil {
		p.guardW.Close()
		_ = p.guard.Wait()
	}
	errs = append(errs, p.log.Close())
	return errors.Join(errs...)
}

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/freeport"
	"github.com/tokentrace/tokentrace/internal/testproc"
)

// proc is a program the test started in its own process group; t.Cleanup stops the whole group.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testproc.Buffer
	done chan struct{}
	err  error // set when done is closed
}

// start runs bin with args and extra environment, output kept for the failure message. The process
// and its children are stopped when the test ends: SIGTERM to the group, SIGKILL after 10 s.
func start(t *testing.T, name, bin string, args []string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &testproc.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s output (last 4 KiB) ---\n%s", name, tail(p.out.String(), 4096))
		}
	})
	return p
}

// stop ends the process group, gracefully first; safe to call again.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// freePort returns a loopback TCP port below the ephemeral range (see package freeport).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func hostPort(port int) string { return freeport.Host(port) }

// waitHTTP polls url until it answers 200, the process dies, or the timeout passes.
func waitHTTP(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if done, err := p.exited(); done {
			t.Fatalf("%s exited before %s answered: %v\n%s", p.name, url, err, tail(p.out.String(), 4096))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s not ready after %v: %v\n%s", p.name, url, timeout, last, tail(p.out.String(), 4096))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// eventually retries check every interval until it succeeds or timeout passes, then fails with the
// last error.
func eventually(t *testing.T, timeout, interval time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}

// tool is the path of a program the make stage provides through the environment.
func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run this test through `make test-e2e`", env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return p
}

// commands are the repository's commands the tests run, built once per test binary into a temporary
// folder (removed by TestMain).
var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
	packages = map[string]string{"proxy": "./proxy", "loadtest": "./loadtest", "supervisor": "./supervisor"}
)

func command(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "tokentrace-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	p := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", p, packages[name])
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", packages[name], err, out)
	}
	built[name] = p
	return p
}

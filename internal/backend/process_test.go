package backend

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/testproc"
	"go.uber.org/goleak"
)

// The test binary doubles as the engine, its runner, the guard and a
// supervisor: `<test binary> helper MODE ARGS…`.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "helper" {
		os.Exit(helper(os.Args[2], os.Args[3:]))
	}
	goleak.VerifyTestMain(m)
}

func helper(mode string, args []string) int {
	switch mode {
	case "serve": // args: addr parallel; a fake Ollama with a runner child
		runner := exec.Command(os.Args[0], "helper", "sleep")
		runner.Stderr = os.Stderr
		if err := runner.Start(); err != nil {
			return 1
		}
		fmt.Fprintf(os.Stderr, "level=INFO msg=\"starting llama server\" cmd=\"runner --ctx-size %d --batch-size 512 --parallel %s --port 1\"\n",
			4096*atoi(args[1]), args[1])
		http.HandleFunc("/api/version", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"version":"0.0.0"}`) })
		fmt.Fprintln(os.Stderr, http.ListenAndServe(args[0], nil))
		return 1
	case "oom": // dies on start like an engine whose model cannot fit
		fmt.Fprintln(os.Stderr, "Error: model requires more system memory (9.0 GiB) than is available (1.0 GiB)")
		return 3
	case "sleep":
		time.Sleep(time.Minute)
		return 0
	case "guard":
		if err := GuardMain(args, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "supervise": // args: dir addr; starts serve with a guard, prints the pgid, waits to be killed
		p, err := Start(Config{Name: "fake", Path: os.Args[0], Args: []string{"helper", "serve", args[1], "1"},
			LogPath: filepath.Join(args[0], "engine.log"), BaseURL: "http://" + args[1],
			Guard: []string{os.Args[0], "helper", "guard"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := p.WaitReady(context.Background(), 20*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Wait for the runner too, so the test kills a full tree.
		for groupSize(p.Pid()) < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println(p.Pid())
		time.Sleep(time.Minute)
		return 0
	}
	return 2
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for groupSize(pgid) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has %d processes", pgid, groupSize(pgid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartReadyStopWholeGroup(t *testing.T) {
	dir := t.TempDir()
	addr := testproc.FreeAddr(t)
	p, err := Start(Config{Name: "fake", Path: os.Args[0], Args: []string{"helper", "serve", addr, "2"},
		LogPath: filepath.Join(dir, "engine.log"), BaseURL: "http://" + addr, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(context.Background()) })
	ready, err := p.WaitReady(context.Background(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ready <= 0 {
		t.Errorf("time to ready %v", ready)
	}
	ra, ok := p.Log().Runner()
	if !ok || ra.Parallel != 2 || ra.CtxSize != 8192 {
		t.Errorf("runner args = %+v, %v; want parallel 2, ctx-size 8192", ra, ok)
	}
	for groupSize(p.Pid()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitGroupGone(t, p.Pid())
	if exited, _ := p.Exited(); !exited {
		t.Error("Exited() false after Stop")
	}
	log, _ := os.ReadFile(filepath.Join(dir, "engine.log"))
	if !strings.Contains(string(log), "starting llama server") {
		t.Errorf("log file lacks the engine's output: %q", log)
	}
}

func TestExitBeforeReadyIsAnErrorWithTheLog(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(Config{Name: "fake", Path: os.Args[0], Args: []string{"helper", "oom"},
		LogPath: filepath.Join(dir, "engine.log"), BaseURL: "http://" + testproc.FreeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(context.Background()) })
	_, err = p.WaitReady(context.Background(), 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "requires more system memory") {
		t.Fatalf("WaitReady error = %v; want the engine's last log lines", err)
	}
	if n, line := p.Log().MemoryErrors(); n != 1 || line == "" {
		t.Errorf("memory errors = %d %q, want 1", n, line)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{}, {Path: "x"}, {Path: "x", BaseURL: "http://x"}} {
		if _, err := Start(c); err == nil {
			t.Errorf("Start(%+v) did not fail", c)
		}
	}
	if _, err := Start(Config{Name: "x", Path: "/nonexistent/engine", BaseURL: "http://x", LogPath: filepath.Join(t.TempDir(), "l")}); err == nil {
		t.Error("starting a missing program did not fail")
	}
}

// The supervisor killed with SIGKILL cannot stop anything: the kernel kills
// the engine (Pdeathsig) and the guard kills what the engine started.
func TestGroupDiesWithKilledSupervisor(t *testing.T) {
	dir := t.TempDir()
	sup := exec.Command(os.Args[0], "helper", "supervise", dir, testproc.FreeAddr(t))
	sup.Stderr = os.Stderr
	out, err := sup.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Process.Kill(); sup.Wait() })
	var pgid int
	if _, err := fmt.Fscan(out, &pgid); err != nil {
		t.Fatalf("read engine pgid: %v", err)
	}
	if groupSize(pgid) < 2 {
		t.Fatalf("engine group %d has %d processes, want engine and runner", pgid, groupSize(pgid))
	}
	if err := sup.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sup.Wait()
	waitGroupGone(t, pgid)
}

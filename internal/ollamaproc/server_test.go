package ollamaproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as a fake `ollama serve` when this variable is set:
// it serves /api/version, logs a runner line and spawns a child that sleeps,
// as the real server spawns its runner.
const fakeEnv = "OLLAMAPROC_FAKE"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "create" {
		os.Exit(fakeCreate(os.Args[2:]))
	}
	switch os.Getenv(fakeEnv) {
	case "serve":
		fakeServe()
		return
	case "runner":
		time.Sleep(time.Hour)
		return
	case "brief": // serves for a second, then dies as a runner may
		go func() {
			time.Sleep(time.Second)
			fmt.Fprintln(os.Stderr, "Error: llama runner process has terminated: signal: killed")
			os.Exit(1)
		}()
		fakeServe()
		return
	case "crash":
		fmt.Fprintln(os.Stderr, "Error: listen tcp: address already in use")
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

func fakeServe() {
	child := exec.Command(os.Args[0])
	child.Env = []string{fakeEnv + "=runner"}
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "time=x level=INFO msg=\"starting llama server\" cmd=\"%s runner --model /m --ctx-size 6144 --batch-size 512 --threads 2 --parallel 3 --port %d\"\n",
		os.Args[0], child.Process.Pid)
	http.HandleFunc("/api/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"version":"0.0.0"}`)
	})
	if err := http.ListenAndServe(os.Getenv("OLLAMA_HOST"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// fakeCreate is `ollama create NAME -f MODELFILE`: it accepts a Modelfile
// whose FROM file exists.
func fakeCreate(args []string) int {
	if len(args) != 3 || args[1] != "-f" || os.Getenv("OLLAMA_HOST") == "" {
		fmt.Fprintf(os.Stderr, "Error: bad create arguments %q\n", args)
		return 1
	}
	b, err := os.ReadFile(args[2])
	from, _, _ := strings.Cut(strings.TrimPrefix(string(b), "FROM "), "\n")
	if _, serr := os.Stat(from); err != nil || serr != nil {
		fmt.Fprintf(os.Stderr, "Error: no model file: %v %v\n", err, serr)
		return 1
	}
	fmt.Println("success")
	return 0
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// A zombie has ended; only its parent's reaping is missing.
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

func TestStartReadyRunnerStop(t *testing.T) {
	s, err := Start(Config{Binary: os.Args[0], Dir: t.TempDir(), Env: []string{fakeEnv + "=serve"}, StopGrace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.ModelsDir(), s.HomeDir()} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("state folder %s: %v", d, err)
		}
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %q is not on loopback", s.URL())
	}
	r, err := s.WaitRunner(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Parallel != 3 || r.CtxSize != 6144 || r.Model != "/m" {
		t.Errorf("runner %+v, want parallel 3, ctx 6144, model /m", r)
	}
	runnerPid := r.Port // the fake logs its child's pid as the port
	if !alive(runnerPid) {
		t.Fatalf("fake runner %d not running", runnerPid)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	default:
		t.Error("Stop returned before the server exited")
	}
	if alive(runnerPid) {
		t.Errorf("runner %d outlived Stop: the process group was not stopped", runnerPid)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestWaitReadyWhenServerExits(t *testing.T) {
	s, err := Start(Config{Binary: os.Args[0], Dir: t.TempDir(), Env: []string{fakeEnv + "=crash"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = s.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("WaitReady = %v, want the exit and the log tail", err)
	}
	if _, err := s.WaitRunner(ctx, 1); err == nil {
		t.Error("WaitRunner succeeded on a server that logged no runner")
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Config{Dir: t.TempDir()}); err == nil {
		t.Error("Start without a binary succeeded")
	}
	_, err := Start(Config{Binary: "/nonexistent/ollama", Dir: t.TempDir()})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start with a missing binary = %v, want not-exist", err)
	}
}

func TestModelfile(t *testing.T) {
	got := Modelfile("/models/tiny.gguf")
	want := "FROM /models/tiny.gguf\nTEMPLATE \"\"\"{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}assistant:\"\"\"\n"
	if got != want {
		t.Errorf("Modelfile =\n%s\nwant\n%s", got, want)
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokentrace/tokentrace/internal/simulator"
	"github.com/tokentrace/tokentrace/internal/subcommand"
	"github.com/tokentrace/tokentrace/internal/testproc"
)

func TestParseSimulate(t *testing.T) {
	env := map[string]string{"OLLAMA_HOST": "0.0.0.0:9999", "OLLAMA_NUM_PARALLEL": "2", "OLLAMA_CONTEXT_LENGTH": "8192",
		"OLLAMA_MAX_QUEUE": "7", "OLLAMA_KEEP_ALIVE": "30"}
	getenv := func(k string) string { return env[k] }
	o, err := parseSimulate(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "0.0.0.0:9999" || o.cfg.Parallel != 2 || o.cfg.ContextLength != 8192 || o.cfg.MaxQueue != 7 ||
		o.cfg.KeepAlive != 30*time.Second {
		t.Errorf("from the environment: %+v", o)
	}
	o, err = parseSimulate([]string{"--listen", "127.0.0.1:1", "--parallel", "4", "--ctx", "2048", "--max-queue", "3",
		"--memory-limit", "6GiB", "--profile", "tiny", "--time-scale", "0.5", "--thinking-tokens", "5"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:1" || o.cfg.Parallel != 4 || o.cfg.ContextLength != 2048 || o.cfg.MaxQueue != 3 ||
		o.cfg.MemoryLimit != 6<<30 || o.cfg.Profile != "tiny" || o.cfg.TimeScale != 0.5 || o.cfg.ThinkingTokens != 5 {
		t.Errorf("flags win over the environment: %+v", o)
	}
	for _, args := range [][]string{
		{"--parallel", "x"}, {"--profile", "nope"}, {"--thinking-tokens", "-1"}, {"--memory-limit", "lots"}, {"--time-scale", "-1"}, {"extra"}, {"--nope"},
	} {
		if _, err := parseSimulate(args, func(string) string { return "" }); !errors.As(err, new(subcommand.UsageError)) {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
	if _, err := parseSimulate(nil, func(k string) string {
		if k == "OLLAMA_NUM_PARALLEL" {
			return "four"
		}
		return ""
	}); !errors.As(err, new(subcommand.UsageError)) {
		t.Errorf("a bad OLLAMA_NUM_PARALLEL: %v", err)
	}
}

func TestParseKeepAlive(t *testing.T) {
	for in, want := range map[string]time.Duration{"5m": 5 * time.Minute, "30": 30 * time.Second, "-1": -1, "0": time.Nanosecond, "-1m": -1} {
		if got, err := parseKeepAlive(in); err != nil || got != want {
			t.Errorf("parseKeepAlive(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseKeepAlive("soon"); err == nil {
		t.Error("parseKeepAlive accepted soon")
	}
}

func TestOllamaHost(t *testing.T) {
	for in, want := range map[string]string{
		"": "127.0.0.1:11434", "0.0.0.0": "0.0.0.0:11434", "127.0.0.1:8080": "127.0.0.1:8080",
		"http://example:1234": "example:1234", "https://example": "example:443", "[::1]:5": "[::1]:5",
	} {
		if got := ollamaHost(in); got != want {
			t.Errorf("ollamaHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"6GiB": 6 << 30, "512MiB": 512 << 20, "1.5GB": 1500000000, "1000": 1000} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestServeSimulator serves, answers, and stops cleanly when its context ends.
func TestServeSimulator(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	o, err := parseSimulate([]string{"--listen", "127.0.0.1:0", "--profile", "tiny"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	served := make(chan error, 1)
	var logs testproc.Buffer // the server's log
	go func() { served <- serveSimulator(ctx, o, &logs, ready) }()
	addr := <-ready
	resp, err := http.Post("http://"+addr+"/api/generate", "application/json",
		strings.NewReader(`{"model":"tiny","prompt":"hi","options":{"num_predict":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(body), "\n") != 4 || resp.Header.Get("X-Simulator-Request-Id") == "" {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the simulator did not stop")
	}
	if !strings.Contains(logs.String(), "Listening on") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestServeSimulatorExitsOnOOM: with --exit-on-oom a model that does not
// fit ends the command with an error naming the memory.
func TestServeSimulatorExitsOnOOM(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	o, err := parseSimulate([]string{"--listen", "127.0.0.1:0", "--memory-limit", "1GiB", "--exit-on-oom",
		"--time-scale", "0.01"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	served := make(chan error, 1)
	var logs testproc.Buffer // the server's log
	go func() { served <- serveSimulator(context.Background(), o, &logs, ready) }()
	addr := <-ready
	resp, err := http.Post("http://"+addr+"/api/chat", "application/json",
		strings.NewReader(`{"model":"qwen2.5:7b-instruct","messages":[{"role":"user","content":"hi"}]}`))
	if err == nil {
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "model requires more system memory") {
			t.Errorf("serve ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the simulator did not exit")
	}
	if !strings.Contains(logs.String(), "model request too large for system") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestSimulateProfileFlags: every profile parameter can be overridden.
func TestSimulateProfileFlags(t *testing.T) {
	none := func(string) string { return "" }
	o, err := parseSimulate([]string{"--profile", "tiny", "--step-per-seq", "20ms", "--prefill-per-token", "1ms",
		"--load-time", "0s", "--kv-heads", "4", "--weights-bytes", "1GiB", "--late-join-rate", "0.75",
		"--late-join-rate-together", "0.5"}, none)
	if err != nil {
		t.Fatal(err)
	}
	p := o.cfg.CustomProfile
	if p == nil || p.Name != "tiny" || p.StepPerSeq != 20*time.Millisecond || p.PrefillPerToken != time.Millisecond ||
		p.KVHeads != 4 || p.WeightsBytes != 1<<30 || p.StepBase != 500*time.Microsecond || p.LateJoinRate != 0.75 ||
		p.LateJoinRateTogether != 0.5 {
		t.Errorf("custom profile %+v", p)
	}
	if o, _ := parseSimulate([]string{"--profile", "tiny"}, none); o.cfg.CustomProfile != nil {
		t.Error("a custom profile without overrides")
	}
	for _, args := range [][]string{{"--step-base", "fast"}, {"--layers", "0"}, {"--heads", "5"}, {"--weights-bytes", "x"},
		{"--late-join-rate", "1.5"}, {"--late-join-rate", "-0.1"}, {"--late-join-rate", "NaN"},
		{"--late-join-rate-together", "2"}} {
		if _, err := parseSimulate(args, none); !errors.As(err, new(subcommand.UsageError)) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestSimulateProfileFile: --profile takes a profile file, and the profile
// flags override it.
func TestSimulateProfileFile(t *testing.T) {
	none := func(string) string { return "" }
	p := simulator.Profiles["tiny"]
	p.Name, p.StepBase, p.PromptTokenRatio, p.LateJoinRate = "fitted", 7*time.Millisecond, 2.5, 0.6
	b, err := simulator.MarshalProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fitted.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseSimulate([]string{"--profile", path}, none)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.cfg.CustomProfile; got == nil || got.Name != "fitted" || got.StepBase != 7*time.Millisecond || got.PromptTokenRatio != 2.5 ||
		got.LateJoinRate != 0.6 {
		t.Errorf("profile from file %+v", got)
	}
	o, err = parseSimulate([]string{"--profile", path, "--step-per-seq", "3ms"}, none)
	if err != nil || o.cfg.CustomProfile.StepPerSeq != 3*time.Millisecond || o.cfg.CustomProfile.StepBase != 7*time.Millisecond {
		t.Errorf("file and override: %+v, %v", o.cfg.CustomProfile, err)
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing.json"), "nope"} {
		if _, err := parseSimulate([]string{"--profile", bad}, none); !errors.As(err, new(subcommand.UsageError)) {
			t.Errorf("--profile %s: %v, want a usage error", bad, err)
		}
	}
}

// Command bench measures what the proxy costs: against a fast fake upstream
// on loopback it runs, side by side, a direct connection, a bare
// httputil.ReverseProxy and the instrumented gateway, and reports added
// TTFT (p50/p99) at 1 and many concurrent streams, proxy CPU time per
// streamed token, allocations per chunk and memory per in-flight stream.
//
// Each proxy runs in a child process (this binary with -serve), so its CPU
// time and memory are its own; the upstream and the clients run here.
//
//	go run ./proxy/bench            # or: make bench-proxy
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

type options struct {
	serve, upstream string
	conc            int
	perStream       int
	singles         int
	tokens          int
	singleTokens    int
	hold            int
	longHold        int
	gap             time.Duration
	cpuProfile      string
	variants        string
	rounds          int
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	flag.StringVar(&o.serve, "serve", "", "internal: serve this proxy variant (bare or gateway) as a child process")
	flag.StringVar(&o.upstream, "upstream", "", "internal: the upstream the child proxies to")
	flag.IntVar(&o.conc, "streams", 256, "concurrent streams of the many-streams run")
	flag.IntVar(&o.perStream, "per-stream", 3, "requests each concurrent stream sends, one after another")
	flag.IntVar(&o.singles, "singles", 100, "requests of the one-stream run")
	flag.IntVar(&o.tokens, "tokens", 64, "tokens per answer in the many-streams run")
	flag.IntVar(&o.singleTokens, "single-tokens", 16, "tokens per answer in the one-stream run")
	flag.IntVar(&o.hold, "hold", 32, "tokens each stream has received when memory is read")
	flag.IntVar(&o.longHold, "long-hold", 512, "tokens in, for the second memory reading (0: skip)")
	flag.DurationVar(&o.gap, "gap", 10*time.Millisecond, "upstream pause between tokens")
	flag.StringVar(&o.variants, "variants", "direct,bare,gateway,gateway-events-off", "what to measure, in order (direct must come first for added TTFT)")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of the many-streams run, alternating between variants")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write each proxy child's CPU profile to FILE.<variant>")
	flag.Parse()
	if o.serve != "" {
		if err := serveProxy(o.serve, o.upstream, o.cpuProfile); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			return 1
		}
		return 0
	}
	if o.conc < 1 || o.rounds < 1 || o.perStream < 1 || o.singles < 1 || o.tokens < 2 || o.hold < 1 || o.longHold < 0 {
		fmt.Fprintln(os.Stderr, "bench: -streams, -rounds, -per-stream, -singles must be ≥ 1, -tokens ≥ 2, -hold ≥ 1, -long-hold ≥ 0")
		return 2
	}
	rep, err := measure(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	rep.write(os.Stdout, o)
	return 0
}

// measure runs every variant against one fake upstream. The proxies run
// all the time in their child processes; the many-streams run goes round
// after round through the variants, so a neighbour's burst of CPU falls on
// one round of each rather than on one variant.
func measure(o options) (*report, error) {
	up := &fakeUpstream{gap: o.gap, release: make(chan struct{})}
	srv := httptest.NewServer(up)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, DisableCompression: true}}
	defer client.CloseIdleConnections()

	type target struct {
		base  string
		child *childProc
		vr    variantReport
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			if t.child != nil {
				_ = t.child.stop()
			}
		}
	}()
	for _, variant := range strings.Split(o.variants, ",") {
		t := &target{base: srv.URL, vr: variantReport{name: variant}}
		if variant != "direct" {
			child, err := startChild(variant, srv.URL, o.cpuProfile)
			if err != nil {
				return nil, err
			}
			t.base, t.child = child.base, child
		}
		targets = append(targets, t)
	}
	for _, t := range targets {
		if err := warmAndSingle(o, client, t.base, t.child != nil, &t.vr); err != nil {
			return nil, fmt.Errorf("%s: %w", t.vr.name, err)
		}
	}
	for range o.rounds {
		for _, t := range targets {
			if err := manyRound(o, client, t.base, t.child != nil, &t.vr); err != nil {
				return nil, fmt.Errorf("%s: %w", t.vr.name, err)
			}
		}
	}
	rep := &report{}
	for _, t := range targets {
		if t.child != nil {
			if err := memoryPhases(o, up, client, t.base, &t.vr); err != nil {
				return nil, fmt.Errorf("%s: %w", t.vr.name, err)
			}
			if err := t.child.stop(); err != nil {
				return nil, fmt.Errorf("%s: %w", t.vr.name, err)
			}
			t.child = nil
		}
		rep.variants = append(rep.variants, t.vr)
	}
	return rep, nil
}

type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	base  string
}

// startChild runs this binary as the proxy variant; it dies with us.
func startChild(variant, upstream, cpuProfile string) (*childProc, error) {
	args := []string{"-serve", variant, "-upstream", upstream}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile+"."+variant)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s proxy: %w", variant, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("read %s proxy address from %q: %v", variant, line, err)
	}
	return &childProc{cmd: cmd, stdin: stdin, base: "http://" + addr}, nil
}

func (c *childProc) stop() error {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("proxy child: %w", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		return fmt.Errorf("proxy child did not stop; killed")
	}
}

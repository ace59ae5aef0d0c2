// Package proxyproc runs the proxy command as a child process for the
// benchmarks and the soak test, samples its health (resident memory, open
// file descriptors, goroutines), and serves restartable loopback upstreams.
package proxyproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokentrace/tokentrace/internal/freeport"
)

// Proxy is a running proxy process.
type Proxy struct {
	URL   string // where clients connect
	Admin string // base URL of /metrics, /readyz
	cmd   *exec.Cmd
	done  chan error
	log   *os.File
}

// Start runs the proxy binary at bin in front of upstreams, with extra
// flags, listening on free loopback ports; its log goes to logPath. It
// returns once /healthz answers.
func Start(ctx context.Context, bin, logPath string, upstreams []string, extra ...string) (*Proxy, error) {
	listen, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	admin, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	args := []string{"--listen", listen, "--admin-listen", admin}
	for _, u := range upstreams {
		args = append(args, "--upstream", u)
	}
	args = append(args, extra...)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create proxy log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proxy{URL: "http://" + listen, Admin: "http://" + admin, cmd: cmd, done: make(chan error, 1), log: logf}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.Admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			logf.Close()
			return nil, fmt.Errorf("the proxy exited at start (%v); see %s", err, logPath)
		case <-ctx.Done():
			_ = p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.Stop()
			return nil, fmt.Errorf("the proxy did not answer /healthz within 30 s; see %s", logPath)
		}
	}
}

// Pid is the proxy's process id.
func (p *Proxy) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proxy) Exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to 40 s for the drain, then kills.
func (p *Proxy) Stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("the proxy did not exit 40 s after SIGTERM; killed")
	}
}

// Health is one sample of the proxy process.
type Health struct {
	At         time.Time
	RSS        uint64 // bytes resident
	OpenFDs    int
	Goroutines int
}

// Sample reads the proxy's resident memory and open descriptors from
// /proc and its goroutines from its own /metrics (go_goroutines).
func (p *Proxy) Sample(client *http.Client) (Health, error) {
	h := Health{At: time.Now()}
	pid := p.Pid()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return h, fmt.Errorf("read the proxy's status: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return h, fmt.Errorf("read VmRSS %q: %w", rest, err)
			}
			h.RSS = kb << 10
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return h, fmt.Errorf("list the proxy's descriptors: %w", err)
	}
	h.OpenFDs = len(fds)
	resp, err := client.Get(p.Admin + "/metrics")
	if err != nil {
		return h, fmt.Errorf("scrape the proxy: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return h, fmt.Errorf("read go_goroutines %q: %w", rest, err)
			}
			h.Goroutines = int(v)
			return h, nil
		}
	}
	if err := sc.Err(); err != nil {
		return h, fmt.Errorf("read the proxy's metrics: %w", err)
	}
	return h, errors.New("the proxy's /metrics has no go_goroutines")
}

// Upstream serves a handler on a fixed loopback address and can be
// stopped (every connection cut at once, as when a server dies) and
// started again on the same address.
type Upstream struct {
	Addr    string
	handler http.Handler
	srv     *http.Server
	served  chan error
}

// NewUpstream serves h on a free loopback port.
func NewUpstream(h http.Handler) (*Upstream, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	u := &Upstream{Addr: addr, handler: h}
	return u, u.Start()
}

// URL is the upstream's base URL.
func (u *Upstream) URL() string { return "http://" + u.Addr }

// Start listens again (retrying for a few seconds while the port is still held).
func (u *Upstream) Start() error {
	var l net.Listener
	var err error
	for range 100 {
		if l, err = net.Listen("tcp", u.Addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("listen on %s again: %w", u.Addr, err)
	}
	u.srv = &http.Server{Handler: u.handler, ReadHeaderTimeout: 10 * time.Second}
	u.served = make(chan error, 1)
	srv := u.srv
	go func() { u.served <- srv.Serve(l) }()
	return nil
}

// Kill closes the listener and cuts every connection.
func (u *Upstream) Kill() {
	if u.srv == nil {
		return
	}
	_ = u.srv.Close()
	<-u.served
	u.srv = nil
}

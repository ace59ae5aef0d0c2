package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokentrace/tokentrace/internal/testproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBadFlagsExitNonZero(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{
		{"--upstream", "ftp://x"},
		{"--token-events", "some"},
		{"--route", "novalue"},
		{"extra"},
		{"--nosuchflag"},
		{"--client-idle-timeout", "0s"},
		{"--stream-idle-timeout", "-1s"},
	} {
		var stderr bytes.Buffer
		if code := run(args, env, &stderr, nil); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	bad := func(k string) string {
		if k == "OTEL_TRACES_SAMPLER" {
			return "bogus"
		}
		return ""
	}
	if code := run(nil, bad, &stderr, nil); code != 2 || !strings.Contains(stderr.String(), "OTEL_TRACES_SAMPLER") {
		t.Errorf("bad OTEL env: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	badProto := func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_PROTOCOL" {
			return "http/json"
		}
		return ""
	}
	if code := run(nil, badProto, &stderr, nil); code != 2 || !strings.Contains(stderr.String(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("bad OTLP protocol: exit %d, stderr %q", code, stderr.String())
	}
}

// TestServesAndDrainsOnSIGTERM runs the command: a stream in flight when
// SIGTERM arrives finishes, then the command exits 0.
func TestServesAndDrainsOnSIGTERM(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"model":"m1","message":{"content":"a"},"done":false}`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, `{"model":"m1","message":{"content":""},"done":true,"eval_count":1}`)
	}))
	t.Cleanup(up.Close)
	p := startRun(t, up.URL, "--drain-timeout", "10s")
	listen, admin, stop, done, stderr, client := p.listen, p.admin, p.stop, p.done, p.stderr, p.client
	resp, err := client.Post("http://"+listen+"/api/chat", "application/json", strings.NewReader(`{"model":"m1"}`))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadBytes('\n'); err != nil {
		t.Fatal(err)
	}
	mresp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`service_name="tokentrace-proxy"`, "process_resident_memory_bytes ", "process_open_fds ", "go_goroutines "} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	stop <- syscall.SIGTERM
	select {
	case code := <-done:
		t.Fatalf("exited %d with a stream in flight", code)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	rest, err := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(rest), `"done":true`) {
		t.Errorf("drained stream: %q, %v", rest, err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after drain; stderr %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after the drain")
	}
}

// TestIdleClientConnectionsAreClosed: a keep-alive connection that sends
// nothing more is closed after --client-idle-timeout.
func TestIdleClientConnectionsAreClosed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(up.Close)
	p := startRun(t, up.URL, "--client-idle-timeout", "300ms")
	t.Cleanup(func() {
		p.stop <- syscall.SIGTERM
		if code := <-p.done; code != 0 {
			t.Errorf("exit %d; stderr %s", code, p.stderr.String())
		}
	})
	conn, err := net.Dial("tcp", p.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /api/tags HTTP/1.1\r\nHost: proxy\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idleFrom := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF (closed by the proxy)", err)
	}
	if d := time.Since(idleFrom); d < 250*time.Millisecond {
		t.Errorf("closed after %v, before the 300ms idle timeout", d)
	}
}

// runningProxy is the command started by startRun, in this process.
type runningProxy struct {
	listen, admin string
	stop          chan os.Signal // send SIGTERM to drain and exit
	done          chan int       // the exit code
	stderr        *testproc.Buffer
	client        *http.Client
}

// startRun runs the command in front of upstream, with no span export and
// extra flags, on free loopback ports, and returns once /readyz answers 200.
// The caller stops it through stop.
func startRun(t *testing.T, upstream string, extra ...string) *runningProxy {
	t.Helper()
	p := &runningProxy{listen: testproc.FreeAddr(t), admin: testproc.FreeAddr(t),
		stop: make(chan os.Signal, 1), done: make(chan int, 1), stderr: &testproc.Buffer{},
		client: &http.Client{Transport: &http.Transport{}}}
	t.Cleanup(p.client.CloseIdleConnections)
	env := func(k string) string {
		if k == "OTEL_TRACES_EXPORTER" {
			return "none"
		}
		return ""
	}
	args := append([]string{"--listen", p.listen, "--admin-listen", p.admin, "--upstream", upstream}, extra...)
	go func() { p.done <- run(args, env, p.stderr, p.stop) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := p.client.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case code := <-p.done:
			t.Fatalf("proxy exited %d before it was ready; stderr %s", code, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not ready: %v; stderr %s", err, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

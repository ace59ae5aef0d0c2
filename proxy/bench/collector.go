package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokentrace/tokentrace/internal/freeport"
)

// collector is the project's OpenTelemetry collector (the otelcol build of
// otel-collector/manifest.yaml) receiving the gateway's spans over
// OTLP/gRPC, as in production; it batches them and hands them to the
// debug exporter, so what it costs is the receiving side of a real export.
type collector struct {
	OTLP    string // host:port of the OTLP/gRPC receiver
	metrics string // URL of its own /metrics
	cmd     *exec.Cmd
	log     string // its output
	done    chan struct{}
}

const collectorConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
  batch:
    timeout: 1s
    send_batch_size: 1024
exporters:
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: %s
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
`

// startCollector runs bin with a configuration written to dir and returns
// once its health check answers.
func startCollector(bin, dir string) (*collector, error) {
	var ports [3]int
	for i := range ports {
		p, err := freeport.Port()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	c := &collector{OTLP: freeport.Host(ports[0]), metrics: fmt.Sprintf("http://%s/metrics", freeport.Host(ports[2])),
		log: filepath.Join(dir, "otelcol.log"), done: make(chan struct{})}
	health := freeport.Host(ports[1])
	cfg := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, collectorConfig, c.OTLP, health, ports[2]), 0o644); err != nil {
		return nil, fmt.Errorf("write collector config: %w", err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		return nil, fmt.Errorf("create collector log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	c.cmd = exec.Command(bin, "--config="+cfg)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start collector %s: %w", bin, err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			return nil, fmt.Errorf("collector exited before it was ready:\n%s", c.logTail())
		default:
		}
		resp, err := http.Get("http://" + health + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("collector not ready after 60 s: %v\n%s", err, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// acceptedSpans is how many spans the collector's OTLP receiver accepted.
func (c *collector) acceptedSpans(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.metrics, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read collector metrics: %w", err)
	}
	defer resp.Body.Close()
	var total float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "otelcol_receiver_accepted_spans") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("collector metrics: %q: %w", line, err)
		}
		total += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read collector metrics: %w", err)
	}
	if !found {
		return 0, nil // nothing received yet: the series appears with the first span
	}
	return int64(total), nil
}

func (c *collector) pid() int { return c.cmd.Process.Pid }

func (c *collector) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_, _ = waitOrKill(c.cmd.Process, c.done, 10*time.Second)
}

// logTail is the end of the collector's output, for an error message.
func (c *collector) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

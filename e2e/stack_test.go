//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	// Every process a test started was stopped, so no goroutine waits on one; idle keep-alive
	// connections to the stopped servers are closed first.
	http.DefaultClient.CloseIdleConnections()
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// stack is the collector, Prometheus and Jaeger on loopback, wired as compose wires them.
type stack struct {
	collectorOTLP  string // host:port of the collector's OTLP/gRPC receiver
	collector      *proc
	prometheusURL  string
	jaegerQueryURL string
}

// startJaeger runs Jaeger v2 with memory storage; it returns its OTLP/gRPC address and query URL.
func startJaeger(t *testing.T) (otlp, query string) {
	t.Helper()
	otlp, query = hostPort(freePort(t)), hostPort(freePort(t))
	cfg, err := filepath.Abs(filepath.Join("testdata", "jaeger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, "jaeger", tool(t, "TOKENTRACE_JAEGER_BIN"), []string{"--config", cfg},
		"JAEGER_OTLP_GRPC="+otlp, "JAEGER_QUERY_HTTP="+query, "JAEGER_QUERY_GRPC="+hostPort(freePort(t)))
	waitHTTP(t, p, "http://"+query+"/api/services", 60*time.Second)
	return otlp, "http://" + query
}

// startPrometheus runs the pinned Prometheus (built by `make prometheus`, the release compose.yaml pins) on
// the repository's prometheus.yml and rules with the flags compose passes (remote-write receiver, exemplar
// storage). The config's two scrape targets, which are compose service names, become loopback addresses:
// Prometheus itself, and collectorTelemetry (the collector's own /metrics, host:port).
func startPrometheus(t *testing.T, collectorTelemetry string) string {
	t.Helper()
	addr := hostPort(freePort(t))
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	for old, new := range map[string]string{`"otel-collector:8888"`: `"` + collectorTelemetry + `"`, `"localhost:9090"`: `"` + addr + `"`} {
		if !strings.Contains(text, old) {
			t.Fatalf("prometheus.yml has no scrape target %s", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(filepath.Join(repoRoot, "prometheus", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	// rule_files are relative to the config file, as in compose's /etc/prometheus.
	if err := os.Symlink(rules, filepath.Join(dir, "rules")); err != nil {
		t.Fatal(err)
	}
	p := start(t, "prometheus", tool(t, "TOKENTRACE_PROMETHEUS_BIN"), []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + t.TempDir(),
		"--web.listen-address=" + addr,
		"--web.enable-remote-write-receiver",
		"--enable-feature=exemplar-storage",
	})
	waitHTTP(t, p, "http://"+addr+"/-/ready", 60*time.Second)
	return "http://" + addr
}

// startCollector runs the built collector on otel-collector/config.yaml, every endpoint from the
// environment as the config documents; its own /metrics listens on telemetry (host:port, a free one when
// empty).
func startCollector(t *testing.T, proxyAdmin, tracesOTLP, prometheusURL, telemetry string) (otlp string, p *proc) {
	t.Helper()
	otlp = hostPort(freePort(t))
	if telemetry == "" {
		telemetry = hostPort(freePort(t))
	}
	telemetryHost, telemetryPort, err := net.SplitHostPort(telemetry)
	if err != nil {
		t.Fatal(err)
	}
	health := hostPort(freePort(t))
	p = start(t, "otelcol", tool(t, "TOKENTRACE_OTELCOL_BIN"),
		[]string{"--config=" + filepath.Join(repoRoot, "otel-collector", "config.yaml")},
		"OTELCOL_OTLP_GRPC_ENDPOINT="+otlp,
		"OTELCOL_OTLP_HTTP_ENDPOINT="+hostPort(freePort(t)),
		"OTELCOL_PROXY_METRICS="+proxyAdmin,
		"OTELCOL_SCRAPE_INTERVAL=1s",
		"OTELCOL_TRACES_ENDPOINT="+tracesOTLP,
		"OTELCOL_REMOTE_WRITE_URL="+prometheusURL+"/api/v1/write",
		"OTELCOL_TELEMETRY_HOST="+telemetryHost,
		"OTELCOL_TELEMETRY_PORT="+telemetryPort,
		"OTELCOL_HEALTH_ENDPOINT="+health,
	)
	// The health_check extension answers 200 once every pipeline has started, as compose's healthcheck asks.
	waitHTTP(t, p, "http://"+health+"/", 60*time.Second)
	waitHTTP(t, p, "http://"+telemetry+"/metrics", 30*time.Second)
	return otlp, p
}

// getJSON fetches u and decodes its JSON body into v.
func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, tail(string(body), 512))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", u, err)
	}
	return nil
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery runs an instant PromQL query now.
func promQuery(base, expr string) ([]promSample, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(base+"/api/v1/query?query="+url.QueryEscape(expr), &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, r.Error)
	}
	return r.Data.Result, nil
}

// exemplarSet is the answer of /api/v1/query_exemplars for one series.
type exemplarSet struct {
	SeriesLabels map[string]string `json:"seriesLabels"`
	Exemplars    []struct {
		Labels map[string]string `json:"labels"`
		Value  string            `json:"value"`
	} `json:"exemplars"`
}

func promExemplars(base, expr string, from, to time.Time) ([]exemplarSet, error) {
	var r struct {
		Status string        `json:"status"`
		Error  string        `json:"error"`
		Data   []exemplarSet `json:"data"`
	}
	q := url.Values{"query": {expr}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)}}
	if err := getJSON(base+"/api/v1/query_exemplars?"+q.Encode(), &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("exemplars %s: %s", expr, r.Error)
	}
	return r.Data, nil
}

// promLabelValues is Grafana's label_values(metric, label): the label's values on the metric's series.
func promLabelValues(base, label, metric string) ([]string, error) {
	var r struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := getJSON(base+"/api/v1/label/"+url.PathEscape(label)+"/values?"+url.Values{"match[]": {metric}}.Encode(), &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("label values of %s: %s", label, r.Error)
	}
	return r.Data, nil
}

//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/dashboards"
)

const (
	simModel        = "qwen2.5:7b-instruct" // the simulator's default profile serves this name
	proxyService    = "tokentrace-proxy"
	loadtestService = "tokentrace-loadtest"
	scenario        = "e2e"
)

// startSimulator runs `supervisor simulate` (Ollama's API without a model), time compressed.
func startSimulator(t *testing.T, timeScale string) string {
	t.Helper()
	addr := hostPort(freePort(t))
	p := start(t, "simulator", command(t, "supervisor"), []string{"simulate", "--listen", addr, "--time-scale", timeScale})
	waitHTTP(t, p, "http://"+addr+"/api/version", 30*time.Second)
	return "http://" + addr
}

// startProxy runs the proxy in front of upstream, sending spans over OTLP/gRPC to otlp (host:port).
func startProxy(t *testing.T, name, upstream, admin, otlp string) string {
	t.Helper()
	addr := hostPort(freePort(t))
	p := start(t, name, command(t, "proxy"),
		[]string{"--listen", addr, "--admin-listen", admin, "--upstream", upstream},
		"OTEL_SERVICE_NAME="+proxyService,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+otlp,
		"OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_BSP_SCHEDULE_DELAY=200",
	)
	waitHTTP(t, p, "http://"+admin+"/readyz", 30*time.Second)
	return "http://" + addr
}

// startAttack runs `loadtest attack` against target with tracing to otlp; wait for it with finish.
func startAttack(t *testing.T, target, otlp string, args ...string) *proc {
	t.Helper()
	out := filepath.Join(t.TempDir(), "results.bin")
	args = append([]string{"attack", "-url", target, "-model", simModel, "-output", out}, args...)
	return start(t, "loadtest", command(t, "loadtest"), args,
		"OTEL_SERVICE_NAME="+loadtestService,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+otlp,
		"OTEL_EXPORTER_OTLP_INSECURE=true",
	)
}

// finish waits for a load-tester run and fails the test unless it exited 0.
func finish(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("loadtest attack did not finish in 3 minutes\n%s", tail(p.out.String(), 4096))
	}
	if p.err != nil {
		t.Fatalf("loadtest attack: %v\n%s", p.err, tail(p.out.String(), 4096))
	}
}

// chat sends one streaming Ollama chat request and returns its status and how long the whole
// response took.
func chat(t *testing.T, base, model string) (int, time.Duration) {
	t.Helper()
	r := post(t, base+"/api/chat", fmt.Sprintf(
		`{"model":%q,"messages":[{"role":"user","content":"Say hello."}],"stream":true,"options":{"num_predict":16}}`, model), "")
	return r.status, r.took
}

// response is what post saw.
type response struct {
	status int
	took   time.Duration
	body   string // the first KiB, for failure messages
}

// post sends a JSON body (with a scenario header when scenario is set) and reads the whole response.
func post(t *testing.T, u, body, scenario string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if scenario != "" {
		req.Header.Set("X-Tokentrace-Scenario", scenario)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var head strings.Builder
	if _, err := io.Copy(io.Discard, io.TeeReader(resp.Body, &limitWriter{w: &head, n: 1024})); err != nil {
		t.Fatalf("read response of %s: %v", u, err)
	}
	return response{status: resp.StatusCode, took: time.Since(start), body: head.String()}
}

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// TestStackEndToEnd drives the load tester through the proxy to the simulator, with the collector,
// Prometheus and Jaeger on loopback, then checks what reached the stores.
func TestStackEndToEnd(t *testing.T) {
	jaegerOTLP, jaegerURL := startJaeger(t)
	telemetry := hostPort(freePort(t))
	promURL := startPrometheus(t, telemetry)
	sim := startSimulator(t, "0.05")
	admin := hostPort(freePort(t))
	collectorOTLP, _ := startCollector(t, admin, jaegerOTLP, promURL, telemetry)
	proxy := startProxy(t, "proxy", sim, admin, collectorOTLP)

	// Traffic spread over time, so rate() sees counters grow: a Prometheus series starts at its first
	// sample, and a burst that fits between two scrapes shows no increase at all. The Ollama-API run
	// keeps going while the queries below are checked.
	began := time.Now()
	background := startAttack(t, proxy, collectorOTLP, "-api", "ollama", "-rate", "4", "-concurrency", "8",
		"-duration", "45s", "-max-tokens", "24", "-scenario", scenario)
	openai := startAttack(t, proxy, collectorOTLP, "-api", "openai", "-rate", "1", "-concurrency", "4",
		"-duration", "15s", "-max-tokens", "24", "-scenario", scenario+"-openai")
	// Failures, so the errors panel has something to show: unknown models, and requests the server
	// refuses for the known model in the e2e scenario.
	unknown := `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}],"stream":true}`
	empty := fmt.Sprintf(`{"model":%q,"messages":[],"stream":true}`, simModel)
	for i := range 8 {
		if r := post(t, proxy+"/api/chat", unknown, ""); r.status != http.StatusNotFound {
			t.Fatalf("request %d for an unknown model through the proxy: status %d, want 404: %s", i, r.status, r.body)
		}
		if r := post(t, proxy+"/v1/chat/completions", empty, scenario); r.status != http.StatusBadRequest {
			t.Fatalf("request %d without messages through the proxy: status %d, want 400: %s", i, r.status, r.body)
		}
		time.Sleep(2 * time.Second)
	}
	finish(t, openai)

	t.Run("one trace from load tester to upstream", func(t *testing.T) {
		eventually(t, 60*time.Second, time.Second, "a complete request trace in Jaeger", func() error {
			traces, err := jaegerTraces(jaegerURL, loadtestService)
			if err != nil {
				return err
			}
			if len(traces) == 0 {
				return fmt.Errorf("no traces of %s yet", loadtestService)
			}
			var errs []string
			for _, tr := range traces {
				if err := checkRequestTrace(tr, loadtestService, proxyService); err == nil {
					return nil
				} else if len(errs) < 3 {
					errs = append(errs, err.Error())
				}
			}
			return fmt.Errorf("%d traces, none complete: %s", len(traces), strings.Join(errs, "; "))
		})
	})

	t.Run("service graph: caller, proxy and upstream", func(t *testing.T) {
		upstream, err := hostOf(sim)
		if err != nil {
			t.Fatal(err)
		}
		// The load tester's client span pairs with the proxy's server span under it. The simulator sends no
		// spans, so the proxy's upstream client span becomes an edge to a virtual node named by its
		// server.address. This test's own requests carry no trace context: an edge from "user".
		want := []graphEdge{
			{loadtestService, proxyService, ""},
			{proxyService, upstream, "virtual_node"},
			{"user", proxyService, "virtual_node"},
		}
		eventually(t, 90*time.Second, 3*time.Second, "service graph edges in Prometheus", func() error {
			return checkServiceGraph(promURL, want)
		})
		if edges, err := serviceGraphEdges(promURL); err == nil {
			t.Logf("service graph: %v", edges)
		}
		expr := fmt.Sprintf(`traces_service_graph_request_total{client=%q, server=%q, virtual_node="server"}`, proxyService, upstream)
		if err := hasFiniteSample(promURL, expr); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	})

	t.Run("every dashboard query returns data", func(t *testing.T) {
		files, err := dashboards.Files()
		if err != nil {
			t.Fatal(err)
		}
		valueSets := []struct {
			name   string
			values map[string]string
		}{
			{"all", map[string]string{"model": ".*", "upstream": ".*", "scenario": ".*", "__rate_interval": "2m"}},
			{"selected", map[string]string{"model": regexpQuote(simModel), "upstream": "ollama", "scenario": scenario, "__rate_interval": "2m"}},
		}
		for _, f := range files {
			queries, err := dashboards.PrometheusQueries(f.JSON)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range queries {
				for _, vs := range valueSets {
					expr, err := dashboards.Expand(q.Expr, vs.values)
					if err != nil {
						t.Fatal(err)
					}
					t.Run(q.Dashboard+"/"+q.Panel+"/"+q.RefID+"/"+vs.name, func(t *testing.T) {
						eventually(t, 90*time.Second, 2*time.Second, expr, func() error {
							return hasFiniteSample(promURL, expr)
						})
					})
				}
			}
		}
	})

	t.Run("dashboard variables list the traffic's values", func(t *testing.T) {
		files, err := dashboards.Files()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"model": simModel, "upstream": "ollama", "scenario": scenario}
		for _, f := range files {
			vars, err := dashboards.LabelValuesVariables(f.JSON)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vars {
				t.Run(f.Name+"/"+v.Name, func(t *testing.T) {
					eventually(t, 60*time.Second, 2*time.Second, "label values of "+v.Label, func() error {
						values, err := promLabelValues(promURL, v.Label, v.Metric)
						if err != nil {
							return err
						}
						if !slices.Contains(values, want[v.Name]) {
							return fmt.Errorf("label_values(%s, %s) = %q, want %q among them", v.Metric, v.Label, values, want[v.Name])
						}
						return nil
					})
				})
			}
		}
	})

	t.Run("traces-to-metrics queries return data", func(t *testing.T) {
		tm := tempoDatasource(t).JSONData.TracesToMetrics
		// Grafana replaces $__tags with the span's tags mapped to labels; the span here is the proxy's.
		tags := fmt.Sprintf(`gen_ai_request_model="%s"`, simModel)
		for _, q := range tm.Queries {
			expr := strings.ReplaceAll(q.Query, "$$__tags", tags)
			t.Run(q.Name, func(t *testing.T) {
				eventually(t, 90*time.Second, 2*time.Second, expr, func() error {
					return hasFiniteSample(promURL, expr)
				})
			})
		}
	})

	t.Run("the Prometheus compose pins", func(t *testing.T) {
		var info struct {
			Data struct {
				Version string `json:"version"`
			} `json:"data"`
		}
		if err := getJSON(promURL+"/api/v1/status/buildinfo", &info); err != nil {
			t.Fatal(err)
		}
		img := service(t, loadCompose(t), "prometheus").Image
		if want := strings.TrimPrefix(img[strings.LastIndex(img, ":")+1:], "v"); info.Data.Version != want {
			t.Errorf("the tested Prometheus is %s, compose runs %s", info.Data.Version, img)
		}
	})

	t.Run("rules loaded and evaluating", func(t *testing.T) {
		eventually(t, 120*time.Second, 5*time.Second, "every rule group loaded and healthy", func() error {
			return rulesHealthy(promURL, []string{"tokentrace-serving", "tokentrace-slo", "tokentrace-slo-alerts", "tokentrace-pipeline"})
		})
		for _, expr := range []string{
			`gen_ai_request_model:gen_ai_client_operation_time_to_first_chunk_seconds:quantile_rate5m{quantile="0.95"}`,
			`gen_ai_request_model:tokentrace_client_time_per_output_token_seconds:quantile_rate5m{quantile="0.99"}`,
			`gen_ai_request_model:gen_ai_client_token_usage_output:rate5m`,
			`gen_ai_request_model:tokentrace_request_errors:ratio_rate5m`,
			`slo:tokentrace_request_errors:ratio_rate1h`,
			`slo:tokentrace_ttft_slow:ratio_rate5m`,
		} {
			t.Run(expr, func(t *testing.T) {
				eventually(t, 120*time.Second, 5*time.Second, expr, func() error {
					return hasFiniteSample(promURL, expr)
				})
			})
		}
	})

	t.Run("TTFT exemplars stored and linked to traces", func(t *testing.T) {
		var traceID string
		eventually(t, 60*time.Second, 2*time.Second, "TTFT exemplars in Prometheus", func() error {
			sets, err := promExemplars(promURL, "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", began.Add(-time.Minute), time.Now().Add(time.Minute))
			if err != nil {
				return err
			}
			for _, s := range sets {
				for _, e := range s.Exemplars {
					if id := e.Labels["trace_id"]; id != "" {
						traceID = id
						return nil
					}
				}
			}
			return fmt.Errorf("no exemplar with a trace_id among %d series", len(sets))
		})
		eventually(t, 30*time.Second, time.Second, "the exemplar's trace in Jaeger", func() error {
			tr, err := jaegerTraceByID(jaegerURL, traceID)
			if err != nil {
				return err
			}
			return checkRequestTrace(tr, loadtestService, proxyService)
		})
	})

	finish(t, background)
}

// hasFiniteSample runs expr and wants at least one series with a finite value.
func hasFiniteSample(promURL, expr string) error {
	res, err := promQuery(promURL, expr)
	if err != nil {
		return err
	}
	for _, s := range res {
		str, _ := s.Value[1].(string)
		if v, err := strconv.ParseFloat(str, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return nil
		}
	}
	return fmt.Errorf("%d series, none with a finite value", len(res))
}

// rulesHealthy wants every named rule group loaded, and none of its rules failing to evaluate.
func rulesHealthy(promURL string, groups []string) error {
	var r struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(promURL+"/api/v1/rules", &r); err != nil {
		return err
	}
	var loaded []string
	for _, g := range r.Data.Groups {
		loaded = append(loaded, g.Name)
		for _, rule := range g.Rules {
			if rule.Health != "ok" {
				return fmt.Errorf("group %s rule %s: health %q %s", g.Name, rule.Name, rule.Health, rule.LastError)
			}
		}
	}
	for _, g := range groups {
		if !slices.Contains(loaded, g) {
			return fmt.Errorf("rule groups %v, want %s among them", loaded, g)
		}
	}
	return nil
}

// regexpQuote makes s a literal RE2 pattern inside a PromQL double-quoted string.
func regexpQuote(s string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(s), `\`, `\\`)
}

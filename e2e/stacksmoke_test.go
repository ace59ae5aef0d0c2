//go:build e2e && stacksmoke

package e2e

// `make stack-smoke`: the shipped compose stack on a machine with a Docker engine (the test machines of
// this project have none, so this has not run there; docs/observability.md). It starts the stack with the
// demo load, waits for every healthcheck, then checks through Grafana's API what a user would look at.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/dashboards"
)

const grafanaURL = "http://127.0.0.1:3000"

func TestStackSmoke(t *testing.T) {
	compose := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", append([]string{"compose", "--profile", "demo"}, args...)...)
		cmd.Dir = repoRoot
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("docker compose %s: %v", strings.Join(args, " "), err)
		}
	}
	// The helpers shared with the e2e tests use the default client: it signs in to Grafana.
	http.DefaultClient.Transport = grafanaAuth{http.DefaultTransport}
	defer func() { http.DefaultClient.Transport = nil }()
	compose("up", "--build", "--detach", "--wait", "--wait-timeout", "600")
	t.Log("the stack stays up: `docker compose --profile demo down` stops it")

	// Failures for the errors panel: an unknown model, through the proxy.
	for range 5 {
		resp, err := http.Post("http://127.0.0.1:11435/api/chat", "application/json",
			strings.NewReader(`{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatalf("proxy: %v", err)
		}
		resp.Body.Close()
	}

	t.Run("data sources healthy", func(t *testing.T) {
		for _, d := range loadDatasources(t).Datasources {
			var h struct {
				Status  string `json:"status"`
				Message string `json:"message"`
			}
			eventually(t, 2*time.Minute, 5*time.Second, d.Name+" health", func() error {
				if err := grafanaGet("/api/datasources/uid/"+d.UID+"/health", &h); err != nil {
					return err
				}
				if h.Status != "OK" {
					return fmt.Errorf("status %s: %s", h.Status, h.Message)
				}
				return nil
			})
		}
	})

	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("dashboards load and their queries return data", func(t *testing.T) {
		for _, f := range files {
			var meta struct {
				UID string `json:"uid"`
			}
			if err := json.Unmarshal(f.JSON, &meta); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Dashboard struct {
					Title string `json:"title"`
				} `json:"dashboard"`
			}
			if err := grafanaGet("/api/dashboards/uid/"+meta.UID, &got); err != nil {
				t.Fatalf("dashboard %s: %v", meta.UID, err)
			}
			queries, err := dashboards.PrometheusQueries(f.JSON)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range queries {
				expr, err := dashboards.Expand(q.Expr, map[string]string{"model": ".*", "upstream": ".*", "scenario": ".*", "__rate_interval": "2m"})
				if err != nil {
					t.Fatal(err)
				}
				t.Run(q.Panel+"/"+q.RefID, func(t *testing.T) {
					eventually(t, 3*time.Minute, 5*time.Second, expr, func() error {
						return hasFiniteSample(grafanaURL+"/api/datasources/proxy/uid/prometheus", expr)
					})
				})
			}
		}
	})

	t.Run("service graph series", func(t *testing.T) {
		eventually(t, 3*time.Minute, 5*time.Second, "traces_service_graph_request_total", func() error {
			return hasFiniteSample(grafanaURL+"/api/datasources/proxy/uid/prometheus", "sum(traces_service_graph_request_total)")
		})
	})

	t.Run("Tempo finds the traces dashboard's query and serves a trace", func(t *testing.T) {
		q := strings.ReplaceAll(dashboards.TraceSearchQuery(), "${model:regex}", dashboards.GrafanaRegexFormat([]string{simModel}))
		q = strings.ReplaceAll(q, "$min_duration", "0ms")
		var search struct {
			Traces []struct {
				TraceID string `json:"traceID"`
			} `json:"traces"`
		}
		eventually(t, 3*time.Minute, 5*time.Second, "a trace for "+q, func() error {
			if err := grafanaGet("/api/datasources/proxy/uid/tempo/api/search?"+url.Values{"q": {q}, "limit": {"5"}}.Encode(), &search); err != nil {
				return err
			}
			if len(search.Traces) == 0 {
				return fmt.Errorf("no traces yet")
			}
			return nil
		})
		var trace map[string]any
		if err := grafanaGet("/api/datasources/proxy/uid/tempo/api/traces/"+search.Traces[0].TraceID, &trace); err != nil {
			t.Fatal(err)
		}
	})
}

// grafanaAuth signs requests to Grafana in as the admin user compose provisions.
type grafanaAuth struct{ next http.RoundTripper }

func (a grafanaAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	if "http://"+r.URL.Host == grafanaURL {
		r = r.Clone(r.Context())
		password := os.Getenv("GRAFANA_ADMIN_PASSWORD")
		if password == "" {
			password = "tokentrace"
		}
		r.SetBasicAuth("admin", password)
	}
	return a.next.RoundTrip(r)
}

// grafanaGet asks Grafana's API.
func grafanaGet(path string, v any) error {
	resp, err := http.Get(grafanaURL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, tail(string(body), 512))
	}
	return json.Unmarshal(body, v)
}

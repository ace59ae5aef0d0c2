package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// grafanaDatasources is the part of grafana/provisioning/datasources/datasources.yaml the stack relies on.
type grafanaDatasources struct {
	APIVersion  int          `yaml:"apiVersion"`
	Datasources []datasource `yaml:"datasources"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

// datasource is one entry of the provisioning file.
type datasource = struct {
	Name     string `yaml:"name"`
	UID      string `yaml:"uid"`
	Type     string `yaml:"type"`
	URL      string `yaml:"url"`
	JSONData struct {
		ExemplarTraceIDDestinations []struct {
			Name          string `yaml:"name"`
			DatasourceUID string `yaml:"datasourceUid"`
		} `yaml:"exemplarTraceIdDestinations"`
		TracesToMetrics *struct {
			DatasourceUID string `yaml:"datasourceUid"`
			Tags          []struct {
				Key   string `yaml:"key"`
				Value string `yaml:"value"`
			} `yaml:"tags"`
			Queries []struct {
				Name  string `yaml:"name"`
				Query string `yaml:"query"`
			} `yaml:"queries"`
		} `yaml:"tracesToMetrics"`
	} `yaml:"jsonData"`
}

// tempoDatasource is the provisioned Tempo data source, with its traces-to-metrics settings.
func tempoDatasource(t *testing.T) datasource {
	t.Helper()
	for _, d := range loadDatasources(t).Datasources {
		if d.Type == "tempo" && d.JSONData.TracesToMetrics != nil {
			return d
		}
	}
	t.Fatal("no Tempo data source with tracesToMetrics")
	return datasource{}
}

func loadDatasources(t *testing.T) grafanaDatasources {
	t.Helper()
	var ds grafanaDatasources
	readYAML(t, "grafana/provisioning/datasources/datasources.yaml", &ds)
	return ds
}

// TestGrafanaProvisioning checks the data sources link as the dashboards and compose expect: the uids
// the dashboards name, exemplars (label trace_id, as the proxy exposes them) opening Tempo, Tempo's
// trace-to-metrics queries in Prometheus, and the dashboards folder compose mounts.
func TestGrafanaProvisioning(t *testing.T) {
	ds := loadDatasources(t)
	if ds.APIVersion != 1 || len(ds.Datasources) != 2 {
		t.Fatalf("apiVersion %d with %d data sources, want 1 with 2", ds.APIVersion, len(ds.Datasources))
	}
	byType := map[string]int{}
	for i, d := range ds.Datasources {
		byType[d.Type] = i
	}
	prom, tempo := ds.Datasources[byType["prometheus"]], ds.Datasources[byType["tempo"]]
	tests := []struct {
		name string
		ok   bool
	}{
		{"prometheus uid is the dashboards'", prom.UID == "prometheus" && prom.Type == "prometheus"},
		{"tempo uid is the dashboards'", tempo.UID == "tempo" && tempo.Type == "tempo"},
		{"prometheus is the compose service", prom.URL == "http://prometheus:9090"},
		{"tempo is the compose service on tempo.yaml's port", tempo.URL == "http://tempo:3200"},
		{"exemplars open Tempo by trace_id", len(prom.JSONData.ExemplarTraceIDDestinations) == 1 &&
			prom.JSONData.ExemplarTraceIDDestinations[0].Name == "trace_id" &&
			prom.JSONData.ExemplarTraceIDDestinations[0].DatasourceUID == tempo.UID},
		{"traces link to Prometheus metrics", tempo.JSONData.TracesToMetrics != nil &&
			tempo.JSONData.TracesToMetrics.DatasourceUID == prom.UID &&
			len(tempo.JSONData.TracesToMetrics.Queries) > 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error("not so in grafana/provisioning/datasources/datasources.yaml")
			}
		})
	}
	if tm := tempo.JSONData.TracesToMetrics; tm != nil {
		for _, q := range tm.Queries {
			// Grafana expands $VAR in provisioning files: the query's own $__tags must be written $$__tags.
			if !strings.Contains(q.Query, "{$$__tags}") {
				t.Errorf("traces-to-metrics query %q: no {$$__tags}", q.Name)
			}
		}
	}

	var dash struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/dashboards.yaml", &dash)
	g, err := loadCompose(t).GetService("grafana")
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	for _, v := range g.Volumes {
		if strings.HasSuffix(filepath.ToSlash(v.Source), "grafana/dashboards") && len(dash.Providers) == 1 && v.Target == dash.Providers[0].Options.Path {
			mounted = true
		}
	}
	if !mounted {
		t.Error("the dashboard provider's path is not where compose mounts grafana/dashboards")
	}
}

// TestTempoConfigMatchesStack checks tempo.yaml listens where the collector and Grafana look for it.
func TestTempoConfigMatchesStack(t *testing.T) {
	var cfg struct {
		Server struct {
			HTTPListenPort int `yaml:"http_listen_port"`
		} `yaml:"server"`
		Distributor struct {
			Receivers struct {
				OTLP struct {
					Protocols struct {
						GRPC struct {
							Endpoint string `yaml:"endpoint"`
						} `yaml:"grpc"`
					} `yaml:"protocols"`
				} `yaml:"otlp"`
			} `yaml:"receivers"`
		} `yaml:"distributor"`
		Storage struct {
			Trace struct {
				Backend string `yaml:"backend"`
			} `yaml:"trace"`
		} `yaml:"storage"`
	}
	readYAML(t, "tempo/tempo.yaml", &cfg)
	collector, err := os.ReadFile(filepath.Join(repoRoot, "otel-collector", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.Server.HTTPListenPort != 3200:
		t.Errorf("tempo serves queries on %d, Grafana asks :3200", cfg.Server.HTTPListenPort)
	case cfg.Distributor.Receivers.OTLP.Protocols.GRPC.Endpoint != "0.0.0.0:4317":
		t.Errorf("tempo's OTLP/gRPC receiver is on %q, want 0.0.0.0:4317 (reachable from the collector)",
			cfg.Distributor.Receivers.OTLP.Protocols.GRPC.Endpoint)
	case !strings.Contains(string(collector), "${env:OTELCOL_TRACES_ENDPOINT:-tempo:4317}"):
		t.Error("the collector's default trace endpoint is not tempo:4317")
	case cfg.Storage.Trace.Backend != "local":
		t.Errorf("tempo storage backend %q, want local", cfg.Storage.Trace.Backend)
	}
}

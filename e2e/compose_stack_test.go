package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// service returns a service of p or fails the test.
func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flagValue is the value of --name=value (or -name=value) in a command, "" when absent.
func flagValue(cmd []string, name string) string {
	for _, a := range cmd {
		for _, prefix := range []string{"--" + name + "=", "-" + name + "="} {
			if v, ok := strings.CutPrefix(a, prefix); ok {
				return v
			}
		}
	}
	return ""
}

// TestComposeDefaultStackServes checks what a plain `docker compose up` starts: the proxy in front of the
// simulator service, on the simulator's listening port, traces to the collector, and the profiles as
// documented (demo load through the proxy, Ollama switched on by one variable, the pulled model the one
// the demo asks for).
func TestComposeDefaultStackServes(t *testing.T) {
	def := loadComposeProfiles(t, nil)
	want := []string{"grafana", "otel-collector", "prometheus", "proxy", "simulator", "tempo"}
	if got := sorted(def.ServiceNames()); !slices.Equal(got, want) {
		t.Fatalf("services without a profile = %v, want %v", got, want)
	}
	p := loadCompose(t)
	proxy, sim := service(t, p, "proxy"), service(t, p, "simulator")
	simListen := flagValue(sim.Command, "listen")
	_, simPort, _ := strings.Cut(simListen, ":")
	ollama := loadCompose(t, "TOKENTRACE_UPSTREAM=http://ollama:11434")
	model := flagValue(sim.Command, "model")
	tests := []struct {
		name string
		ok   bool
	}{
		{"simulator runs `supervisor simulate` from the project's image",
			sim.Image == proxy.Image && slices.Equal(sim.Entrypoint, []string{"/usr/local/bin/supervisor"}) && sim.Command[0] == "simulate"},
		{"proxy's default upstream is the simulator's port",
			simPort != "" && flagValue(proxy.Command, "upstream") == "http://simulator:"+simPort},
		{"one variable points the proxy at the ollama service",
			flagValue(service(t, ollama, "proxy").Command, "upstream") == "http://ollama:11434" &&
				publishes(service(t, ollama, "ollama"), "11434")},
		{"proxy sends traces to the collector", envIs(proxy, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317")},
		{"demo load goes through the proxy, asking for the simulator's model, traced",
			slices.Equal(service(t, p, "demo").Profiles, []string{"demo"}) &&
				flagValue(service(t, p, "demo").Command, "url") == "http://proxy:11435" &&
				flagValue(service(t, p, "demo").Command, "model") == model && model != "" &&
				envIs(service(t, p, "demo"), "OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317")},
		{"ollama-pull pulls that model from the ollama service, once",
			slices.Equal(service(t, p, "ollama-pull").Command, []string{"pull", model}) &&
				envIs(service(t, p, "ollama-pull"), "OLLAMA_HOST", "http://ollama:11434") &&
				service(t, p, "ollama-pull").Restart == "no"},
		{"ollama, its pull and chat are optional profiles",
			slices.Equal(service(t, p, "ollama").Profiles, []string{"ollama"}) &&
				slices.Equal(service(t, p, "ollama-pull").Profiles, []string{"ollama"}) &&
				slices.Equal(service(t, p, "chat").Profiles, []string{"chat"})},
		{"chat UI on 3001 talks to the proxy", publishes(service(t, p, "chat"), "3001") &&
			envIs(service(t, p, "chat"), "OLLAMA_BASE_URL", "http://proxy:11435")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error("not so in compose.yaml")
			}
		})
	}
}

func envIs(s types.ServiceConfig, key, want string) bool {
	v := s.Environment[key]
	return v != nil && *v == want
}

// TestComposeHealthAndOrder checks every long-running service has a healthcheck that its image can run,
// and that every dependency waits for health (or, for a one-shot, success), not just for a start.
func TestComposeHealthAndOrder(t *testing.T) {
	p := loadCompose(t)
	// Images whose healthcheck calls /busybox/wget: built from a Dockerfile whose last stage is
	// distroless/static's debug variant, or Tempo's image (distroless/static:debug, see its Dockerfile).
	busybox := map[string]bool{"grafana/tempo": true}
	dependedOn := map[string]bool{}
	for _, s := range p.Services {
		for dep := range s.DependsOn {
			dependedOn[dep] = true
		}
	}
	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			if s.HealthCheck != nil && s.HealthCheck.Disable {
				// Only a client nobody waits for may go without (the demo load: nothing to probe).
				if dependedOn[name] || len(s.Ports) > 0 {
					t.Error("healthcheck disabled on a service others depend on or that serves a port")
				}
			} else if s.Restart == "no" {
				if s.HealthCheck != nil {
					t.Error("a one-shot service needs no healthcheck")
				}
			} else if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] != "CMD" {
				t.Errorf("no CMD healthcheck: %+v", s.HealthCheck)
			} else if s.HealthCheck.Test[1] == "/busybox/wget" {
				repo, _, _ := strings.Cut(s.Image, ":")
				if s.Build != nil {
					if !lastStageIsBusybox(t, filepath.Join(s.Build.Context, s.Build.Dockerfile)) {
						t.Errorf("healthcheck uses /busybox/wget, but %s's last stage is not a distroless debug image", s.Build.Dockerfile)
					}
				} else if !busybox[repo] {
					t.Errorf("healthcheck uses /busybox/wget, not known to be in %s", s.Image)
				}
			}
			for dep, d := range s.DependsOn {
				want := types.ServiceConditionHealthy
				if service(t, p, dep).Restart == "no" {
					want = types.ServiceConditionCompletedSuccessfully
				}
				if d.Condition != want {
					t.Errorf("depends on %s with condition %q, want %q", dep, d.Condition, want)
				}
			}
		})
	}
	// The collector's healthcheck asks the health_check extension's port.
	hc := service(t, p, "otel-collector").HealthCheck
	port := collectorHealthPort(t)
	if hc == nil || !slices.ContainsFunc(hc.Test, func(a string) bool { return strings.Contains(a, "127.0.0.1:"+port+"/") }) {
		t.Errorf("collector healthcheck %v does not ask the health_check extension on :%s", hc, port)
	}
}

// collectorHealthPort is the port of the health_check extension's default endpoint in the collector config.
func collectorHealthPort(t *testing.T) string {
	t.Helper()
	var cfg struct {
		Extensions struct {
			HealthCheck struct {
				Endpoint string `yaml:"endpoint"`
			} `yaml:"health_check"`
		} `yaml:"extensions"`
		Service struct {
			Extensions []string `yaml:"extensions"`
		} `yaml:"service"`
	}
	readYAML(t, "otel-collector/config.yaml", &cfg)
	if !slices.Contains(cfg.Service.Extensions, "health_check") {
		t.Fatal("the collector config does not enable the health_check extension")
	}
	m := regexp.MustCompile(`:(\d+)\}?$`).FindStringSubmatch(cfg.Extensions.HealthCheck.Endpoint)
	if m == nil {
		t.Fatalf("health_check endpoint %q has no port", cfg.Extensions.HealthCheck.Endpoint)
	}
	return m[1]
}

func lastStageIsBusybox(t *testing.T, dockerfile string) bool {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(data), -1)
	if len(froms) == 0 {
		return false
	}
	last := froms[len(froms)-1][1]
	return strings.HasPrefix(last, "gcr.io/distroless/") && strings.Contains(last, ":debug")
}

// TestComposeLockdown checks published ports are on loopback unless TOKENTRACE_BIND says otherwise,
// Prometheus (and so its remote-write receiver) and Tempo publish nothing, and Grafana has no anonymous
// access.
func TestComposeLockdown(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{nil, "127.0.0.1"},
		{[]string{"TOKENTRACE_BIND=0.0.0.0"}, "0.0.0.0"},
	} {
		p := loadCompose(t, tt.env...)
		for name, s := range p.Services {
			for _, port := range s.Ports {
				if port.HostIP != tt.want {
					t.Errorf("env %v: %s publishes %s on %q, want %s", tt.env, name, port.Published, port.HostIP, tt.want)
				}
			}
		}
	}
	p := loadCompose(t)
	for _, name := range []string{"prometheus", "tempo"} {
		if ports := service(t, p, name).Ports; len(ports) > 0 {
			t.Errorf("%s publishes %v; it is reached inside the compose network only", name, ports)
		}
	}
	for name, s := range p.Services {
		if publishes(s, "9090") {
			t.Errorf("%s publishes 9090 (Prometheus's remote-write receiver)", name)
		}
	}
	if !envIs(service(t, p, "grafana"), "GF_AUTH_ANONYMOUS_ENABLED", "false") {
		t.Error("Grafana allows anonymous access")
	}
}

// TestComposeStores checks the stores keep data on volumes for one retention, set by one variable, so an
// exemplar in Prometheus does not outlive the trace it points to; and that Prometheus loads the rules.
func TestComposeStores(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{nil, "360h"},
		{[]string{"TOKENTRACE_RETENTION=720h"}, "720h"},
	} {
		p := loadCompose(t, tt.env...)
		prom, tempo := service(t, p, "prometheus"), service(t, p, "tempo")
		if got := flagValue(prom.Command, "storage.tsdb.retention.time"); got != tt.want {
			t.Errorf("env %v: prometheus retention %q, want %q", tt.env, got, tt.want)
		}
		if !envIs(tempo, "TOKENTRACE_RETENTION", tt.want) || !slices.Contains(tempo.Command, "-config.expand-env=true") {
			t.Errorf("env %v: tempo does not get TOKENTRACE_RETENTION=%s with -config.expand-env", tt.env, tt.want)
		}
	}
	var cfg struct {
		Compactor struct {
			Compaction struct {
				BlockRetention string `yaml:"block_retention"`
			} `yaml:"compaction"`
		} `yaml:"compactor"`
		Storage struct {
			Trace struct {
				WAL   struct{ Path string } `yaml:"wal"`
				Local struct{ Path string } `yaml:"local"`
			} `yaml:"trace"`
		} `yaml:"storage"`
	}
	readYAML(t, "tempo/tempo.yaml", &cfg)
	if cfg.Compactor.Compaction.BlockRetention != "${TOKENTRACE_RETENTION:-360h}" {
		t.Errorf("tempo block_retention %q does not read TOKENTRACE_RETENTION (default 360h)", cfg.Compactor.Compaction.BlockRetention)
	}
	p := loadCompose(t)
	tempo := service(t, p, "tempo")
	for _, path := range []string{cfg.Storage.Trace.WAL.Path, cfg.Storage.Trace.Local.Path} {
		if !onVolume(tempo, path) {
			t.Errorf("tempo keeps %s outside a named volume", path)
		}
	}
	prom := service(t, p, "prometheus")
	if !onVolume(prom, flagValue(prom.Command, "storage.tsdb.path")) {
		t.Error("prometheus keeps its TSDB outside a named volume")
	}
	c := prom.Command
	if !slices.Contains(c, "--web.enable-remote-write-receiver") || !slices.Contains(c, "--enable-feature=exemplar-storage") {
		t.Error("prometheus does not accept remote write or keep exemplars")
	}
	if !hasMount(prom, "prometheus/rules") || !hasMount(prom, "prometheus/prometheus.yml") {
		t.Error("prometheus does not get prometheus.yml and rules/")
	}
	g := service(t, p, "grafana")
	if !hasMount(g, "grafana/provisioning") || !hasMount(g, "grafana/dashboards") {
		t.Error("grafana does not get its data sources and dashboards")
	}
}

// onVolume reports whether path is inside a named volume mounted into s.
func onVolume(s types.ServiceConfig, path string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && path != "" && (path == v.Target || strings.HasPrefix(path, v.Target+"/")) {
			return true
		}
	}
	return false
}

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// repoRoot is the repository root, seen from this package's folder.
const repoRoot = ".."

// loadCompose loads compose.yaml with compose-go, every profile enabled and no environment from the
// machine running the test, so the defaults written in the file are what is checked.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv([]string{}),
		cli.WithProfiles([]string{"ollama", "chat"}),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

func TestComposeLoadsAndReferencesExistingFiles(t *testing.T) {
	p := loadCompose(t)
	want := []string{"chat", "grafana", "ollama", "otel-collector", "prometheus", "proxy", "tempo"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services = %v, want %v", sorted(got), want)
	}
	for name, s := range p.Services {
		if s.Build != nil {
			if fi, err := os.Stat(s.Build.Context); err != nil || !fi.IsDir() {
				t.Errorf("service %s builds from %s: not a folder (%v)", name, s.Build.Context, err)
			}
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: Dockerfile: %v", name, err)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

// TestDockerfileBuildsExistingCommands checks the Go packages and files the Dockerfile copies and
// builds are in the repository.
func TestDockerfileBuildsExistingCommands(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`go build [^\n]*-o /out/((?: \./[a-z]+)+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no `go build … -o /out/ ./cmd…` in the Dockerfile")
	}
	pkgs := strings.Fields(string(m[1]))
	if !slices.Equal(pkgs, []string{"./proxy", "./loadtest", "./supervisor"}) {
		t.Errorf("Dockerfile builds %v, want the three commands", pkgs)
	}
	for _, p := range append(pkgs, "go.mod", "go.sum") {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("Dockerfile uses %s: %v", p, err)
		}
	}
	if !strings.Contains(string(data), `ENTRYPOINT ["/usr/local/bin/proxy"]`) {
		t.Error("the image's entrypoint is not the proxy")
	}
}

func TestComposeWiring(t *testing.T) {
	p := loadCompose(t)
	svc := func(name string) types.ServiceConfig {
		t.Helper()
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		ok   func() bool
	}{
		{"collector image is the manifest's release", func() bool {
			return strings.HasSuffix(svc("otel-collector").Image, ":"+manifestVersion(t))
		}},
		{"collector runs the repository's config", func() bool {
			return hasMount(svc("otel-collector"), "otel-collector/config.yaml")
		}},
		{"prometheus accepts remote write and keeps exemplars", func() bool {
			c := svc("prometheus").Command
			return slices.Contains(c, "--web.enable-remote-write-receiver") && slices.Contains(c, "--enable-feature=exemplar-storage")
		}},
		{"grafana gets data sources and dashboards", func() bool {
			g := svc("grafana")
			return hasMount(g, "grafana/provisioning") && hasMount(g, "grafana/dashboards")
		}},
		{"proxy sends traces to the collector", func() bool {
			e := svc("proxy").Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
			return e != nil && strings.Contains(*e, "otel-collector:4317")
		}},
		{"proxy defaults to the ollama service", func() bool {
			return slices.Contains(svc("proxy").Command, "--upstream=http://ollama:11434")
		}},
		{"chat UI on 3001 talks to the proxy", func() bool {
			c := svc("chat")
			u := c.Environment["OLLAMA_BASE_URL"]
			return publishes(c, "3001") && u != nil && *u == "http://proxy:11435"
		}},
		{"ollama and chat are optional profiles", func() bool {
			return slices.Equal(svc("ollama").Profiles, []string{"ollama"}) && slices.Equal(svc("chat").Profiles, []string{"chat"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok() {
				t.Error("not so in compose.yaml")
			}
		})
	}
}

// manifestVersion reads dist.version from the collector builder manifest.
func manifestVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "otel-collector", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+version:\s*"?([0-9][0-9.]*)"?\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no dist.version in otel-collector/manifest.yaml")
	}
	return string(m[1])
}

func hasMount(s types.ServiceConfig, suffix string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasSuffix(filepath.ToSlash(v.Source), suffix) {
			return true
		}
	}
	return false
}

func publishes(s types.ServiceConfig, port string) bool {
	for _, p := range s.Ports {
		if p.Published == port {
			return true
		}
	}
	return false
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

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

// allProfiles are compose.yaml's optional profiles.
var allProfiles = []string{"chat", "demo", "ollama"}

// loadCompose loads compose.yaml with compose-go, every profile enabled and no environment from the
// machine running the test beyond env, so the defaults written in the file are what is checked.
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	return loadComposeProfiles(t, allProfiles, env...)
}

func loadComposeProfiles(t *testing.T, profiles []string, env ...string) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(append([]string{}, env...)),
		cli.WithProfiles(profiles),
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
	want := []string{"chat", "demo", "grafana", "ollama", "ollama-pull", "otel-collector", "prometheus", "proxy", "simulator", "tempo"}
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

package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// pinSources are the files that name the versions of the shipped and the tested stack.
type pinSources struct {
	makefile   []byte // mk/observability.mk: what the tests build and run
	compose    []byte // compose.yaml: what ships
	dockerfile []byte // otel-collector/Dockerfile: how compose builds the collector
	manifest   []byte // otel-collector/manifest.yaml: the collector's components
}

func readPinSources(t *testing.T) pinSources {
	t.Helper()
	read := func(path string) []byte {
		data, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	return pinSources{
		makefile:   read("mk/observability.mk"),
		compose:    read("compose.yaml"),
		dockerfile: read("otel-collector/Dockerfile"),
		manifest:   read("otel-collector/manifest.yaml"),
	}
}

// makeVar is the value of `NAME := value` in a makefile.
func makeVar(makefile []byte, name string) (string, error) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*:?=\s*(\S+)\s*$`).FindSubmatch(makefile)
	if m == nil {
		return "", fmt.Errorf("no %s in the makefile", name)
	}
	return string(m[1]), nil
}

// composeImage is the image of a service in compose.yaml.
func composeImage(compose []byte, svc string) (string, error) {
	var c struct {
		Services map[string]struct {
			Image string `yaml:"image"`
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(compose, &c); err != nil {
		return "", fmt.Errorf("parse compose.yaml: %w", err)
	}
	s, ok := c.Services[svc]
	if !ok {
		return "", fmt.Errorf("no service %s in compose.yaml", svc)
	}
	return s.Image, nil
}

// prometheusModuleRelease maps the Go module version of github.com/prometheus/prometheus to its release:
// v0.316.0 is 3.16.0 (major 3, minor 16).
func prometheusModuleRelease(module string) (string, error) {
	m := regexp.MustCompile(`^github\.com/prometheus/prometheus@v0\.(\d)(\d\d)\.(\d+)$`).FindStringSubmatch(module)
	if m == nil {
		return "", fmt.Errorf("prometheus module %q is not github.com/prometheus/prometheus@v0.XYY.Z", module)
	}
	minor, err := strconv.Atoi(m[2])
	if err != nil {
		return "", fmt.Errorf("prometheus module %q: %w", module, err)
	}
	return fmt.Sprintf("%s.%d.%s", m[1], minor, m[3]), nil
}

// checkPins returns every difference between the shipped and the tested versions.
func checkPins(src pinSources) []error {
	var errs []error
	fail := func(err error) { errs = append(errs, err) }

	// Prometheus: compose's image tag is the release the tests build from the module proxy.
	version, err := makeVar(src.makefile, "PROMETHEUS_VERSION")
	if err != nil {
		fail(err)
	}
	module, err := makeVar(src.makefile, "PROMETHEUS_MODULE")
	if err != nil {
		fail(err)
	}
	if release, err := prometheusModuleRelease(module); err != nil {
		fail(err)
	} else if release != version {
		fail(fmt.Errorf("the makefile builds %s (Prometheus %s) but calls it %s", module, release, version))
	}
	if img, err := composeImage(src.compose, "prometheus"); err != nil {
		fail(err)
	} else if img != "prom/prometheus:v"+version {
		fail(fmt.Errorf("compose runs %s, the tests Prometheus %s", img, version))
	}

	// Collector: compose builds the manifest with the builder release the tests use, and the manifest's
	// dist.version is that release.
	builder, err := makeVar(src.makefile, "OTELCOL_BUILDER_VERSION")
	if err != nil {
		fail(err)
	}
	if m := regexp.MustCompile(`(?m)^ARG OTELCOL_BUILDER_VERSION=(\S+)$`).FindSubmatch(src.dockerfile); m == nil {
		fail(errors.New("otel-collector/Dockerfile has no ARG OTELCOL_BUILDER_VERSION=…"))
	} else if string(m[1]) != builder {
		fail(fmt.Errorf("otel-collector/Dockerfile runs builder %s, the tests %s", m[1], builder))
	}
	if !regexp.MustCompile(`(?m)^COPY manifest\.yaml `).Match(src.dockerfile) ||
		!regexp.MustCompile(`go run go\.opentelemetry\.io/collector/cmd/builder@\$\{OTELCOL_BUILDER_VERSION\} --config manifest\.yaml`).Match(src.dockerfile) {
		fail(errors.New("otel-collector/Dockerfile does not build the copied manifest.yaml with the builder"))
	}
	var manifest struct {
		Dist struct {
			Version string `yaml:"version"`
		} `yaml:"dist"`
	}
	if err := yaml.Unmarshal(src.manifest, &manifest); err != nil {
		fail(fmt.Errorf("parse manifest: %w", err))
	} else if "v"+manifest.Dist.Version != builder {
		fail(fmt.Errorf("manifest dist.version %s, builder %s", manifest.Dist.Version, builder))
	}
	var compose struct {
		Services map[string]struct {
			Image string `yaml:"image"`
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(src.compose, &compose); err != nil {
		fail(fmt.Errorf("parse compose.yaml: %w", err))
	} else if b := compose.Services["otel-collector"].Build; b == nil || filepath.Clean(b.Context) != "otel-collector" || b.Dockerfile != "Dockerfile" {
		fail(errors.New("compose does not build the otel-collector service from otel-collector/Dockerfile"))
	}
	return errs
}

// TestShippedVersionsAreTested fails when compose.yaml ships a Prometheus or a collector other than the
// one the tests run; the broken copies show the check notices each kind of drift.
func TestShippedVersionsAreTested(t *testing.T) {
	real := readPinSources(t)
	if errs := checkPins(real); len(errs) > 0 {
		t.Fatalf("shipped and tested versions differ:\n%v", errors.Join(errs...))
	}
	replace := func(b []byte, old, new string) []byte {
		if !strings.Contains(string(b), old) {
			t.Fatalf("%q not found: the drift case is out of date", old)
		}
		return []byte(strings.Replace(string(b), old, new, 1))
	}
	drifts := []struct {
		name  string
		drift func(s pinSources) pinSources
	}{
		{"compose runs another Prometheus", func(s pinSources) pinSources {
			s.compose = replace(s.compose, "prom/prometheus:v3.16.0", "prom/prometheus:v3.5.0")
			return s
		}},
		{"makefile builds another module than it says", func(s pinSources) pinSources {
			s.makefile = replace(s.makefile, "prometheus@v0.316.0", "prometheus@v0.305.0")
			return s
		}},
		{"Dockerfile runs another builder", func(s pinSources) pinSources {
			s.dockerfile = replace(s.dockerfile, "ARG OTELCOL_BUILDER_VERSION=v0.165.0", "ARG OTELCOL_BUILDER_VERSION=v0.164.0")
			return s
		}},
		{"compose uses the contrib image", func(s pinSources) pinSources {
			s.compose = replace(s.compose, "      context: ./otel-collector\n", "      context: ./elsewhere\n")
			return s
		}},
		{"manifest at another release", func(s pinSources) pinSources {
			s.manifest = replace(s.manifest, "  version: 0.165.0", "  version: 0.164.0")
			return s
		}},
	}
	for _, d := range drifts {
		t.Run(d.name, func(t *testing.T) {
			if errs := checkPins(d.drift(real)); len(errs) == 0 {
				t.Error("drift not noticed")
			}
		})
	}
}

func TestPrometheusModuleRelease(t *testing.T) {
	for _, tt := range []struct{ module, want string }{
		{"github.com/prometheus/prometheus@v0.316.0", "3.16.0"},
		{"github.com/prometheus/prometheus@v0.305.2", "3.5.2"},
		{"github.com/prometheus/prometheus@v0.300.1", "3.0.1"},
		{"github.com/prometheus/prometheus@v2.42.0", ""},
	} {
		got, err := prometheusModuleRelease(tt.module)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("prometheusModuleRelease(%s) = %q, %v; want %q", tt.module, got, err, tt.want)
		}
	}
}

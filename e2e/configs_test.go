//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigsValidate runs the collector's and Prometheus's own checkers on the committed configs,
// and on a broken copy of each so the check is known to bite.
func TestConfigsValidate(t *testing.T) {
	otelcol := tool(t, "TOKENTRACE_OTELCOL_BIN")
	promtool := tool(t, "TOKENTRACE_PROMTOOL_BIN")
	good, err := os.ReadFile(filepath.Join(repoRoot, "otel-collector", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	promGood, err := os.ReadFile(filepath.Join(repoRoot, "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	brokenCollector := write("collector-broken.yaml",
		strings.Replace(string(good), "exporters: [prometheus_remote_write]", "exporters: [prometheus_remote_write, no_such_exporter]", 1))
	brokenProm := write("prometheus-broken.yml", string(promGood)+"\nscrape_configs_typo: []\n")
	rules := filepath.Join(repoRoot, "prometheus", "rules", "tokentrace.rules.yml")
	rulesGood, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	brokenRules := write("broken.rules.yml", strings.Replace(string(rulesGood), "sum by (gen_ai_request_model)", "sum by (gen_ai_request_model", 1))

	tests := []struct {
		name   string
		bin    string
		args   []string
		wantOK bool
	}{
		{"collector config", otelcol, []string{"validate", "--config=" + filepath.Join(repoRoot, "otel-collector", "config.yaml")}, true},
		{"collector config with an unknown exporter", otelcol, []string{"validate", "--config=" + brokenCollector}, false},
		{"prometheus.yml", promtool, []string{"check", "config", filepath.Join(repoRoot, "prometheus", "prometheus.yml")}, true},
		{"prometheus.yml with an unknown key", promtool, []string{"check", "config", brokenProm}, false},
		{"rules", promtool, []string{"check", "rules", rules}, true},
		{"rules with a PromQL syntax error", promtool, []string{"check", "rules", brokenRules}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(tt.bin, tt.args...).CombinedOutput()
			if ok := err == nil; ok != tt.wantOK {
				t.Fatalf("%s %s: err = %v, want ok=%v\n%s", filepath.Base(tt.bin), strings.Join(tt.args, " "), err, tt.wantOK, out)
			}
		})
	}
}

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// grafanaLatestSchema is the newest dashboard schemaVersion each Grafana minor release migrates to
// (apps/dashboard/pkg/migration/schemaversion in Grafana's source). 42 came with grafana/grafana#110517
// (merged September 2025, after 12.1) and was still the newest in 12.3. A pinned release missing here
// fails the test until someone looks it up.
var grafanaLatestSchema = map[string]int{
	"12.1": 41,
	"12.3": 42,
}

// TestDashboardsMatchPinnedGrafana checks every committed dashboard decodes strictly with the Foundation
// SDK's schema (no field the SDK does not know) and carries the schemaVersion the Grafana release that
// compose.yaml pins migrates to: not newer (that Grafana would not know it), not older (it would migrate
// the provisioned file on every load).
func TestDashboardsMatchPinnedGrafana(t *testing.T) {
	img := service(t, loadCompose(t), "grafana").Image
	m := regexp.MustCompile(`^grafana/grafana:(\d+\.\d+)\.\d+$`).FindStringSubmatch(img)
	if m == nil {
		t.Fatalf("grafana image %q is not grafana/grafana:X.Y.Z", img)
	}
	want, ok := grafanaLatestSchema[m[1]]
	if !ok {
		t.Fatalf("no known dashboard schemaVersion for Grafana %s: add it to grafanaLatestSchema", m[1])
	}
	plugins.RegisterDefaultPlugins()
	files, err := filepath.Glob(filepath.Join(repoRoot, "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var d dashboard.Dashboard
			if err := strictDashboard(data, &d); err != nil {
				t.Fatalf("strict decode with the SDK's dashboard schema: %v", err)
			}
			broken := strings.Replace(string(data), `"schemaVersion"`, `"schemaVersoin": 1, "schemaVersion"`, 1)
			if err := strictDashboard([]byte(broken), &dashboard.Dashboard{}); err == nil {
				t.Error("the strict decoder accepts an unknown field")
			}
			if int(d.SchemaVersion) != want {
				t.Errorf("schemaVersion %d, Grafana %s migrates to %d", d.SchemaVersion, m[1], want)
			}
		})
	}
}

// strictDashboard decodes with the SDK's strict decoder, which returns its error list typed even when it
// is empty.
func strictDashboard(data []byte, d *dashboard.Dashboard) error {
	err := d.UnmarshalJSONStrict(data)
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

// Keys of Grafana's provisioning files as documented in "Provision Grafana"
// (grafana.com/docs/grafana/latest/administration/provisioning/: the data sources and dashboards
// example files) and, for jsonData, the Prometheus and Tempo data source pages' provisioning examples.
var (
	datasourceFileKeys = []string{"apiVersion", "datasources", "deleteDatasources", "prune"}
	datasourceKeys     = []string{"name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
		"basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version", "editable"}
	jsonDataKeys = map[string][]string{
		"prometheus": {"httpMethod", "manageAlerts", "prometheusType", "prometheusVersion", "cacheLevel",
			"disableRecordingRules", "incrementalQueryOverlapWindow", "timeInterval", "queryTimeout",
			"defaultEditor", "exemplarTraceIdDestinations"},
		"tempo": {"tracesToLogsV2", "tracesToMetrics", "tracesToProfiles", "serviceMap", "nodeGraph", "search",
			"traceQuery", "spanBar", "streamingEnabled", "lokiSearch", "traceIdTimeParams"},
	}
	jsonDataNestedKeys = map[string][]string{
		"exemplarTraceIdDestinations": {"name", "datasourceUid", "url", "urlDisplayLabel"},
		"tracesToMetrics":             {"datasourceUid", "spanStartTimeShift", "spanEndTimeShift", "tags", "queries"},
		"serviceMap":                  {"datasourceUid"},
		"nodeGraph":                   {"enabled"},
		"search":                      {"hide", "filters"},
		"traceQuery":                  {"timeShiftEnabled", "spanStartTimeShift", "spanEndTimeShift"},
	}
	dashboardFileKeys = []string{"apiVersion", "providers"}
	providerKeys      = []string{"name", "orgId", "folder", "folderUid", "type", "disableDeletion",
		"updateIntervalSeconds", "allowUiUpdates", "options"}
	providerOptionKeys = []string{"path", "foldersFromFilesStructure"}
)

// unknownKeys lists the keys of m not in allowed, with a path prefix.
func unknownKeys(prefix string, m map[string]any, allowed []string) []string {
	var bad []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			bad = append(bad, prefix+k)
		}
	}
	sort.Strings(bad)
	return bad
}

func readYAMLMap(t *testing.T, path string) map[string]any {
	t.Helper()
	var m map[string]any
	readYAML(t, path, &m)
	return m
}

// provisioningProblems returns every undocumented key in the two provisioning files' contents.
func provisioningProblems(datasources, dashboards map[string]any) []string {
	var bad []string
	bad = append(bad, unknownKeys("datasources file: ", datasources, datasourceFileKeys)...)
	list, _ := datasources["datasources"].([]any)
	for i, d := range list {
		ds, _ := d.(map[string]any)
		name := fmt.Sprintf("datasource %d (%v): ", i, ds["name"])
		bad = append(bad, unknownKeys(name, ds, datasourceKeys)...)
		typ, _ := ds["type"].(string)
		jd, _ := ds["jsonData"].(map[string]any)
		if jd == nil {
			continue
		}
		allowed, ok := jsonDataKeys[typ]
		if !ok {
			bad = append(bad, name+"jsonData of an undocumented type "+typ)
			continue
		}
		bad = append(bad, unknownKeys(name+"jsonData.", jd, allowed)...)
		for key, nested := range jsonDataNestedKeys {
			switch v := jd[key].(type) {
			case map[string]any:
				bad = append(bad, unknownKeys(name+"jsonData."+key+".", v, nested)...)
			case []any:
				for _, e := range v {
					if em, ok := e.(map[string]any); ok {
						bad = append(bad, unknownKeys(name+"jsonData."+key+"[].", em, nested)...)
					}
				}
			}
		}
	}
	bad = append(bad, unknownKeys("dashboards file: ", dashboards, dashboardFileKeys)...)
	providers, _ := dashboards["providers"].([]any)
	for i, p := range providers {
		pm, _ := p.(map[string]any)
		bad = append(bad, unknownKeys(fmt.Sprintf("provider %d: ", i), pm, providerKeys)...)
		if opts, ok := pm["options"].(map[string]any); ok {
			bad = append(bad, unknownKeys(fmt.Sprintf("provider %d options: ", i), opts, providerOptionKeys)...)
		}
	}
	return bad
}

// TestProvisioningKeysAreDocumented fails on any key of the provisioning files that Grafana's provisioning
// format does not document (a typo there is silently ignored by Grafana), and shows the check bites on a
// misspelt key.
func TestProvisioningKeysAreDocumented(t *testing.T) {
	ds := readYAMLMap(t, "grafana/provisioning/datasources/datasources.yaml")
	dash := readYAMLMap(t, "grafana/provisioning/dashboards/dashboards.yaml")
	if bad := provisioningProblems(ds, dash); len(bad) > 0 {
		t.Fatalf("undocumented provisioning keys:\n%s", strings.Join(bad, "\n"))
	}
	// A misspelt key at each level is noticed.
	copyOf := func(m map[string]any) map[string]any {
		data, _ := json.Marshal(m)
		var c map[string]any
		_ = json.Unmarshal(data, &c)
		return c
	}
	typo := copyOf(ds)
	first := typo["datasources"].([]any)[0].(map[string]any)
	first["isDefualt"] = true
	first["jsonData"].(map[string]any)["httpMetod"] = "POST"
	dashTypo := copyOf(dash)
	dashTypo["providers"].([]any)[0].(map[string]any)["options"].(map[string]any)["pth"] = "/x"
	if bad := provisioningProblems(typo, dashTypo); len(bad) != 3 {
		t.Errorf("misspelt keys found: %q, want 3", bad)
	}
}

package kubecheck

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The chart carries copies of grafana/dashboards (Helm reads files only inside the chart); `make chart-dashboards`
// refreshes them. They must not drift from the generated originals.
func TestChartDashboardsMatchGrafanaDashboards(t *testing.T) {
	orig, err := filepath.Glob("../../grafana/dashboards/*.json")
	if err != nil || len(orig) == 0 {
		t.Fatalf("no dashboards in grafana/dashboards: %v", err)
	}
	copies, _ := filepath.Glob("../../deploy/helm/tokentrace/dashboards/*.json")
	if len(copies) != len(orig) {
		t.Errorf("chart has %d dashboards, grafana/dashboards %d: run make chart-dashboards", len(copies), len(orig))
	}
	for _, f := range orig {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("../../deploy/helm/tokentrace/dashboards", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("chart copy of %s differs or is missing (%v): run make chart-dashboards", filepath.Base(f), err)
		}
	}
}

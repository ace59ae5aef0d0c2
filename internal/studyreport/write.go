package studyreport

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// ReportFile is the report's name in the run folder.
const ReportFile = "report.md"

// Write reads the run folder dir and writes report.md and the charts into
// it. It returns the data it reported.
func Write(dir string) (*Data, error) {
	h, results, reqs, err := matrix.Load(dir)
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("no scenario results in %s yet", dir)
	}
	d := FromRun(h, results, reqs)
	if d.Capacity, d.Probes, err = matrix.LoadCapacity(dir); err != nil {
		return d, err
	}
	charts, err := d.WriteCharts(dir)
	if err != nil {
		return d, err
	}
	if len(d.Capacity) > 0 {
		if err := d.capacityChart(dir); err != nil {
			return d, fmt.Errorf("chart %s: %w", ChartCapacity, err)
		}
	}
	var b bytes.Buffer
	d.WriteMarkdown(&b, charts)
	if err := os.WriteFile(filepath.Join(dir, ReportFile), b.Bytes(), 0o644); err != nil {
		return d, fmt.Errorf("write report: %w", err)
	}
	return d, nil
}

package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// File is one dashboard as Grafana's file provisioner reads it.
type File struct {
	Name string // file name under grafana/dashboards
	JSON []byte // indented, newline-terminated
}

// Files builds every dashboard.
func Files() ([]File, error) {
	builders := []struct {
		name  string
		build func() (dashboard.Dashboard, error)
	}{
		{"tokentrace-serving.json", Serving},
		{"tokentrace-traces.json", Traces},
	}
	files := make([]File, 0, len(builders))
	for _, b := range builders {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("build dashboard %s: %w", b.name, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep PromQL and TraceQL readable in the committed files
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("encode dashboard %s: %w", b.name, err)
		}
		files = append(files, File{Name: b.name, JSON: buf.Bytes()})
	}
	return files, nil
}

func datasource(typ, uid string) common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr(typ), Uid: cog.ToPtr(uid)}
}

func promDS() common.DataSourceRef  { return datasource("prometheus", prometheusUID) }
func tempoDS() common.DataSourceRef { return datasource("tempo", tempoUID) }

// labelVariable is a multi-value variable listing a label's values, "All" meaning any value
// (including the label being absent).
func labelVariable(name, label, metric string) *dashboard.QueryVariableBuilder {
	def := fmt.Sprintf("label_values(%s, %s)", metric, label)
	return dashboard.NewQueryVariableBuilder(name).
		Label(name).
		Datasource(promDS()).
		// The plain-string form of a Prometheus variable query: every Grafana version reads it.
		Query(dashboard.StringOrMap{String: cog.ToPtr(def)}).
		Definition(def).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

// promQuery is a range query with a legend.
func promQuery(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(promDS()).
		RefId(ref).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// selector is the label matcher every serving query carries: the three dashboard variables.
func selector(extra ...string) string {
	s := fmt.Sprintf(`%s=~"$%s", %s=~"$%s", %s=~"$%s"`,
		labelModel, varModel, labelUpstream, varUpstream, labelScenario, varScenario)
	for _, e := range extra {
		s += ", " + e
	}
	return s
}

// quantiles returns p50, p95 and p99 of a histogram over the variables' selection.
func quantiles(metric string, extra ...string) []*prometheus.DataqueryBuilder {
	qs := []struct{ ref, q, legend string }{{"A", "0.5", "p50"}, {"B", "0.95", "p95"}, {"C", "0.99", "p99"}}
	out := make([]*prometheus.DataqueryBuilder, 0, len(qs))
	for _, q := range qs {
		expr := fmt.Sprintf(`histogram_quantile(%s, sum by (le) (rate(%s_bucket{%s}[$__rate_interval])))`,
			q.q, metric, selector(extra...))
		out = append(out, promQuery(q.ref, expr, q.legend))
	}
	return out
}

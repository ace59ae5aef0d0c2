package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/tempo"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

const (
	varMinDuration = "min_duration"
	varTraceID     = "trace_id"
)

// Traces is the traces dashboard: the slowest proxied requests from Tempo, the waterfall of one
// (client → proxy → upstream), and TTFT with exemplars as another way in.
func Traces() (dashboard.Dashboard, error) {
	search := fmt.Sprintf(
		`{ kind = server && span.gen_ai.request.model =~ "${%s:regex}" && duration >= $%s } | select(span.gen_ai.request.model, span.gen_ai.response.time_to_first_chunk, span.gen_ai.usage.output_tokens, span.error.type)`,
		varModel, varMinDuration)
	return dashboard.NewDashboardBuilder("tokentrace — traces").
		Uid("tokentrace-traces").
		Description("The slowest requests through the proxy, and the waterfall of one: load-tester client span → proxy span (first_token and token events) → upstream call.").
		Tags([]string{"tokentrace", "traces"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(labelVariable(varModel, labelModel, metricDuration+"_count")).
		WithVariable(dashboard.NewTextBoxVariableBuilder(varMinDuration).
			Label("slower than").
			Description("TraceQL duration, e.g. 500ms or 5s").
			DefaultValue(dashboard.StringOrMap{String: cog.ToPtr("0ms")}).
			Current(textOption("0ms"))).
		WithVariable(dashboard.NewTextBoxVariableBuilder(varTraceID).
			Label("trace id").
			Description("Pick a row in the table above (or paste a trace id) to see its waterfall.").
			DefaultValue(dashboard.StringOrMap{String: cog.ToPtr("")}).
			Current(textOption(""))).
		WithPanel(table.NewPanelBuilder().
			Title("Slowest requests").
			Description("Tempo search over proxy server spans; sorted by duration, longest first. Click a trace id for its waterfall below.").
			Height(12).Span(24).
			Datasource(tempoDS()).
			WithTarget(tempo.NewDataqueryBuilder().
				Datasource(tempoDS()).
				RefId("A").
				QueryType("traceql").
				Query(search).
				Limit(100).
				Spss(3).
				TableType(tempo.SearchTableTypeTraces)).
			SortBy([]cog.Builder[common.TableSortByFieldState]{
				common.NewTableSortByFieldStateBuilder().DisplayName("Duration").Desc(true),
			}).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{
				dashboard.NewDashboardLinkBuilder("Show waterfall").
					Type(dashboard.DashboardLinkTypeLink).
					Url("/d/tokentrace-traces/tokentrace-traces?${__url_time_range}&var-" + varTraceID + "=${__data.fields.traceID}"),
			})).
		WithPanel(dashboard.NewPanelBuilder().
			Type("traces").
			Title("Waterfall").
			Description("One trace: client span, proxy span with its first_token and token events, upstream child span.").
			Height(16).Span(24).
			Datasource(tempoDS()).
			WithTarget(tempo.NewDataqueryBuilder().
				Datasource(tempoDS()).
				RefId("A").
				QueryType("traceql").
				Query("${" + varTraceID + "}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("TTFT p99 with exemplars").
			Description("Each dot is one request's trace id (exemplar); click it to open the trace in Tempo.").
			Unit("s").Min(0).Height(8).Span(24).
			Datasource(promDS()).
			WithTarget(promQuery("A",
				fmt.Sprintf(`histogram_quantile(0.99, sum by (le, %s) (rate(%s_bucket{%s=~"$%s"}[$__rate_interval])))`,
					labelModel, metricTTFT, labelModel, varModel),
				"{{"+labelModel+"}}").Exemplar(true))).
		Build()
}

func textOption(v string) dashboard.VariableOption {
	return dashboard.VariableOption{
		Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr(v)},
		Value: dashboard.StringOrArrayOfString{String: cog.ToPtr(v)},
	}
}

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
	search := TraceSearchQuery()
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
			Title(slowestTitle).
			Description("Tempo's search returns the 100 most recent proxy server spans that match (Tempo cannot sort a search by " +
				"duration), and this table sorts those by duration, longest first. To see the slowest requests of the time range " +
				"rather than recent ones, raise \"slower than\" until fewer than 100 match: the TTFT p99 panel below is a good " +
				"first value. Click a trace id for its waterfall below.").
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
			// An explicit (empty) reducer: the SDK's default writes null, which its own strict schema rejects.
			Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{})).
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
			Description("Each dot is one request's trace id (exemplar); click it to open the trace in Tempo. " +
				"Tempo keeps traces as long as Prometheus keeps samples (TOKENTRACE_RETENTION in compose.yaml, 360h), " +
				"so a dot leads to a trace for as long as it is shown.").
			Unit("s").Min(0).Height(8).Span(24).
			Datasource(promDS()).
			WithTarget(promQuery("A",
				fmt.Sprintf(`histogram_quantile(0.99, sum by (le, %s) (rate(%s_bucket{%s=~"$%s"}[$__rate_interval])))`,
					labelModel, metricTTFT, labelModel, varModel),
				"{{"+labelModel+"}}").Exemplar(true))).
		Build()
}

// slowestTitle says what the table holds: Tempo returns the most recent matches, not the slowest.
const slowestTitle = "Requests slower than $" + varMinDuration + " (latest 100, longest first)"

// TraceSearchQuery is the TraceQL of the requests table. The model is matched with a raw (backquoted)
// string: Grafana's regex format escapes a name like qwen2.5:7b-instruct as qwen2\.5:7b-instruct, and a
// backslash before "." is not an escape TraceQL's double-quoted strings accept (grafana/tempo#3086), while
// a raw string takes it as it is.
func TraceSearchQuery() string {
	return fmt.Sprintf(
		"{ kind = server && span.gen_ai.request.model =~ `${%s:regex}` && duration >= $%s } | "+
			"select(span.gen_ai.request.model, span.gen_ai.response.time_to_first_chunk, span.gen_ai.usage.output_tokens, span.error.type)",
		varModel, varMinDuration)
}

func textOption(v string) dashboard.VariableOption {
	return dashboard.VariableOption{
		Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr(v)},
		Value: dashboard.StringOrArrayOfString{String: cog.ToPtr(v)},
	}
}

package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Serving is the LLM-serving dashboard: latency figures of docs/METRICS.md, rates, in-flight requests,
// errors and Ollama's queue wait, filtered by model, upstream and scenario.
func Serving() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder("tokentrace — LLM serving").
		Uid("tokentrace-serving").
		Description("TTFT, time per output token, inter-chunk latency, rates and errors measured by the tokentrace proxy.").
		Tags([]string{"tokentrace", "llm"}).
		Refresh("10s").
		Time("now-30m", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(labelVariable(varModel, labelModel, metricDuration+"_count")).
		WithVariable(labelVariable(varUpstream, labelUpstream, metricDuration+"_count")).
		WithVariable(labelVariable(varScenario, labelScenario, metricDuration+"_count"))

	b.WithRow(dashboard.NewRowBuilder("Latency"))
	b.WithPanel(latencyPanel("Time to first token", metricTTFT,
		"t_first_token − t_start at the proxy, successful requests that produced output. Dots are exemplars: click one for its trace.",
		true))
	b.WithPanel(byModelPanel("TTFT p95 by model and scenario",
		fmt.Sprintf(`histogram_quantile(0.95, sum by (le, %s, %s) (rate(%s_bucket{%s}[$__rate_interval])))`,
			labelModel, labelScenario, metricTTFT, selector()),
		"{{"+labelModel+"}} {{"+labelScenario+"}}", "s"))
	b.WithPanel(latencyPanel("Time per output token", metricTPOT,
		"(t_last_token − t_first_token) / (output tokens − 1), per request; 1/TPOT is the per-request decode speed.",
		false))
	b.WithPanel(latencyPanel("Inter-chunk latency", metricITL,
		"Every gap between consecutive output-carrying chunks, pooled over requests; never includes TTFT.",
		false))
	b.WithPanel(latencyPanel("Request duration", metricDuration,
		"t_end − t_start at the proxy, every request.", false))
	b.WithPanel(latencyPanel("Ollama queue wait", metricQueueWait,
		"Ollama's total_duration − load − prompt_eval − eval from the final chunk, clamped at 0: time the request waited for a slot.",
		false))

	b.WithRow(dashboard.NewRowBuilder("Traffic"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Request rate").
		Description("Requests/s by model: from the proxy's duration histogram, and counted from server spans by the collector's span_metrics connector.").
		Unit("reqps").Min(0).Height(8).Span(12).
		Datasource(promDS()).
		WithTarget(promQuery("A",
			fmt.Sprintf(`sum by (%s) (rate(%s_count{%s}[$__rate_interval]))`, labelModel, metricDuration, selector()),
			"{{"+labelModel+"}} (metrics)")).
		WithTarget(promQuery("B",
			fmt.Sprintf(`sum by (%s) (rate(%s{%s=~"$%s", %s=~"$%s", %s="SPAN_KIND_SERVER"}[$__rate_interval]))`,
				labelModel, metricSpanCalls, labelModel, varModel, labelScenario, varScenario, labelSpanKind),
			"{{"+labelModel+"}} (spans)")))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("In-flight requests").
		Description("Requests the proxy is serving right now (headers received, body not yet finished). " +
			"Counted before the upstream is chosen, so only the model filter applies.").
		Unit("short").Min(0).Height(8).Span(12).
		Datasource(promDS()).
		WithTarget(promQuery("A",
			fmt.Sprintf(`sum by (%s) (%s{%s=~"$%s"})`, labelModel, metricInFlight, labelModel, varModel),
			"{{"+labelModel+"}}")))
	b.WithPanel(byModelPanel("Output tokens/s",
		fmt.Sprintf(`sum by (%s, %s) (rate(%s_sum{%s}[$__rate_interval]))`,
			labelModel, labelScenario, metricTokens, selector(labelTokenType+`="output"`)),
		"{{"+labelModel+"}} {{"+labelScenario+"}}", "short"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Errors by type").
		Description("Failed requests/s by error.type (status ≥ 400, transport failure, error inside the stream, stream cut short).").
		Unit("reqps").Min(0).Height(8).Span(12).
		Datasource(promDS()).
		DrawStyle(common.GraphDrawStyleBars).
		WithTarget(promQuery("A",
			fmt.Sprintf(`sum by (%s) (rate(%s_count{%s}[$__rate_interval]))`,
				labelErrorType, metricDuration, selector(labelErrorType+`!=""`)),
			"{{"+labelErrorType+"}}")))

	b.WithRow(dashboard.NewRowBuilder("Pipeline"))
	for _, p := range pipelinePanels() {
		b.WithPanel(p)
	}
	return b.Build()
}

// latencyPanel shows p50/p95/p99 of a histogram in seconds.
func latencyPanel(title, metric, description string, exemplars bool) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit("s").Min(0).Height(8).Span(12).
		Datasource(promDS()).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true).
			Calcs([]string{"mean", "max", "lastNotNull"}))
	for _, q := range quantiles(metric) {
		p.WithTarget(q.Exemplar(exemplars))
	}
	return p
}

// byModelPanel is one query split by its legend's labels.
func byModelPanel(title, expr, legend, unit string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Unit(unit).Min(0).Height(8).Span(12).
		Datasource(promDS()).
		WithTarget(promQuery("A", expr, legend))
}

package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The collector's own metrics (service.telemetry, scraped by Prometheus as job otel-collector), as the
// collector names them at level basic; Prometheus 3 stores its counters without a _total suffix.
const (
	metricRecvSpans        = "otelcol_receiver_accepted_spans"
	metricRecvSpansRefused = "otelcol_receiver_refused_spans"
	metricSentSpans        = "otelcol_exporter_sent_spans"
	metricSentSpansFailed  = "otelcol_exporter_send_failed_spans"
	metricRecvPoints       = "otelcol_receiver_accepted_metric_points"
	metricRecvPointsRef    = "otelcol_receiver_refused_metric_points"
	metricSentPoints       = "otelcol_exporter_sent_metric_points"
	metricSentPointsFailed = "otelcol_exporter_send_failed_metric_points"
	metricQueueSize        = "otelcol_exporter_queue_size"
	metricQueueCapacity    = "otelcol_exporter_queue_capacity"
)

// pipelinePanels is the row about the telemetry pipeline itself: what the collector took in, refused,
// exported, failed to export and holds in its queues, the spans the proxy dropped, and whether every
// scrape target answers. A gap here explains a gap in every other panel.
func pipelinePanels() []*timeseries.PanelBuilder {
	rate := func(metric, by string) string {
		return fmt.Sprintf(`sum by (%s) (rate(%s[$__rate_interval]))`, by, metric)
	}
	// The collector exports a failure counter only once something failed: until then
	// each exporter shows 0, taken from its sent counter.
	failed := func(metric, sent string) string {
		return rate(metric, "exporter") + " or " + rate(sent, "exporter") + " * 0"
	}
	return []*timeseries.PanelBuilder{
		pipelinePanel("Collector: spans in and out",
			"Spans/s the collector's receivers accepted and refused (memory_limiter), and its exporters sent and failed to send (to Tempo, and to the span_metrics and servicegraph connectors).",
			"short",
			promQuery("A", rate(metricRecvSpans, "receiver"), "{{receiver}} accepted"),
			promQuery("B", rate(metricRecvSpansRefused, "receiver"), "{{receiver}} refused"),
			promQuery("C", rate(metricSentSpans, "exporter"), "{{exporter}} sent"),
			promQuery("D", failed(metricSentSpansFailed, metricSentSpans), "{{exporter}} failed")),
		pipelinePanel("Collector: metric points in and out",
			"Metric points/s scraped from the proxy (and made by span_metrics and servicegraph), refused, sent to Prometheus by remote write, and failed.",
			"short",
			promQuery("A", rate(metricRecvPoints, "receiver"), "{{receiver}} accepted"),
			promQuery("B", rate(metricRecvPointsRef, "receiver"), "{{receiver}} refused"),
			promQuery("C", rate(metricSentPoints, "exporter"), "{{exporter}} sent"),
			promQuery("D", failed(metricSentPointsFailed, metricSentPoints), "{{exporter}} failed")),
		pipelinePanel("Collector: export queue",
			"Batches waiting in each exporter's sending queue, against its capacity: a queue that stays full means the store is down or slow, and refusals follow.",
			"short",
			promQuery("A", fmt.Sprintf(`max by (exporter) (%s)`, metricQueueSize), "{{exporter}} queued"),
			promQuery("B", fmt.Sprintf(`max by (exporter) (%s)`, metricQueueCapacity), "{{exporter}} capacity")),
		pipelinePanel("Spans exported and dropped by the proxy",
			"Spans/s the collector accepted from the proxy, and spans dropped because it was down or slow (a request is never delayed for telemetry).",
			"short",
			promQuery("A", fmt.Sprintf(`sum(rate(%s[$__rate_interval]))`, metricSpansExported), "exported"),
			promQuery("B", fmt.Sprintf(`sum(rate(%s[$__rate_interval]))`, metricSpansDropped), "dropped")),
		pipelinePanel("Scrape health",
			"1 when the last scrape of a target answered, 0 when not: Prometheus's own targets (itself, the collector) and the collector's scrape of the proxy.",
			"short",
			promQuery("A", `min by (job, instance) (up)`, "{{job}} {{instance}}")),
	}
}

func pipelinePanel(title, description, unit string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit(unit).Min(0).Height(8).Span(12).
		Datasource(promDS())
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

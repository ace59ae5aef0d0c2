// Package dashboards builds tokentrace's Grafana dashboards in Go with the Grafana Foundation SDK.
// The committed JSON under grafana/dashboards is generated from here (`go generate ./internal/dashboards`,
// or `make dashboards`); a test fails when it is stale. The e2e test runs every PromQL expression
// returned by PrometheusQueries against a real Prometheus.
package dashboards

//go:generate go run ./gen -out ../../grafana/dashboards

// Prometheus names of the proxy's metrics, after the OTel → Prometheus translation (docs/METRICS.md).
const (
	metricTTFT          = "gen_ai_client_operation_time_to_first_chunk_seconds"
	metricTPOT          = "tokentrace_client_time_per_output_token_seconds"
	metricDuration      = "gen_ai_client_operation_duration_seconds"
	metricITL           = "gen_ai_client_operation_time_per_output_chunk_seconds"
	metricTokens        = "gen_ai_client_token_usage"
	metricInFlight      = "tokentrace_server_active_requests"
	metricQueueWait     = "tokentrace_ollama_queue_wait_seconds"
	metricSpansExported = "tokentrace_telemetry_spans_exported_total"
	metricSpansDropped  = "tokentrace_telemetry_spans_dropped_total"
	// Calls counted from spans by the collector's span_metrics connector (namespace traces.span.metrics).
	metricSpanCalls = "traces_span_metrics_calls_total"
)

// Label names, after translation of the attribute names.
const (
	labelModel     = "gen_ai_request_model"
	labelUpstream  = "gen_ai_provider_name" // set per upstream by the proxy (--provider)
	labelScenario  = "tokentrace_scenario"
	labelErrorType = "error_type"
	labelTokenType = "gen_ai_token_type"
	labelSpanKind  = "span_kind"
)

// Data source uids, as provisioned in grafana/provisioning/datasources.
const (
	prometheusUID = "prometheus"
	tempoUID      = "tempo"
)

// Dashboard variables: every serving panel filters by them.
const (
	varModel    = "model"
	varUpstream = "upstream"
	varScenario = "scenario"
)

{{/*
The collector's configuration: otel-collector/config.yaml with the proxy scraped through Kubernetes service
discovery (every proxy pod of this release, on its admin port) instead of one address. Its connectors and
pipelines are that file's, word for word (internal/kubecheck's TestChartCollectorMatchesTheShippedConfig). A "$" the collector must
not expand is written "$$".
*/}}
{{- define "tokentrace.collectorConfig" -}}
{{- $c := .Values.collector }}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
  prometheus:
    config:
      scrape_configs:
        - job_name: tokentrace-proxy
          scrape_interval: {{ $c.scrapeInterval }}
          # OpenMetrics first: exemplars (trace ids on histogram buckets) exist only in that format.
          scrape_protocols: [OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText0.0.4]
          metrics_path: /metrics
          kubernetes_sd_configs:
            - role: pod
              namespaces:
                names: [{{ .Release.Namespace }}]
              selectors:
                - role: pod
                  label: app.kubernetes.io/instance={{ .Release.Name }},app.kubernetes.io/component=proxy
          relabel_configs:
            - source_labels: [__meta_kubernetes_pod_container_port_name]
              regex: admin
              action: keep
            - source_labels: [__meta_kubernetes_pod_name]
              target_label: pod
            - source_labels: [__meta_kubernetes_pod_node_name]
              target_label: node
            - source_labels: [__meta_kubernetes_namespace]
              target_label: namespace
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:
    timeout: 1s
    send_batch_size: 1024
connectors:
  span_metrics:
    namespace: traces.span.metrics
    metrics_flush_interval: 5s
    # Dimension combinations kept per service; a client cannot make more series than this.
    aggregation_cardinality_limit: 1000
    # A combination without spans for this long stops being exported (its series ends in Prometheus).
    metrics_expiration: 15m
    histogram:
      unit: s
      explicit:
        buckets: [5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2500ms, 5s, 10s, 30s, 60s, 120s, 300s]
    dimensions:
      - name: gen_ai.operation.name
      - name: gen_ai.request.model
      - name: gen_ai.provider.name
      - name: error.type
      - name: tokentrace.scenario
    exemplars:
      enabled: true
  # traces_service_graph_request_total, _failed_total, _server_seconds and _client_seconds: the series Grafana's
  # Tempo service map and node graph read. An edge is a client span and the server span under it (load tester →
  # proxy). The engine sends no spans, so the proxy's upstream client span finds no partner: after store.ttl it
  # becomes an edge to a virtual node named by its server.address (proxy → simulator or ollama), labelled
  # virtual_node="server". A server span without a caller (curl, a browser) becomes an edge from "user".
  servicegraph:
    # Spans of one request reach the collector from two processes, each batching for up to a second, then
    # through the batch processor: wait this long for the partner span before calling it a virtual node.
    store:
      ttl: 10s
      max_items: 10000
    virtual_node_peer_attributes: [peer.service, server.address]
    virtual_node_extra_label: true
    metrics_flush_interval: 5s
    # The span-metrics buckets: LLM requests take up to minutes, the connector's default stops at 15 s.
    latency_histogram_buckets: [5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2500ms, 5s, 10s, 30s, 60s, 120s, 300s]
exporters:
  otlp_grpc/traces:
    endpoint: {{ required "collector.tracesEndpoint: the OTLP/gRPC trace store (host:port) is required when collector.enabled" $c.tracesEndpoint }}
    tls:
      insecure: true
  prometheus_remote_write:
    endpoint: {{ required "collector.remoteWriteURL: the Prometheus remote-write URL is required when collector.enabled" $c.remoteWriteURL }}
    tls:
      insecure: true
    target_info:
      enabled: false
    # The scrape's pod, node and namespace labels reach Prometheus (the HPA's metrics adapter needs pod and
    # namespace).
    resource_to_telemetry_conversion:
      enabled: true
service:
  telemetry:
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 0.0.0.0
                port: 8888
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp_grpc/traces, span_metrics, servicegraph]
    metrics:
      receivers: [prometheus, span_metrics, servicegraph]
      processors: [memory_limiter, batch]
      exporters: [prometheus_remote_write]
{{- end }}

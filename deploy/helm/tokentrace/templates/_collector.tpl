{{/*
The collector's configuration: otel-collector/config.yaml with the proxy scraped through Kubernetes service
discovery (every proxy pod of this release, on its admin port) instead of one address. A "$" the collector must
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
      exporters: [otlp_grpc/traces, span_metrics]
    metrics:
      receivers: [prometheus, span_metrics]
      processors: [memory_limiter, batch]
      exporters: [prometheus_remote_write]
{{- end }}

{{/* Names and labels shared by every template. */}}

{{- define "tokentrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tokentrace.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object; pass a dict with "ctx" (the root) and "component". */}}
{{- define "tokentrace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{ include "tokentrace.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: tokentrace
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tokentrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokentrace.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tokentrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tokentrace.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tokentrace.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tokentrace.collectorName" -}}
{{- printf "%s-collector" (include "tokentrace.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The OTLP endpoint pods export spans to: the value, else the chart's collector, else none. */}}
{{- define "tokentrace.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint }}
{{- .Values.telemetry.otlpEndpoint }}
{{- else if .Values.collector.enabled }}
{{- printf "http://%s:4317" (include "tokentrace.collectorName" .) }}
{{- end }}
{{- end }}

{{/* OpenTelemetry environment of a pod: the endpoint, sampler and Kubernetes resource attributes (Downward API). */}}
{{- define "tokentrace.otelEnv" -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- $attrs := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" }}
{{- range $k, $v := .Values.telemetry.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- with (include "tokentrace.otlpEndpoint" .) }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.telemetry.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with .Values.telemetry.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The grace period: the value, checked, or preStop + drain + 10 s. */}}
{{- define "tokentrace.gracePeriod" -}}
{{- $p := .Values.proxy }}
{{- $min := add (int $p.preStopSleepSeconds) (int $p.drainTimeoutSeconds) }}
{{- if kindIs "invalid" $p.terminationGracePeriodSeconds }}
{{- add $min 10 }}
{{- else if le (int $p.terminationGracePeriodSeconds) $min }}
{{- fail (printf "proxy.terminationGracePeriodSeconds %v must be longer than proxy.preStopSleepSeconds + proxy.drainTimeoutSeconds (%d): the kubelet would kill streams the proxy is still draining" $p.terminationGracePeriodSeconds $min) }}
{{- else }}
{{- int $p.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

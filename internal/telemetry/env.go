package telemetry

import (
	"fmt"

	"net/url"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TraceConfigFromEnv reads the standard OpenTelemetry variables through
// getenv (pass os.Getenv from main): OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER,
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _INSECURE, _HEADERS,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
// OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT and OTEL_SPAN_EVENT_COUNT_LIMIT.
// serviceName is used when OTEL_SERVICE_NAME is unset.
func TraceConfigFromEnv(getenv func(string) string, serviceName string) (TraceConfig, error) {
	c := TraceConfig{ServiceName: serviceName}
	first := func(keys ...string) (string, string) {
		for _, k := range keys {
			if v := strings.TrimSpace(getenv(k)); v != "" {
				return k, v
			}
		}
		return "", ""
	}
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		c.Disabled = true
	}
	if exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp != "" && exp != "otlp" && exp != "none" {
		return c, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exp)
	}
	c.FromEnv = true
	if k, v := first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); v != "" {
		if v != ProtocolGRPC && v != ProtocolHTTP {
			return c, fmt.Errorf("%s=%q: want grpc or http/protobuf", k, v)
		}
		c.Protocol = v
	}
	if _, v := first("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		c.Endpoint = v
	}
	if k, v := first("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("%s=%q: not a boolean", k, v)
		}
		c.Insecure = b
	}
	if k, v := first("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"); v != "" {
		h, err := keyValues(v)
		if err != nil {
			return c, fmt.Errorf("%s: %w", k, err)
		}
		c.Headers = h
	}
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" {
		c.ServiceName = v
	}
	if v := getenv("OTEL_RESOURCE_ATTRIBUTES"); strings.TrimSpace(v) != "" {
		ra, err := keyValues(v)
		if err != nil {
			return c, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		c.ResourceAttributes = ra
		if n, ok := ra["service.name"]; ok && getenv("OTEL_SERVICE_NAME") == "" {
			c.ServiceName = n
		}
	}
	if err := samplerFromEnv(getenv, &c); err != nil {
		return c, err
	}
	ints := []struct {
		key string
		dst *int
	}{
		{"OTEL_BSP_MAX_QUEUE_SIZE", &c.Batch.QueueSize},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &c.Batch.BatchSize},
		{"OTEL_SPAN_EVENT_COUNT_LIMIT", &c.MaxEvents},
	}
	for _, f := range ints {
		if v := strings.TrimSpace(getenv(f.key)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c, fmt.Errorf("%s=%q: not a non-negative integer", f.key, v)
			}
			*f.dst = n
		}
	}
	durs := []struct {
		key string
		dst *time.Duration
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", &c.Batch.BatchTimeout},
		{"OTEL_BSP_EXPORT_TIMEOUT", &c.Batch.ExportTimeout},
	}
	for _, f := range durs {
		if v := strings.TrimSpace(getenv(f.key)); v != "" {
			d, err := millis(v)
			if err != nil {
				return c, fmt.Errorf("%s: %w", f.key, err)
			}
			*f.dst = d
		}
	}
	return c, c.Validate()
}

// samplerFromEnv reads OTEL_TRACES_SAMPLER[_ARG] with the meanings the
// OpenTelemetry specification gives them: traceidratio samples by trace id
// whatever the parent decided; only the parentbased_ forms follow the parent.
func samplerFromEnv(getenv func(string) string, c *TraceConfig) error {
	s := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, error) {
		r := 1.0
		if arg != "" {
			var err error
			if r, err = strconv.ParseFloat(arg, 64); err != nil || r < 0 || r > 1 {
				return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: not a ratio in 0..1", arg)
			}
		}
		return sdktrace.TraceIDRatioBased(r), nil
	}
	var err error
	switch s {
	case "":
		return nil
	case "always_on":
		c.Sampler = sdktrace.AlwaysSample()
	case "always_off":
		c.Sampler = sdktrace.NeverSample()
	case "traceidratio":
		c.Sampler, err = ratio()
	case "parentbased_always_on":
		c.Sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "parentbased_always_off":
		c.Sampler = sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		var root sdktrace.Sampler
		if root, err = ratio(); err == nil {
			c.Sampler = sdktrace.ParentBased(root)
		}
	default:
		return fmt.Errorf("OTEL_TRACES_SAMPLER=%q: not supported (always_on, always_off, traceidratio and their parentbased_ forms are)", s)
	}
	return err
}

// keyValues reads the "k1=v1,k2=v2" lists of OTEL_*_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES (values URL-encoded).
func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", pair)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", k, err)
		}
		out[k] = dv
	}
	return out, nil
}

//go:build tools

// Package deps pins the project's direct dependencies while the packages that
// use them are being written, so every helper shares one go.sum.
package deps

import (
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/shirou/gopsutil/v4/process"
	_ "github.com/tsenart/vegeta/v12/lib"
	_ "github.com/vulcand/oxy/v2/forward"
	_ "github.com/vulcand/oxy/v2/roundrobin"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	_ "go.opentelemetry.io/otel/exporters/prometheus"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "go.opentelemetry.io/otel/semconv/v1.41.0"
	_ "go.uber.org/goleak"
	_ "gonum.org/v1/plot"
)

package telemetry

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Metrics is a meter provider read by Prometheus, and the /metrics handler
// that serves it. It uses its own registry, never the global one.
type Metrics struct {
	Provider *sdkmetric.MeterProvider
	Registry *prometheus.Registry
	// Handler serves /metrics, negotiating OpenMetrics so exemplars
	// (trace ids of sampled spans) are exposed.
	Handler http.Handler
}

// NewMetrics builds a meter provider whose readings the returned Handler
// serves, beside the process and Go runtime collectors. res (nil for the
// SDK's default) should be the tracer provider's, so both name the same
// service; Prometheus shows it as target_info. Exemplars are kept for measurements made inside
// a sampled span (the SDK's trace-based filter).
func NewMetrics(res *resource.Resource) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	// The process's own health, as every Go service exposes it:
	// process_resident_memory_bytes, process_open_fds, go_goroutines, …
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register process metrics: %w", err)
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register Go runtime metrics: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("create Prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithReader(exp)}
	if res != nil {
		opts = append(opts, sdkmetric.WithResource(res))
	}
	return &Metrics{
		Provider: sdkmetric.NewMeterProvider(opts...),
		Registry: reg,
		Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			EnableOpenMetrics: true,
			ErrorHandling:     promhttp.ContinueOnError,
		}),
	}, nil
}

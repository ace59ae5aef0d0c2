package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tokentrace/tokentrace/internal/subcommand"
	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// newTracing builds the OTLP tracer provider when the environment names an
// endpoint (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT); nil otherwise, and then
// requests still send a traceparent with fresh ids.
func newTracing(env *environment) (*telemetry.Tracing, error) {
	cfg, err := telemetry.TraceConfigFromEnv(env.getenv, "tokentrace-loadtest")
	if err != nil {
		return nil, subcommand.UsageError{Err: fmt.Errorf("OpenTelemetry environment: %w", err)}
	}
	if cfg.Disabled || cfg.Endpoint == "" {
		return nil, nil
	}
	t, err := telemetry.NewTracing(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("set up tracing: %w", err)
	}
	return t, nil
}

func shutdownTracing(env *environment, t *telemetry.Tracing) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		fmt.Fprintf(env.stderr, "loadtest: %v\n", err)
	}
}

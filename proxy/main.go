// Command proxy is tokentrace's transparent, streaming, OpenTelemetry-
// instrumented gateway for Ollama and OpenAI-compatible servers.
//
//	proxy --listen 127.0.0.1:11435 --upstream http://127.0.0.1:11434
//
// Traces go out over OTLP (gRPC, or HTTP with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf) as the standard OTEL_* variables say;
// metrics, /healthz and /readyz are on the admin listener.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/tokentrace/tokentrace/internal/gateway"
)

func main() {
	gateway.TuneGC() // for the process's life
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr, sig))
}

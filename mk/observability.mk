# Observability: the collector built from otel-collector/manifest.yaml, Debian's Prometheus, Jaeger v2 as the
# trace store the e2e test reads back, the Grafana dashboards generated from Go, and the e2e stage.
# Everything heavy is cached in $(CACHE): a second `make test` builds and installs nothing.
# See docs/observability.md.

OTELCOL_BUILDER := go.opentelemetry.io/collector/cmd/builder@v0.165.0
OTELCOL_MANIFEST := otel-collector/manifest.yaml
# Keyed by the manifest's content: editing the manifest builds a new collector beside the old one.
OTELCOL_DIR := $(CACHE)/otelcol-$(shell sha256sum $(OTELCOL_MANIFEST) | cut -c1-16)
OTELCOL_BIN := $(OTELCOL_DIR)/otelcol-tokentrace

JAEGER_VERSION := v1.76.0
JAEGER_BIN := $(TOOLS)/jaeger-$(JAEGER_VERSION)/jaeger

# apt needs root; use sudo when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: otelcol prometheus-install jaeger observability-tools dashboards check-observability-config test-e2e

otelcol: $(OTELCOL_BIN)
jaeger: $(JAEGER_BIN)
observability-tools: otelcol prometheus-install jaeger

# About 6 minutes on 2 cores (the Prometheus receiver is most of it). Built in a scratch folder and moved
# into place last, so an interrupted build leaves nothing that looks finished.
$(OTELCOL_BIN):
	@echo "building the collector from $(OTELCOL_MANIFEST) (several minutes on 2 cores)"
	rm -rf $(OTELCOL_DIR).build && mkdir -p $(OTELCOL_DIR).build
	cp $(OTELCOL_MANIFEST) $(OTELCOL_DIR).build/manifest.yaml
	cd $(OTELCOL_DIR).build && $(GO) run $(OTELCOL_BUILDER) --config manifest.yaml
	mkdir -p $(OTELCOL_DIR)
	mv $(OTELCOL_DIR).build/otelcol-tokentrace/otelcol-tokentrace $@
	rm -rf $(OTELCOL_DIR).build

# Debian's prometheus (2.42) and promtool; nothing happens when both are on PATH.
prometheus-install:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then :; else \
		echo "installing Debian's prometheus"; \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends prometheus; \
	fi

# `go install …@version` refuses this module (its go.mod has a replace directive), so build inside the
# downloaded module, with its own go.mod and go.sum.
$(JAEGER_BIN):
	@mkdir -p $(dir $@)
	@echo "building jaeger $(JAEGER_VERSION) (Jaeger v2: OTLP in, query API out; a few minutes)"
	dir=$$(cd $(dir $@) && $(GO) mod download -json github.com/jaegertracing/jaeger@$(JAEGER_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		test -n "$$dir" && cd "$$dir" && $(GO) build -trimpath -o $@.tmp ./cmd/jaeger
	mv $@.tmp $@

# Regenerate grafana/dashboards from internal/dashboards (a unit test fails when they differ).
dashboards:
	$(GO) generate ./internal/dashboards

# The configs as their own tools see them.
check-observability-config: $(OTELCOL_BIN) prometheus-install
	OTELCOL_TELEMETRY_PORT=0 $(OTELCOL_BIN) validate --config=otel-collector/config.yaml
	promtool check config prometheus/prometheus.yml

# The stack for real on loopback: proxy, simulator, load tester, collector, Prometheus, Jaeger.
# Serial (-p 1) and after the unit tests; see e2e/.
test-e2e: $(OTELCOL_BIN) prometheus-install $(JAEGER_BIN)
	TOKENTRACE_OTELCOL_BIN=$(OTELCOL_BIN) TOKENTRACE_JAEGER_BIN=$(JAEGER_BIN) \
		$(GO) test -tags e2e -p 1 -count=1 -timeout 15m ./e2e/...

TEST_STAGES += test-e2e

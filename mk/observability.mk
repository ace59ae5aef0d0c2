# Observability: the collector built from otel-collector/manifest.yaml, Prometheus built from its Go module at
# the release compose.yaml pins, Jaeger v2 as the trace store the e2e test reads back, the Grafana dashboards
# generated from Go, the rule tests, and the e2e stage.
# Everything heavy is cached in $(CACHE): a second `make test` builds and installs nothing.
# See docs/observability.md.

# The builder release; otel-collector/Dockerfile builds compose's image with the same (a test compares them).
OTELCOL_BUILDER_VERSION := v0.165.0
OTELCOL_BUILDER := go.opentelemetry.io/collector/cmd/builder@$(OTELCOL_BUILDER_VERSION)
OTELCOL_MANIFEST := otel-collector/manifest.yaml
# Keyed by the manifest's content: editing the manifest builds a new collector beside the old one.
OTELCOL_DIR := $(CACHE)/otelcol-$(shell sha256sum $(OTELCOL_MANIFEST) | cut -c1-16)
OTELCOL_BIN := $(OTELCOL_DIR)/otelcol-tokentrace

JAEGER_VERSION := v1.76.0
JAEGER_BIN := $(TOOLS)/jaeger-$(JAEGER_VERSION)/jaeger

# Prometheus 3.16.0 is served by the Go module proxy as github.com/prometheus/prometheus v0.316.0
# (Prometheus tags v3.X.Y are module versions v0.3XX.Y). compose.yaml pins prom/prometheus:v$(PROMETHEUS_VERSION);
# a unit test (e2e/versions_test.go) fails when the two differ.
PROMETHEUS_VERSION := 3.16.0
PROMETHEUS_MODULE := github.com/prometheus/prometheus@v0.316.0
PROMETHEUS_DIR := $(TOOLS)/prometheus-$(PROMETHEUS_VERSION)
PROMETHEUS_BIN := $(PROMETHEUS_DIR)/prometheus
PROMTOOL_BIN := $(PROMETHEUS_DIR)/promtool

.PHONY: otelcol prometheus jaeger observability-tools dashboards check-observability-config test-rules test-e2e

otelcol: $(OTELCOL_BIN)
prometheus: $(PROMETHEUS_BIN)
jaeger: $(JAEGER_BIN)
observability-tools: otelcol prometheus jaeger

# About 6 minutes on 2 cores (the Prometheus receiver is most of it); with the health_check extension, 14 min
# on the shared, loaded 2 cores; with the servicegraph connector, 18 min from an empty Go build cache at load
# average 4–9 (seconds when only the manifest changed). Built in a scratch folder and moved
# into place last, so an interrupted build leaves nothing that looks finished.
$(OTELCOL_BIN):
	@echo "building the collector from $(OTELCOL_MANIFEST) (several minutes on 2 cores)"
	rm -rf $(OTELCOL_DIR).build && mkdir -p $(OTELCOL_DIR).build
	cp $(OTELCOL_MANIFEST) $(OTELCOL_DIR).build/manifest.yaml
	cd $(OTELCOL_DIR).build && $(GO) run $(OTELCOL_BUILDER) --config manifest.yaml
	mkdir -p $(OTELCOL_DIR)
	mv $(OTELCOL_DIR).build/otelcol-tokentrace/otelcol-tokentrace $@
	rm -rf $(OTELCOL_DIR).build

# prometheus and promtool from the module zip, built inside the downloaded module (its own go.mod and go.sum),
# like Jaeger below. The zip has no compiled web UI; without the builtinassets tag Prometheus serves its
# API and a "UI not built" page, which is all the tests and compose's Grafana use. The version is stamped as
# the release build does, so `prometheus --version` says $(PROMETHEUS_VERSION). Built in a scratch folder and
# moved into place last. remove_all_sd leaves out the service-discovery plugins (Kubernetes, the clouds, Consul…),
# most of the build: the project's configs use static targets only. The compose image has them all; everything
# else is the same release.
$(PROMETHEUS_BIN):
	@echo "building prometheus $(PROMETHEUS_VERSION) and promtool from $(PROMETHEUS_MODULE) (10+ minutes on 2 cores)"
	rm -rf $(PROMETHEUS_DIR).build && mkdir -p $(PROMETHEUS_DIR).build
	dir=$$(cd $(PROMETHEUS_DIR).build && $(GO) mod download -json $(PROMETHEUS_MODULE) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		test -n "$$dir" && cd "$$dir" && GOWORK=off \
		$(GO) build -trimpath -tags netgo,remove_all_sd \
			-ldflags "-X github.com/prometheus/common/version.Version=$(PROMETHEUS_VERSION) -X github.com/prometheus/common/version.Branch=module-proxy" \
			-o $(PROMETHEUS_DIR).build/ ./cmd/prometheus ./cmd/promtool
	$(PROMETHEUS_DIR).build/prometheus --version | grep -q 'version $(PROMETHEUS_VERSION) '
	rm -rf $(PROMETHEUS_DIR) && mv $(PROMETHEUS_DIR).build $(PROMETHEUS_DIR)

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
check-observability-config: $(OTELCOL_BIN) $(PROMETHEUS_BIN)
	OTELCOL_TELEMETRY_PORT=0 $(OTELCOL_BIN) validate --config=otel-collector/config.yaml
	$(PROMTOOL_BIN) check config prometheus/prometheus.yml

# The recording and alerting rules: checked, then unit-tested (series in, alerts out) by the pinned promtool.
test-rules: $(PROMETHEUS_BIN)
	$(PROMTOOL_BIN) check rules prometheus/rules/*.rules.yml
	$(PROMTOOL_BIN) test rules prometheus/rules/*.test.yml

# The stack for real on loopback: proxy, simulator, load tester, collector, Prometheus (the release compose
# pins), Jaeger. Serial (-p 1) and after the unit tests; see e2e/.
test-e2e: $(OTELCOL_BIN) $(PROMETHEUS_BIN) $(JAEGER_BIN)
	TOKENTRACE_OTELCOL_BIN=$(OTELCOL_BIN) TOKENTRACE_JAEGER_BIN=$(JAEGER_BIN) \
		TOKENTRACE_PROMETHEUS_BIN=$(PROMETHEUS_BIN) TOKENTRACE_PROMTOOL_BIN=$(PROMTOOL_BIN) \
		$(GO) test -tags e2e -p 1 -count=1 -timeout 20m ./e2e/...

TEST_STAGES += test-rules test-e2e

# The shipped stack on a machine with a Docker engine (not these test machines, which have none):
# `docker compose up --wait` with the demo profile, then Grafana's API (data sources healthy, every dashboard
# loads, each Prometheus query of the dashboards returns data), Tempo (a trace of the demo load) and the
# service graph series, through Grafana's data source proxy. Leaves the stack running; `docker compose down`
# stops it. See docs/observability.md.
.PHONY: stack-smoke
stack-smoke:
	$(GO) test -tags "e2e stacksmoke" -count=1 -timeout 20m -run TestStackSmoke -v ./e2e/...

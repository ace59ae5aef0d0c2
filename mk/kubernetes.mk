# Kubernetes: the Helm chart in deploy/helm/tokentrace, checked by a real helm and applied with server-side dry-run
# to a real kube-apiserver backed by a real etcd, both started on loopback by the test. See docs/kubernetes.md.
#
# helm, etcd and kube-apiserver are built from the Go module proxy into versioned folders under $(TOOLS), each in a
# scratch folder and moved into place last: a second `make test` builds nothing, and two builds at once never see a
# half-built tool.

HELM_VERSION := v4.3.1
HELM_BIN := $(TOOLS)/helm-$(HELM_VERSION)/helm
ETCD_VERSION := v3.7.3
ETCD_BIN := $(TOOLS)/etcd-$(ETCD_VERSION)/etcd
KUBE_VERSION := v1.37.2
# The staging modules (k8s.io/api, k8s.io/apiserver, …) that k8s.io/kubernetes $(KUBE_VERSION) is released with.
KUBE_STAGING_VERSION := v0.37.2
KUBE_APISERVER_BIN := $(TOOLS)/kube-apiserver-$(KUBE_VERSION)/kube-apiserver

CHART := deploy/helm/tokentrace

.PHONY: helm etcd kube-apiserver kubernetes-tools test-kubernetes

helm: $(HELM_BIN)
etcd: $(ETCD_BIN)
kube-apiserver: $(KUBE_APISERVER_BIN)
kubernetes-tools: helm etcd kube-apiserver

# helm's go.mod has no replace directive, so go install works; it writes the binary last.
$(HELM_BIN):
	@mkdir -p $(dir $@)
	@echo "building helm $(HELM_VERSION)"
	rm -rf $(dir $@).build
	GOBIN=$(dir $@).build $(GO) install -trimpath \
		-ldflags "-X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(dir $@).build/helm $@
	rmdir $(dir $@).build

# The etcd binary is the main package at the root of go.etcd.io/etcd/server/v3. That module's go.mod replaces its
# sibling modules with ../api and friends, which are not in its module zip, so neither `go install` nor a build
# inside the downloaded module works. A throwaway module that requires it builds it instead: replace directives of
# a dependency are ignored, and the siblings resolve to their published $(ETCD_VERSION).
$(ETCD_BIN):
	@mkdir -p $(dir $@)
	@echo "building etcd $(ETCD_VERSION)"
	rm -rf $(dir $@).build && mkdir -p $(dir $@).build
	cd $(dir $@).build && printf 'module tokentrace.invalid/etcd-build\n\ngo 1.26.0\n' > go.mod && \
		$(GO) get go.etcd.io/etcd/server/v3@$(ETCD_VERSION) && \
		$(GO) build -trimpath -o etcd go.etcd.io/etcd/server/v3
	mv $(dir $@).build/etcd $@
	rm -rf $(dir $@).build

# k8s.io/kubernetes replaces its 33 staging modules with ./staging/src/k8s.io/…, and the module zip leaves those
# folders out (each is a module of its own), so the build cannot happen inside the downloaded module. A throwaway
# module requires k8s.io/kubernetes and points every staging module at its published $(KUBE_STAGING_VERSION), the
# way projects that use k8s.io/kubernetes as a library do; the replace lines are generated from kubernetes' own
# go.mod so none is missed.
$(KUBE_APISERVER_BIN):
	@mkdir -p $(dir $@)
	@echo "building kube-apiserver $(KUBE_VERSION) (long: the whole API server)"
	rm -rf $(dir $@).build && mkdir -p $(dir $@).build
	cd $(dir $@).build && \
		gomod=$$($(GO) mod download -json k8s.io/kubernetes@$(KUBE_VERSION) | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$$/\1/p') && \
		test -n "$$gomod" && \
		{ printf 'module tokentrace.invalid/kube-apiserver-build\n\ngo 1.26.0\n\ngodebug default=go1.26\n\nrequire k8s.io/kubernetes $(KUBE_VERSION)\n\nreplace (\n'; \
		  sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*|\t\1 => \1 $(KUBE_STAGING_VERSION)|p' "$$gomod"; \
		  printf ')\n'; } > go.mod && \
		GOFLAGS=-mod=mod $(GO) build -trimpath \
			-ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
			-o kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
	mv $(dir $@).build/kube-apiserver $@
	rm -rf $(dir $@).build

# The CRDs of the chart's optional kinds, from the operators' own modules on the module proxy (read in place from
# the module cache): ServiceMonitor and PodMonitor (Prometheus Operator), OpenTelemetryCollector (OpenTelemetry
# Operator; v0.140.0 is the newest release the proxy serves).
PROMETHEUS_OPERATOR_MODULE := github.com/prometheus-operator/prometheus-operator@v0.85.0
OTEL_OPERATOR_MODULE := github.com/open-telemetry/opentelemetry-operator@v0.140.0
module_dir = $(shell $(GO) mod download -json $(1) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')

# helm lint and helm template with every deploy/helm/tokentrace/ci/*-values.yaml, then every rendered object
# applied with server-side dry-run (strict field validation, Pod Security "restricted") to a real kube-apiserver
# and etcd started on loopback by the test, which stops both. See docs/kubernetes.md.
test-kubernetes: $(HELM_BIN) $(ETCD_BIN) $(KUBE_APISERVER_BIN)
	TOKENTRACE_HELM_BIN=$(HELM_BIN) TOKENTRACE_ETCD_BIN=$(ETCD_BIN) TOKENTRACE_KUBE_APISERVER_BIN=$(KUBE_APISERVER_BIN) \
	TOKENTRACE_PROMETHEUS_OPERATOR_DIR=$(call module_dir,$(PROMETHEUS_OPERATOR_MODULE)) \
	TOKENTRACE_OTEL_OPERATOR_DIR=$(call module_dir,$(OTEL_OPERATOR_MODULE)) \
		$(GO) test -tags kubernetes -p 1 -count=1 -v -timeout 15m -run 'TestChart' ./internal/kubecheck/ \
		| grep -E '^(=== RUN|--- |\s+chart_test.go|ok|FAIL|PASS)'

TEST_STAGES += test-kubernetes

# The chart carries copies of grafana/dashboards (Helm reads only files inside a chart); a unit test compares them.
chart-dashboards:
	cp grafana/dashboards/*.json $(CHART)/dashboards/

.PHONY: chart-dashboards

# proxy: the proxy's cost benchmark. See docs/proxy.md.
#
# bench-proxy runs, side by side against one fast fake upstream on loopback,
# a direct connection, a bare httputil.ReverseProxy and the instrumented
# gateway (with and without per-token events), each proxy in its own child
# process, and prints the figures as Markdown tables (also kept in
# $(BIN)/bench-proxy.md). Pass options with BENCH_PROXY_FLAGS, for example
# BENCH_PROXY_FLAGS='-streams 512 -gap 20ms'. Run it on a quiet machine.

BENCH_PROXY_FLAGS ?=

.PHONY: bench-proxy
bench-proxy:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/proxybench ./proxy/bench
	$(BIN)/proxybench $(BENCH_PROXY_FLAGS) | tee $(BIN)/bench-proxy.md

bench: bench-proxy

# The official SDKs through the proxy (internal/sdktest): the openai npm
# package's responses.create({stream:true}) and @anthropic-ai/sdk's
# messages.stream, against the simulator and a fake upstream with known
# timing. npm installs the pinned package.json into a folder keyed by its
# hash, in a scratch folder moved into place last; a second run installs
# nothing. Serial, without the race detector: the proxy's TTFT is held to
# 1 ms p99 against the upstreams' ground truth, so a missed run is run
# again, three runs at most (see test-loadtest).
SDK_PACKAGE := internal/sdktest/package.json
SDK_NPM_DIR := $(CACHE)/npm-sdk-$(shell sha256sum $(SDK_PACKAGE) | cut -c1-12)

.PHONY: sdk-npm test-sdk
sdk-npm: $(SDK_NPM_DIR)/node_modules

$(SDK_NPM_DIR)/node_modules: $(SDK_PACKAGE)
	@command -v npm >/dev/null || { echo "test-sdk needs Node.js 18 or later and npm"; exit 1; }
	rm -rf $(SDK_NPM_DIR).build
	mkdir -p $(SDK_NPM_DIR).build
	cp $(SDK_PACKAGE) $(SDK_NPM_DIR).build/
	cd $(SDK_NPM_DIR).build && npm install --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -rf $(SDK_NPM_DIR)
	mv $(SDK_NPM_DIR).build $(SDK_NPM_DIR)

SDK_TEST := TOKENTRACE_SDK_NODE_MODULES=$(SDK_NPM_DIR)/node_modules $(GO) test -tags sdk -count=1 -p 1 -timeout 5m ./internal/sdktest/
test-sdk: $(SDK_NPM_DIR)/node_modules
	for try in 1 2 3; do $(SDK_TEST) -args -ttft-p99=1ms && break; \
		[ $$try -lt 3 ] || exit 1; echo "SDK TTFT check missed 1 ms p99 (run $$try of 3); running it again"; done

TEST_STAGES += test-sdk

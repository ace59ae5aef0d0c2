# proxy: the proxy's cost benchmark. See docs/proxy.md.
#
# bench-proxy runs, side by side in one run against one fake SSE upstream on
# loopback (first token after 50 ms), a direct connection, a bare
# httputil.ReverseProxy, the instrumented gateway with its defaults (token
# events on, spans exported over OTLP/gRPC to the project's collector, which
# this target builds once into the cache and the benchmark starts) and nginx
# when it is installed (apt-get install nginx; the column is left out
# otherwise), and the bare proxy again (how far two identical proxies differ
# in the run), at 32 streams unpaced, 256 and 1,000 streams with a token every
# 20 ms, then each API (OpenAI chat, Responses, Messages, Ollama chat) at
# 256 streams, a token every 20 ms, for the CPU per token of each. Each proxy
# is its own child process; its CPU time comes from /proc. It prints
# Markdown tables (also kept in $(BIN)/bench-proxy.md); about 9 minutes. Pass options with BENCH_PROXY_FLAGS, for example
# BENCH_PROXY_FLAGS='-streams 256 -token-gap 20ms -rounds 5'. Run it on a
# quiet machine.

BENCH_PROXY_FLAGS ?=

.PHONY: bench-proxy
bench-proxy: $(OTELCOL_BIN)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/proxybench ./proxy/bench
	$(BIN)/proxybench -otelcol $(OTELCOL_BIN) $(BENCH_PROXY_FLAGS) | tee $(BIN)/bench-proxy.md

bench: bench-proxy

# The official SDKs through the proxy (internal/sdktest): the openai npm
# package's responses.create({stream:true}) and @anthropic-ai/sdk's
# messages.stream, against the simulator and a fake upstream with known
# timing. npm installs the pinned package.json into a folder keyed by its
# hash, in a scratch folder moved into place last; a second run installs
# nothing. Serial, without the race detector.
SDK_PACKAGE := internal/sdktest/package.json
SDK_NPM_DIR := $(CACHE)/npm-sdk-$(shell sha256sum $(SDK_PACKAGE) | cut -c1-12)

.PHONY: sdk-npm test-sdk
sdk-npm: $(SDK_NPM_DIR)/node_modules

# Order-only: the folder is keyed by the file's hash, and a fresh clone's newer file must not reinstall.
$(SDK_NPM_DIR)/node_modules: | $(SDK_PACKAGE)
	@command -v npm >/dev/null || { echo "test-sdk needs Node.js 18 or later and npm"; exit 1; }
	rm -rf $(SDK_NPM_DIR).build
	mkdir -p $(SDK_NPM_DIR).build
	cp $(SDK_PACKAGE) $(SDK_NPM_DIR).build/
	cd $(SDK_NPM_DIR).build && npm install --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -rf $(SDK_NPM_DIR)
	mv $(SDK_NPM_DIR).build $(SDK_NPM_DIR)

SDK_TEST := TOKENTRACE_SDK_NODE_MODULES=$(SDK_NPM_DIR)/node_modules $(GO) test -tags sdk -count=1 -p 1 -timeout 5m ./internal/sdktest/
# In make test: exact tokens and reasoning tokens, TTFT within the test's
# loaded-machine bound. The 1 ms p99 gate is bench-sdk's, for a quiet machine.
test-sdk: $(SDK_NPM_DIR)/node_modules
	$(SDK_TEST)

.PHONY: bench-sdk
bench-sdk: $(SDK_NPM_DIR)/node_modules
	for try in 1 2 3; do $(SDK_TEST) -args -ttft-p99=1ms && break; \
		[ $$try -lt 3 ] || exit 1; echo "SDK TTFT check missed 1 ms p99 (run $$try of 3); running it again"; done
bench: bench-sdk

TEST_STAGES += test-sdk

# bench-balance runs the real proxy binary in front of loopback upstreams of
# known speed: the faster of two serves more (least outstanding requests),
# killing one of three costs at most its requests in flight, and a stalled
# upstream's stream ends within 2.5 s with --stream-idle-timeout 2s.
# Options with BENCH_BALANCE_FLAGS ('-clients 32 -duration 40s').
BENCH_BALANCE_FLAGS ?=

.PHONY: bench-balance
bench-balance:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/proxy ./proxy
	$(GO) build -o $(BIN)/balancebench ./proxy/balancebench
	$(BIN)/balancebench -proxy $(BIN)/proxy -out $(BIN)/bench-balance $(BENCH_BALANCE_FLAGS) | tee $(BIN)/bench-balance.md

bench: bench-balance

# soak-proxy holds 256 concurrent streams through the proxy binary, mixed over
# every streaming API of internal/stream, with clients that leave mid-stream
# and an upstream (the simulator) that restarts, for 30 minutes; it samples
# the proxy's RSS, goroutines and open descriptors every 10 s and fails when
# any grows by more than 10% after the first 5 minutes. Not part of make
# test. Shorten it with SOAK_FLAGS='-duration 6m -warmup 2m -restart-every 90s'
# (the warm-up must include the first restart).
SOAK_FLAGS ?=

.PHONY: soak-proxy
soak-proxy:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/proxy ./proxy
	$(GO) build -o $(BIN)/soak ./proxy/soak
	$(BIN)/soak -proxy $(BIN)/proxy -out $(BIN)/soak-proxy $(SOAK_FLAGS) | tee $(BIN)/soak-proxy.md

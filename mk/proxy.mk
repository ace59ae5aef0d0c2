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
# test. Shorten it with SOAK_FLAGS='-duration 6m -warmup 2m'.
SOAK_FLAGS ?=

.PHONY: soak-proxy
soak-proxy:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/proxy ./proxy
	$(GO) build -o $(BIN)/soak ./proxy/soak
	$(BIN)/soak -proxy $(BIN)/proxy -out $(BIN)/soak-proxy $(SOAK_FLAGS) | tee $(BIN)/soak-proxy.md

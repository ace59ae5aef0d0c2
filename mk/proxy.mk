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

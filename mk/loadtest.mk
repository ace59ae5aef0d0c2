# loadtest: the vegeta CLI for the compatibility stage, the strict timing
# check, and the capacity benchmark. See docs/loadtest.md.

VEGETA_VERSION := v12.13.0
# Versioned folder: a new VEGETA_VERSION installs beside the old one.
VEGETA_BIN := $(TOOLS)/vegeta-$(VEGETA_VERSION)/vegeta

.PHONY: vegeta test-loadtest bench-loadtest

vegeta: $(VEGETA_BIN)

# go install writes the binary last: an interrupted install leaves no file.
$(VEGETA_BIN):
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

# Serial, after the unit tests: the real vegeta CLI reading every encoding,
# pipes, and SIGINT. Nothing here depends on how busy the machine is.
test-loadtest: $(VEGETA_BIN)
	TOKENTRACE_VEGETA_BIN=$(VEGETA_BIN) $(GO) test -tags e2e -count=1 -p 1 -timeout 5m ./loadtest/

# The strict timing gate, not part of make test: the ground-truth timing
# tests held to 1 ms p99 at concurrency 1 and 256, without the race detector.
# On a 2-core machine one stall of the whole process by a neighbour
# (10–30 ms) is a timing error of every chunk in flight, so a missed run is
# run again, three runs at most; run it on a quiet machine.
LOADTEST_TIMING := $(GO) test -count=1 -p 1 -run 'TestTimingMatches' ./internal/loadgen -args -timing-p99=1ms
.PHONY: bench-loadtest-timing
bench-loadtest-timing:
	for try in 1 2 3; do $(LOADTEST_TIMING) && break; \
		[ $$try -lt 3 ] || exit 1; echo "timing check missed 1 ms p99 (run $$try of 3); running it again"; done
bench: bench-loadtest-timing

TEST_STAGES += test-loadtest

# The capacity benchmark: most concurrent streams one loadtest process
# measures within 1 ms p99, beside plain vegeta on the same fake server.
# BENCH_LOADTEST_ARGS passes flags, e.g. -streams=500,1000 -window=10s.
BENCH_LOADTEST_ARGS ?=
bench-loadtest: $(VEGETA_BIN)
	TOKENTRACE_VEGETA_BIN=$(VEGETA_BIN) $(GO) test -tags bench -run TestCapacity -count=1 -v -timeout 60m \
		./loadtest/ -args $(BENCH_LOADTEST_ARGS)

# Three `loadtest attack -shard i/3` processes started together by -start-at against the simulator, merged by
# `loadtest report`, beside one attack of the same total: exact counts, throughput within 20 %, and the real vegeta
# CLI reading a shard's file. Serial; a throughput miss (a loaded machine) is run again, three runs at most.
.PHONY: test-loadtest-shards
test-loadtest-shards: $(VEGETA_BIN)
	for try in 1 2 3; do \
		TOKENTRACE_VEGETA_BIN=$(VEGETA_BIN) $(GO) test -tags shards -count=1 -p 1 -v -timeout 5m -run 'TestShardsBeside' ./loadtest/ \
			| grep -E '^(--- |ok|FAIL)|_test.go:' && break; \
		[ $$try -lt 3 ] || exit 1; echo "shard check failed (run $$try of 3); running it again"; done

TEST_STAGES += test-loadtest-shards

# The supervisor: `make demo` runs the parallelism matrix on the built-in
# simulator (no model, no GPU) through the proxy and prints the report's
# summary; test-supervisor-ollama runs the matrix against the real Ollama.
# See docs/supervisor.md.

.PHONY: demo demo-capacity test-supervisor-ollama

# About three minutes: 2 parallel settings × 2 concurrencies × 2 prompt
# sizes, 15 s each after a 1 s warm-up, answers capped at 96 tokens, a new
# prompt prefix per request (no prompt-cache hits) so prompt size shows.
# Throughput counts the requests that end inside the window (METRICS.md):
# the window spans about four answers of four users at p=4 (3.7 s each), so
# it is not decided by whether one batch of answers ends just inside or
# just outside it, as it was with 5 s windows.
DEMO_FLAGS := --backend sim --num-parallel 1,4 --concurrency 1,4 --prompt-sizes small,large \
	--num-ctx 4096 --duration 15s --warmup 1s --max-tokens 96 --vary-prompts

# The binary's path relative to the checkout, so the output shows no local path.
DEMO_BIN := $(patsubst $(CURDIR)/%,%,$(BIN))/supervisor

demo:
	@mkdir -p $(BIN)
	$(GO) build -o $(DEMO_BIN) ./supervisor
	$(DEMO_BIN) run $(DEMO_FLAGS) --out out/demo-$$(date +%Y%m%d-%H%M%S)

# The capacity question on the simulator: for parallel 1, 2 and 4, the most
# users served within TTFT p95 500 ms and TPOT p95 60 ms (64-token answers),
# found by doubling and bisecting the concurrency, 5 s probes after 2 s of
# warm-up; capacity.csv, probes.jsonl and the report's "Capacity under the
# SLO" section. About 3 minutes on 2 cores (4 on a busy machine).
DEMO_CAPACITY_FLAGS := --backend sim --num-parallel 1,2,4 --search concurrency --max-concurrency 16 \
	--slo ttft_p95=500ms,tpot_p95=60ms --prompt-sizes small --num-ctx 4096 --duration 5s --warmup 2s \
	--max-tokens 64 --vary-prompts

demo-capacity:
	@mkdir -p $(BIN)
	$(GO) build -o $(DEMO_BIN) ./supervisor
	$(DEMO_BIN) run $(DEMO_CAPACITY_FLAGS) --out out/capacity-$$(date +%Y%m%d-%H%M%S)

# The capacity question on the real Ollama v0.17.4 with the generated 25M
# model (mk/simulator.mk makes its store): parallel 1, 2 and 4, small
# prompts, 32-token answers, TTFT p95 1 s and TPOT p95 60 ms, 15 s probes
# after 5 s of warm-up. About 10 minutes; run it on an otherwise idle
# machine (docs/supervisor.md has a run's figures).
CAPACITY_OLLAMA_FLAGS := --num-parallel 1,2,4 --search concurrency --max-concurrency 8 \
	--slo ttft_p95=1s,tpot_p95=60ms --prompt-sizes small --num-ctx 2048 --duration 15s --warmup 5s \
	--max-tokens 32 --vary-prompts

.PHONY: capacity-ollama
capacity-ollama: $(STORE_25M)/created
	$(GO) build -o $(DEMO_BIN) ./supervisor
	OLLAMA_MODELS=$(STORE_25M)/models HOME=$(STORE_25M)/home \
		$(DEMO_BIN) run --backend ollama --ollama-bin $(OLLAMA_BIN) --model tokentrace-25m \
		$(CAPACITY_OLLAMA_FLAGS) --out out/capacity-ollama-$$(date +%Y%m%d-%H%M%S)

# Real llama.cpp timing: serial, after the unit tests, never beside other work.
test-supervisor-ollama: $(OLLAMA_BIN) $(OLLAMA_MODEL_GGUF)
	TOKENTRACE_OLLAMA_BIN=$(OLLAMA_BIN) TOKENTRACE_MODEL_GGUF=$(OLLAMA_MODEL_GGUF) \
		$(GO) test -tags ollama -p 1 -count=1 -timeout 25m -run RealOllama ./supervisor/

TEST_STAGES += test-supervisor-ollama

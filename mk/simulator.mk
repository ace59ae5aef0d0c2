# The Ollama simulator (internal/simulator, `supervisor simulate`).
#
# bench-simulator measures the default profile in real time with the load
# tester's built-in prompts (c=1 TTFT and tok/s, per-stream tok/s at p=4 c=4);
# docs/simulator.md quotes its output. sim runs the simulator in the
# foreground on OLLAMA_HOST (default 127.0.0.1:11434); SIM_FLAGS adds flags.

SIM_FLAGS ?=

.PHONY: bench-simulator sim

bench-simulator:
	$(GO) test -tags calibration -run '^$$' -bench Calibration -benchtime 1x ./internal/simulator/

sim:
	$(GO) run ./supervisor simulate $(SIM_FLAGS)

bench: bench-simulator

# The simulator's wire formats against the real Ollama (v0.17.4; mk/ollama.mk
# builds it once): same statuses, content types, chunk shapes, error bodies.
test-simulator-ollama: $(OLLAMA_BIN) $(OLLAMA_MODEL_GGUF)
	TOKENTRACE_OLLAMA_BIN=$(OLLAMA_BIN) TOKENTRACE_MODEL_GGUF=$(OLLAMA_MODEL_GGUF) \
		$(GO) test -tags ollama -p 1 -count=1 -timeout 10m -run WireMatchesOllama ./internal/simulator/

.PHONY: test-simulator-ollama
TEST_STAGES += test-simulator-ollama

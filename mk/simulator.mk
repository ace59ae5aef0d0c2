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

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

# A profile fitted to this machine's real Ollama (docs/simulator.md): the
# generated 25M-parameter model (the shape of the cpu-25m profile and of
# internal/ollamatest's scheduling checks) is created in a model store under
# $(BIN) (STORE_25M), then `supervisor calibrate` restarts the cached Ollama for each
# setting, fits the profile and checks it on held-out scenarios. It writes
# $(CALIBRATE_OUT)/profile.json and calibration.md. Run it on an otherwise
# idle machine: its figures are timings. Pass options with CALIBRATE_FLAGS.
CAL_MODEL_FLAGS := -name tokentrace-25m -width 512 -blocks 8 -heads 8 -kv-heads 2 -ff 1536 -context 4096 -vocab 1024 -seed 1
CAL_MODEL_KEY := $(shell { printf '%s' '$(CAL_MODEL_FLAGS)'; cat $(filter-out %_test.go,$(wildcard internal/gguf/*.go)); } | sha256sum | cut -c1-12)
CAL_MODEL_GGUF := $(CACHE)/models/25m-$(CAL_MODEL_KEY).gguf
CALIBRATE_OUT ?= out/calibrate-ollama
CALIBRATE_FLAGS ?= --num-parallel 1,2,4 --num-ctx 2048 --rounds 3 --max-tokens 32

$(CAL_MODEL_GGUF):
	@mkdir -p $(dir $@)
	$(GO) run ./supervisor make-model $(CAL_MODEL_FLAGS) -o $@.tmp
	mv $@.tmp $@

# The 25M model in a model store of its own, for an Ollama started with
# OLLAMA_MODELS=$(STORE_25M)/models (calibrate-ollama, capacity-ollama).
STORE_25M := $(BIN)/ollama-25m

$(STORE_25M)/created: $(OLLAMA_BIN) $(CAL_MODEL_GGUF)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ollama-serve ./internal/ollamaproc/cmd/ollama-serve
	rm -rf $(STORE_25M)
	$(BIN)/ollama-serve -ollama-bin $(OLLAMA_BIN) -gguf $(CAL_MODEL_GGUF) -name tokentrace-25m -dir $(STORE_25M) -create-only
	touch $@

.PHONY: calibrate-ollama
calibrate-ollama: $(STORE_25M)/created
	$(GO) build -o $(BIN)/supervisor ./supervisor
	OLLAMA_MODELS=$(STORE_25M)/models HOME=$(STORE_25M)/home \
		$(BIN)/supervisor calibrate --backend ollama --ollama-bin $(OLLAMA_BIN) --model tokentrace-25m \
		--name cpu-25m $(CALIBRATE_FLAGS) --out $(CALIBRATE_OUT)

# A real Ollama, built from the Go module proxy, and a small generated model.
# See docs/ollama.md. Both are cached in $(CACHE): a second `make test` reuses them.

OLLAMA_VERSION := v0.6.5
# Versioned folder: changing OLLAMA_VERSION builds a new binary beside the old one.
OLLAMA_DIR := $(TOOLS)/ollama-$(OLLAMA_VERSION)
OLLAMA_BIN := $(OLLAMA_DIR)/ollama

# The small model the integration tests serve (about 2.5M parameters, F32).
OLLAMA_MODEL_FLAGS := -width 256 -blocks 4 -heads 8 -kv-heads 2 -ff 512 -context 2048 -vocab 512 -seed 1
# Keyed by the flags and the generator's source: a change writes a new model.
OLLAMA_MODEL_KEY := $(shell { printf '%s' '$(OLLAMA_MODEL_FLAGS)'; cat $(filter-out %_test.go,$(wildcard internal/gguf/*.go)); } | sha256sum | cut -c1-12)
OLLAMA_MODEL_GGUF := $(CACHE)/models/tiny-$(OLLAMA_MODEL_KEY).gguf

.PHONY: ollama ollama-model ollama-serve test-ollama

ollama: $(OLLAMA_BIN)
ollama-model: $(OLLAMA_MODEL_GGUF)

# Built into a scratch folder and moved into place, so an interrupted build
# leaves no binary and the next make retries.
$(OLLAMA_BIN):
	@mkdir -p $(OLLAMA_DIR)
	@echo "building ollama $(OLLAMA_VERSION) (CPU-only, cgo; about 3 minutes on 2 cores)"
	rm -rf $(OLLAMA_DIR)/.build
	CGO_ENABLED=1 GOBIN=$(OLLAMA_DIR)/.build $(GO) install github.com/ollama/ollama@$(OLLAMA_VERSION)
	mv $(OLLAMA_DIR)/.build/ollama $@
	rmdir $(OLLAMA_DIR)/.build

$(OLLAMA_MODEL_GGUF):
	@mkdir -p $(dir $@)
	$(GO) run ./supervisor make-model $(OLLAMA_MODEL_FLAGS) -o $@

# For a person: the cached Ollama serves the small model from an isolated model
# store in a temporary folder on a free loopback port, in the foreground; it
# prints the URL, the model's name and curl examples. Ctrl-C stops the server
# and its runner (the whole process group). Extra server environment:
# make ollama-serve OLLAMA_SERVE_FLAGS='-env OLLAMA_NUM_PARALLEL=4'
OLLAMA_SERVE_FLAGS ?=
ollama-serve: $(OLLAMA_BIN) $(OLLAMA_MODEL_GGUF)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ollama-serve ./internal/ollamaproc/cmd/ollama-serve
	@$(BIN)/ollama-serve -ollama-bin $(OLLAMA_BIN) -gguf $(OLLAMA_MODEL_GGUF) $(OLLAMA_SERVE_FLAGS)

# Real llama.cpp timing: serial (-p 1), never beside other heavy work.
test-ollama: $(OLLAMA_BIN) $(OLLAMA_MODEL_GGUF)
	TOKENTRACE_OLLAMA_BIN=$(OLLAMA_BIN) TOKENTRACE_MODEL_GGUF=$(OLLAMA_MODEL_GGUF) \
		$(GO) test -tags ollama -p 1 -count=1 -timeout 20m ./internal/ollamatest/...

TEST_STAGES += test-ollama

# The figures of docs/ollama.md: tok/s of the small model and TTFTs at
# concurrency 4 with OLLAMA_NUM_PARALLEL=1 and 4, real Ollama beside the
# simulator. Run it on an otherwise idle machine.
.PHONY: bench-ollama
bench-ollama: $(OLLAMA_BIN) $(OLLAMA_MODEL_GGUF)
	TOKENTRACE_OLLAMA_BIN=$(OLLAMA_BIN) TOKENTRACE_MODEL_GGUF=$(OLLAMA_MODEL_GGUF) \
		$(GO) test -tags ollama -p 1 -count=1 -v -timeout 20m \
		-run 'TestGeneratedModelServes|TestSchedulingSideBySide' ./internal/ollamatest/ \
		| grep -E '_test.go:[0-9]+:|^(---|ok|FAIL)'

# A real Ollama, built from the Go module proxy, and a small generated model.
# See docs/ollama.md. Both are cached in $(CACHE): a second `make test` reuses them.

OLLAMA_VERSION := v0.17.4
# Versioned folder: changing OLLAMA_VERSION builds a new binary beside the old one.
OLLAMA_DIR := $(TOOLS)/ollama-$(OLLAMA_VERSION)
OLLAMA_BIN := $(OLLAMA_DIR)/ollama
OLLAMA_BUILD := $(OLLAMA_DIR).build

# The module zip leaves out llama.cpp's vendor/ folder; four single-header
# libraries are put back from this npm package (nlohmann json 3.12.0,
# stb_image 2.30, miniaudio 0.11.25 where Ollama vendors 0.11.22).
OLLAMA_HEADERS_NPM := llama.rn@0.12.9
# tarball path -> path under llama/llama.cpp/vendor/
OLLAMA_HEADERS := \
	package/cpp/nlohmann/json.hpp:nlohmann/json.hpp \
	package/cpp/nlohmann/json_fwd.hpp:nlohmann/json_fwd.hpp \
	package/cpp/tools/mtmd/miniaudio/miniaudio.h:miniaudio/miniaudio.h \
	package/cpp/tools/mtmd/stb/stb_image.h:stb/stb_image.h

# The small model the integration tests serve (about 2.5M parameters, F32).
OLLAMA_MODEL_FLAGS := -width 256 -blocks 4 -heads 8 -kv-heads 2 -ff 512 -context 2048 -vocab 512 -seed 1
# Keyed by the flags and the generator's source: a change writes a new model.
OLLAMA_MODEL_KEY := $(shell { printf '%s' '$(OLLAMA_MODEL_FLAGS)'; cat $(filter-out %_test.go,$(wildcard internal/gguf/*.go)); } | sha256sum | cut -c1-12)
OLLAMA_MODEL_GGUF := $(CACHE)/models/tiny-$(OLLAMA_MODEL_KEY).gguf

.PHONY: ollama ollama-model ollama-serve test-ollama

ollama: $(OLLAMA_BIN)
ollama-model: $(OLLAMA_MODEL_GGUF)

# From a writable copy of the module's source (go install cannot: see
# docs/ollama.md), in a scratch folder; the binary is moved into place last,
# so an interrupted build leaves nothing that looks finished and the next make
# starts over. The -ldflags make /api/version report the real version.
$(OLLAMA_BIN):
	@echo "building ollama $(OLLAMA_VERSION) from the module source (CPU-only, cgo; 6 to 15 minutes on 2 cores)"
	rm -rf $(OLLAMA_BUILD) && mkdir -p $(OLLAMA_BUILD)/npm
	dir=$$(cd $(OLLAMA_BUILD) && $(GO) mod download -json github.com/ollama/ollama@$(OLLAMA_VERSION) \
		| sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		test -n "$$dir" || { echo "go mod download gave no module folder for ollama $(OLLAMA_VERSION)"; exit 1; }; \
		cp -r "$$dir" $(OLLAMA_BUILD)/src
	chmod -R u+w $(OLLAMA_BUILD)/src
	cd $(OLLAMA_BUILD)/npm && npm pack --silent $(OLLAMA_HEADERS_NPM) >/dev/null && tar -xzf *.tgz
	for pair in $(OLLAMA_HEADERS); do \
		from=$${pair%%:*}; to=$(OLLAMA_BUILD)/src/llama/llama.cpp/vendor/$${pair#*:}; \
		mkdir -p $$(dirname $$to) && cp $(OLLAMA_BUILD)/npm/$$from $$to; \
	done
	cd $(OLLAMA_BUILD)/src && CGO_ENABLED=1 $(GO) build -trimpath \
		-ldflags "-X github.com/ollama/ollama/version.Version=$(OLLAMA_VERSION:v%=%)" -o $(OLLAMA_BUILD)/ollama .
	mkdir -p $(OLLAMA_DIR)
	mv $(OLLAMA_BUILD)/ollama $@
	rm -rf $(OLLAMA_BUILD)

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

# Ollama v0.6.5, the previous log generation: not part of `make test` (its
# runner lines are tested from captures in internal/backend/testdata); built
# only to refresh those captures. `go install` works for this tag.
OLLAMA_OLD_VERSION := v0.6.5
OLLAMA_OLD_DIR := $(TOOLS)/ollama-$(OLLAMA_OLD_VERSION)
OLLAMA_OLD_BIN := $(OLLAMA_OLD_DIR)/ollama

$(OLLAMA_OLD_BIN):
	@echo "building ollama $(OLLAMA_OLD_VERSION) (CPU-only, cgo; 3 to 10 minutes on 2 cores)"
	rm -rf $(OLLAMA_OLD_DIR).build
	CGO_ENABLED=1 GOBIN=$(OLLAMA_OLD_DIR).build $(GO) install github.com/ollama/ollama@$(OLLAMA_OLD_VERSION)
	mkdir -p $(OLLAMA_OLD_DIR)
	mv $(OLLAMA_OLD_DIR).build/ollama $@
	rm -rf $(OLLAMA_OLD_DIR).build

# Refresh internal/backend/testdata/ollama-<version>/p{1,2,4}.log: the runner
# log lines of both generations serving the small model at p = 1, 2 and 4.
.PHONY: capture-ollama-logs
capture-ollama-logs: $(OLLAMA_BIN) $(OLLAMA_OLD_BIN) $(OLLAMA_MODEL_GGUF)
	TOKENTRACE_OLLAMA_BIN=$(OLLAMA_BIN) TOKENTRACE_MODEL_GGUF=$(OLLAMA_MODEL_GGUF) \
		$(GO) test -tags ollama -p 1 -count=1 -timeout 10m -run 'RunnerLogTells' ./internal/ollamatest/ \
		-args -capture $(CURDIR)/internal/backend/testdata/ollama-$(OLLAMA_VERSION)
	TOKENTRACE_OLLAMA_BIN=$(OLLAMA_OLD_BIN) TOKENTRACE_MODEL_GGUF=$(OLLAMA_MODEL_GGUF) \
		$(GO) test -tags ollama -p 1 -count=1 -timeout 10m -run 'RunnerLogTellsTheSetting' ./internal/ollamatest/ \
		-args -capture $(CURDIR)/internal/backend/testdata/ollama-$(OLLAMA_OLD_VERSION)

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

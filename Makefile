# tokentrace — see README.md. `make demo` runs the main job, `make test` every test.
#
# Tools the tests need (the vegeta CLI, a real Ollama, the collector, Prometheus)
# are installed into $(CACHE) once and reused; nothing is rebuilt when present.
# Each part of the project adds its targets in mk/*.mk.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
CACHE ?= $(HOME)/.cache/tokentrace
TOOLS := $(CACHE)/bin
BIN := $(CURDIR)/bin
export PATH := $(TOOLS):$(PATH)

# Stages that `make test` runs after the unit tests, in order; mk/*.mk append.
TEST_STAGES :=

.PHONY: all build test test-unit demo bench vet clean
all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./proxy ./loadtest ./supervisor

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# Unit and in-process tests (simulator, fake upstreams): fast, parallel, -race.
test-unit: vet
	$(GO) test -race -count=1 ./...

clean:
	rm -rf $(BIN)

include $(sort $(wildcard mk/*.mk))

# `test` is declared last so every stage appended above is in it.
test: test-unit $(TEST_STAGES)

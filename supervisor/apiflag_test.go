package main

import (
	"strings"
	"testing"
)

// TestAPIFlagNamesEveryWire: --api takes every wire API the load tester
// speaks, and names them when it refuses one.
func TestAPIFlagNamesEveryWire(t *testing.T) {
	for _, api := range []string{"ollama", "openai", "responses", "anthropic"} {
		f := engineFlags{backend: "sim", api: api}
		if err := f.validate(); err != nil {
			t.Errorf("--api %s: %v", api, err)
		}
	}
	f := engineFlags{backend: "sim", api: "grpc"}
	if err := f.validate(); err == nil || !strings.Contains(err.Error(), "responses, anthropic") {
		t.Errorf("--api grpc: %v", err)
	}
}

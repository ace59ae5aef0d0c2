//go:build e2e || bench || shards

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binaries builds loadtest and finds vegeta.
func binaries(t *testing.T) (loadtest, vegeta string) {
	t.Helper()
	vegeta = os.Getenv("TOKENTRACE_VEGETA_BIN")
	if vegeta == "" {
		t.Fatal("TOKENTRACE_VEGETA_BIN is not set: run `make test-loadtest`")
	}
	loadtest = filepath.Join(t.TempDir(), "loadtest")
	if out, err := exec.Command("go", "build", "-o", loadtest, ".").CombinedOutput(); err != nil {
		t.Fatalf("build loadtest: %v\n%s", err, out)
	}
	return loadtest, vegeta
}

package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// perf ends by the SIGINT that makes it write its file: stop takes that as
// success (sleep stands in for perf), and a missing perf is refused before
// any load.
func TestPerfRecordStops(t *testing.T) {
	p := &perfRecord{done: make(chan error, 1)}
	p.cmd = exec.Command("sleep", "60")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	if err := p.stop(); err != nil {
		t.Fatalf("stop after SIGINT: %v", err)
	}

	t.Setenv("PATH", t.TempDir())
	o := options{perfPrefix: "/tmp/p", tokens: 32, rounds: 1, duration: time.Second, requestTimeout: time.Second, hold: 1}
	err := o.parse("256", "20ms", "direct,bare", "")
	if err == nil || !strings.Contains(err.Error(), "perf is not on PATH") {
		t.Fatalf("parse with no perf on PATH: %v", err)
	}
}

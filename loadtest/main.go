// Command loadtest drives streaming LLM servers (Ollama, OpenAI-compatible)
// and measures every response the way docs/METRICS.md defines. Its
// subcommands follow vegeta's: `attack` writes vegeta Results (gob, JSON or
// CSV) carrying tokentrace's figures, `report` and `plot` read them, and
// the real vegeta CLI reads them too.
package main

import (
	"io"
	"os"
	"runtime/debug"

	"github.com/tokentrace/tokentrace/internal/subcommand"
)

// command is one subcommand: run parses its own flags.
type command struct {
	summary string
	run     func(env *environment, args []string) error
}

// environment is what a subcommand may touch of the process, so tests can
// run them in-process.
type environment struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrIsTTY    bool
}

var commands = map[string]command{
	"attack": {"send requests and write one result per request", runAttack},
	"report": {"print the METRICS.md figures of results", runReport},
	"plot":   {"chart TTFT and E2E latency over time (HTML or PNG)", runPlot},
}

// gcPercent is the GOGC loadtest runs with unless GOGC is set: each
// collection's assists and stop-the-world phases delay the goroutines
// reading streams, which is timing error; memory is cheap beside that.
const gcPercent = 800

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	env := &environment{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		stderrIsTTY: isTerminal(os.Stderr)}
	os.Exit(run(env, os.Args[1:]))
}

// run dispatches to the subcommand args[0] names, with env as its process.
func run(env *environment, args []string) int {
	bound := make(map[string]subcommand.Command, len(commands))
	for name, c := range commands {
		bound[name] = subcommand.Command{Summary: c.summary, Run: func(args []string) error { return c.run(env, args) }}
	}
	return subcommand.Main("loadtest", bound, examples, env.stderr, args)
}

const examples = "Examples:\n" +
	"  loadtest attack -url http://localhost:11434 -model qwen2.5:7b-instruct -concurrency 4 -duration 1m | tee r.bin | loadtest report\n" +
	"  loadtest attack -url http://localhost:8080 -api openai -rate 2 -arrival poisson -requests 100 | vegeta report\n" +
	"  loadtest report -slo ttft=500ms,tpot=50ms r1.bin r2.bin\n" +
	"  loadtest plot -output latency.html r.bin\n\n" +
	"Run `loadtest <command> -h` for a command's flags."

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Command loadtest drives streaming LLM servers (Ollama, OpenAI-compatible)
// and measures every response the way docs/METRICS.md defines. Its
// subcommands follow vegeta's: `attack` writes vegeta Results (gob, JSON or
// CSV) carrying tokentrace's figures, `report` and `plot` read them, and
// the real vegeta CLI reads them too.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
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

func run(env *environment, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "loadtest: unknown command %q\n\n", args[0])
		usage(env.stderr)
		return 2
	}
	if err := cmd.run(env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.stderr, "loadtest %s: %v\n", args[0], err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks bad input on the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// parseFlags parses args, making every flag problem a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "Usage: loadtest <command> [flags]\n\nCommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nExamples:\n"+
		"  loadtest attack -url http://localhost:11434 -model qwen2.5:7b-instruct -concurrency 4 -duration 1m | tee r.bin | loadtest report\n"+
		"  loadtest attack -url http://localhost:8080 -api openai -rate 2 -arrival poisson -requests 100 | vegeta report\n"+
		"  loadtest report -slo ttft=500ms,tpot=50ms r1.bin r2.bin\n"+
		"  loadtest plot -output latency.html r.bin\n\n"+
		"Run `loadtest <command> -h` for a command's flags.")
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

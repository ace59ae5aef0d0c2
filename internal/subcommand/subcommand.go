// Package subcommand runs command lines of the form `prog <command> [flags]`,
// as vegeta's does: each subcommand parses its own flag set, bad input exits
// with status 2, any other failure with status 1.
package subcommand

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

// Command is one subcommand; Run parses its own flags.
type Command struct {
	Summary string
	Run     func(args []string) error
}

// UsageError marks bad input on the command line (exit status 2).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError with a formatted message.
func Usagef(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// ParseFlags parses args, making every flag problem but -h a UsageError.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError{err}
	}
	return nil
}

// Main runs the subcommand args[0] names and returns the exit status: 0 on
// success or -h, 2 for bad input, 1 for any other failure, whose error it
// prints to stderr prefixed with prog and the subcommand. footer follows
// the list of commands in the usage text.
func Main(prog string, commands map[string]Command, footer string, stderr io.Writer, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(prog, commands, footer, stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", prog, args[0])
		usage(prog, commands, footer, stderr)
		return 2
	}
	if err := cmd.Run(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s %s: %v\n", prog, args[0], err)
		if errors.As(err, new(UsageError)) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(prog string, commands map[string]Command, footer string, w io.Writer) {
	names := make([]string, 0, len(commands))
	width := 0
	for name := range commands {
		names = append(names, name)
		width = max(width, len(name))
	}
	sort.Strings(names)
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", prog)
	for _, name := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, name, commands[name].Summary)
	}
	fmt.Fprintln(w, "\n"+footer)
}

// Command supervisor runs tokentrace's parallelism matrix and the tools
// around it. Each subcommand lives in its own file and registers itself in
// commands; main only dispatches.
package main

import (
	"os"

	"github.com/tokentrace/tokentrace/internal/subcommand"
)

type command = subcommand.Command

// commands is filled by the init functions of the subcommand files.
var commands = map[string]command{}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	return subcommand.Main("supervisor", commands, "Run 'supervisor <command> -h' for a command's flags.", os.Stderr, args)
}

// Command ollama-serve serves a GGUF model with a real Ollama for a person
// to try (`make ollama-serve`): an isolated model store and home in a
// temporary folder, a free loopback port, the model created, then the
// server in the foreground until Ctrl-C, which stops its whole process
// group. If this command is killed outright, the kernel kills the server
// (Pdeathsig) and a guard process (this binary, -guard) kills its runner.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/ollamaproc"
)

// guardFlag runs this binary as the guard of the server's process group.
const guardFlag = "-guard"

type envList []string

func (e *envList) String() string     { return fmt.Sprint(*e) }
func (e *envList) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	if len(os.Args) > 1 && os.Args[1] == guardFlag {
		if err := backend.GuardMain(os.Args[2:], os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "ollama-serve:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ollama-serve:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("ollama-serve", flag.ContinueOnError)
	bin := fs.String("ollama-bin", "", "the ollama binary (required)")
	gguf := fs.String("gguf", "", "the GGUF model file to serve (required)")
	name := fs.String("name", "tokentrace-tiny", "the model's name in requests")
	addr := fs.String("addr", "", "host:port to listen on (default: a free loopback port)")
	dir := fs.String("dir", "", "folder for the server's models, home and log (default: a temporary folder, removed at the end)")
	createOnly := fs.Bool("create-only", false, "create the model in -dir's store and exit, for an Ollama started elsewhere with OLLAMA_MODELS=<dir>/models")
	var env envList
	fs.Var(&env, "env", "`KEY=VALUE` for the server's environment, e.g. OLLAMA_NUM_PARALLEL=4 (repeatable)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *bin == "" || *gguf == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "ollama-serve: -ollama-bin and -gguf are required, and no arguments")
		fs.Usage()
		os.Exit(2)
	}
	if *createOnly && *dir == "" {
		fmt.Fprintln(os.Stderr, "ollama-serve: -create-only needs -dir, the store it fills")
		os.Exit(2)
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "ollama-serve-")
		if err != nil {
			return fmt.Errorf("make a state folder: %w", err)
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program for the guard: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	cfg := ollamaproc.Config{Binary: *bin, Dir: *dir, Addr: *addr, Env: env, Guard: []string{self, guardFlag}}
	if *createOnly {
		if err := ollamaproc.Create(ctx, cfg, *name, *gguf, 2*time.Minute); err != nil {
			return err
		}
		fmt.Printf("model %q created in %s\n", *name, cfg.Dir)
		return nil
	}
	return ollamaproc.Serve(ctx, cfg, *name, *gguf, 2*time.Minute, os.Stdout)
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokentrace/tokentrace/internal/gguf"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

func init() {
	commands["make-model"] = command{
		Summary: "write a llama-architecture GGUF model with random weights",
		Run:     runMakeModel,
	}
}

func runMakeModel(args []string) error {
	def := gguf.DefaultConfig()
	fs := flag.NewFlagSet("make-model", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	out := fs.String("o", "", "output `file` (required; - for stdout)")
	c := def
	fs.IntVar(&c.Width, "width", def.Width, "embedding length")
	fs.IntVar(&c.Blocks, "blocks", def.Blocks, "transformer blocks")
	fs.IntVar(&c.Heads, "heads", def.Heads, "attention heads")
	fs.IntVar(&c.KVHeads, "kv-heads", def.KVHeads, "key/value heads")
	fs.IntVar(&c.FeedForward, "ff", def.FeedForward, "feed-forward length")
	fs.IntVar(&c.Context, "context", def.Context, "trained context length")
	fs.IntVar(&c.Vocab, "vocab", def.Vocab, fmt.Sprintf("vocabulary size (at least %d)", gguf.MinVocab))
	fs.Uint64Var(&c.Seed, "seed", def.Seed, "random seed of the weights")
	fs.StringVar(&c.Name, "name", def.Name, "general.name of the model")
	typ := fs.String("type", "f32", "type of the weight matrices: f32 or q4_0")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return subcommand.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return subcommand.UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *out == "" {
		return subcommand.UsageError{Err: errors.New("-o is required")}
	}
	t, err := gguf.ParseTensorType(*typ)
	if err != nil {
		return subcommand.UsageError{Err: fmt.Errorf("-type: %w", err)}
	}
	c.Type = t
	if err := c.Validate(); err != nil {
		return subcommand.UsageError{Err: err}
	}
	if *out == "-" {
		_, err := gguf.Write(os.Stdout, c)
		return err
	}
	n, err := writeModelFile(*out, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d parameters, %d bytes\n", *out, c.Params(), n)
	return nil
}

// writeModelFile writes through a temporary file in the same folder, so a
// half-written model never has the final name.
func writeModelFile(path string, c gguf.Config) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("create model file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	n, err := gguf.Write(tmp, c)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("write model %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("write model %s: %w", path, err)
	}
	return n, nil
}

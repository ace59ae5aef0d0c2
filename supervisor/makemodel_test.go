package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokentrace/tokentrace/internal/gguf"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

func TestMakeModel(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	if err := runMakeModel([]string{"-width", "64", "-blocks", "1", "-heads", "4", "-kv-heads", "2", "-ff", "64",
		"-vocab", "300", "-type", "q4_0", "-seed", "3", "-o", out}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr, err := gguf.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := hdr.Get("llama.embedding_length"); v != uint32(64) {
		t.Errorf("embedding_length %v, want 64", v)
	}
	if v, _ := hdr.Get("general.file_type"); v != uint32(2) {
		t.Errorf("file_type %v, want 2 (Q4_0)", v)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*.tmp"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestMakeModelBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
	}{
		{"no output", nil},
		{"unknown flag", []string{"-o", filepath.Join(dir, "a"), "-depth", "3"}},
		{"heads do not divide width", []string{"-o", filepath.Join(dir, "b"), "-width", "100", "-heads", "8"}},
		{"unknown type", []string{"-o", filepath.Join(dir, "c"), "-type", "q8_k"}},
		{"extra argument", []string{"-o", filepath.Join(dir, "d"), "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runMakeModel(tt.args)
			var ue subcommand.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("runMakeModel(%q) = %v, want a usage error", tt.args, err)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("bad input wrote files: %v", entries)
	}
}

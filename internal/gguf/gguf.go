// Package gguf writes GGUF v3 model files of the llama architecture with
// random weights, so that a real inference engine (Ollama, llama.cpp) can
// serve a model nobody has to download.
//
// The weights are random (normal, σ = 0.05; norms 1), so the output is
// gibberish, but the cost per token is that of a real model of the same
// shape. The same Config always gives the same bytes.
//
// The package also reads the header, metadata and tensor table of a GGUF
// file (Read), which the tests use to check what was written.
package gguf

import (
	"errors"
	"fmt"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the GGUF version written.
const Version = 3

// Alignment is where tensor data starts and is padded to (general.alignment).
const Alignment = 32

// TensorType is a ggml tensor type.
type TensorType uint32

// The tensor types the writer produces.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
)

func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case Q4_0:
		return "Q4_0"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// ParseTensorType reads "f32" or "q4_0" (any case).
func ParseTensorType(s string) (TensorType, error) {
	switch s {
	case "f32", "F32":
		return F32, nil
	case "q4_0", "Q4_0":
		return Q4_0, nil
	}
	return 0, fmt.Errorf("unknown tensor type %q (want f32 or q4_0)", s)
}

// q4Block is the number of weights in one Q4_0 block; each block is an fp16
// scale and 16 bytes of 4-bit weights.
const (
	q4Block      = 32
	q4BlockBytes = 2 + q4Block/2
)

// dataSize is the byte size of a tensor of n elements of type t.
func (t TensorType) dataSize(n int64) int64 {
	switch t {
	case Q4_0:
		return n / q4Block * q4BlockBytes
	case F16:
		return 2 * n
	default:
		return 4 * n
	}
}

// fileType is the general.file_type of a model whose matrices are t.
func (t TensorType) fileType() uint32 {
	switch t {
	case Q4_0:
		return 2 // LLAMA_FTYPE_MOSTLY_Q4_0
	case F16:
		return 1
	default:
		return 0
	}
}

// Shape is a llama model's architecture.
type Shape struct {
	// Width is the embedding length (llama.embedding_length).
	Width int
	// Blocks is the number of transformer blocks (llama.block_count).
	Blocks int
	// Heads is the number of attention heads; Width must divide by it.
	Heads int
	// KVHeads is the number of key/value heads (grouped-query attention);
	// Heads must divide by it.
	KVHeads int
	// FeedForward is the feed-forward hidden size (llama.feed_forward_length).
	FeedForward int
	// Context is the trained context length (llama.context_length).
	Context int
	// Vocab is the vocabulary size; at least MinVocab.
	Vocab int
}

// Config is what Write produces.
type Config struct {
	Shape
	// Name is general.name.
	Name string
	// Seed makes the weights; the same seed gives the same file.
	Seed uint64
	// Type is the type of the weight matrices: F32 or Q4_0. Norms are always F32.
	Type TensorType
}

// DefaultConfig is the small model the tests serve: 2.5M parameters, F32,
// about 10 MB, fast on two CPU cores.
func DefaultConfig() Config {
	return Config{
		Shape: Shape{Width: 256, Blocks: 4, Heads: 8, KVHeads: 2, FeedForward: 512, Context: 2048, Vocab: 512},
		Name:  "tokentrace-tiny",
		Seed:  1,
		Type:  F32,
	}
}

// Validate names the first field that cannot make a model.
func (c Config) Validate() error {
	s := c.Shape
	switch {
	case s.Width <= 0:
		return errors.New("width must be positive")
	case s.Blocks <= 0:
		return errors.New("blocks must be positive")
	case s.Heads <= 0:
		return errors.New("heads must be positive")
	case s.KVHeads <= 0:
		return errors.New("kv heads must be positive")
	case s.FeedForward <= 0:
		return errors.New("feed-forward length must be positive")
	case s.Context <= 0:
		return errors.New("context length must be positive")
	case s.Width%s.Heads != 0:
		return fmt.Errorf("width %d does not divide by heads %d", s.Width, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("heads %d do not divide by kv heads %d", s.Heads, s.KVHeads)
	case (s.Width/s.Heads)%2 != 0:
		return fmt.Errorf("head dimension %d must be even (rotary embedding)", s.Width/s.Heads)
	case s.Vocab < MinVocab:
		return fmt.Errorf("vocabulary %d is smaller than the %d special and byte tokens", s.Vocab, MinVocab)
	case c.Type != F32 && c.Type != Q4_0:
		return fmt.Errorf("tensor type %v not supported (want F32 or Q4_0)", c.Type)
	case c.Type == Q4_0 && (s.Width%q4Block != 0 || s.FeedForward%q4Block != 0):
		return fmt.Errorf("Q4_0 needs width and feed-forward length divisible by %d", q4Block)
	}
	return nil
}

// HeadDim is the size of one attention head.
func (s Shape) HeadDim() int { return s.Width / s.Heads }

// Params is the number of weights of the model.
func (c Config) Params() int64 {
	var n int64
	for _, t := range c.tensors() {
		n += t.elements()
	}
	return n
}

// tensorSpec is one tensor to write: its name, GGUF dims ([in, out]) and type.
type tensorSpec struct {
	name string
	dims []uint64
	typ  TensorType
	norm bool // filled with ones instead of random weights
}

func (t tensorSpec) elements() int64 {
	n := int64(1)
	for _, d := range t.dims {
		n *= int64(d)
	}
	return n
}

// tensors lists the tensors of the model in file order.
func (c Config) tensors() []tensorSpec {
	s := c.Shape
	w, ff, kv := uint64(s.Width), uint64(s.FeedForward), uint64(s.KVHeads*s.HeadDim())
	vocab := uint64(s.Vocab)
	mat := func(name string, in, out uint64) tensorSpec {
		return tensorSpec{name: name, dims: []uint64{in, out}, typ: c.Type}
	}
	norm := func(name string) tensorSpec {
		return tensorSpec{name: name, dims: []uint64{w}, typ: F32, norm: true}
	}
	ts := []tensorSpec{mat("token_embd.weight", w, vocab), norm("output_norm.weight"), mat("output.weight", w, vocab)}
	for b := 0; b < s.Blocks; b++ {
		p := fmt.Sprintf("blk.%d.", b)
		ts = append(ts,
			norm(p+"attn_norm.weight"),
			mat(p+"attn_q.weight", w, w),
			mat(p+"attn_k.weight", w, kv),
			mat(p+"attn_v.weight", w, kv),
			mat(p+"attn_output.weight", w, w),
			norm(p+"ffn_norm.weight"),
			mat(p+"ffn_gate.weight", w, ff),
			mat(p+"ffn_up.weight", w, ff),
			mat(p+"ffn_down.weight", ff, w),
		)
	}
	return ts
}

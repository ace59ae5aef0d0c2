package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
)

// Metadata value types of GGUF.
type ValueType uint32

// The GGUF metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// weightSigma is the standard deviation of the random weights.
const weightSigma = 0.05

// KV is one metadata entry. Value is a uint8, int8, uint16, int16, uint32,
// int32, float32, bool, string, uint64, int64, float64, or a []any of one of
// those (what Read returns); the writer also takes []string, []float32 and
// []int32.
type KV struct {
	Key   string
	Value any
}

// Metadata is the metadata the writer puts in the file for c, in order.
func (c Config) Metadata() []KV {
	s := c.Shape
	v := NewVocabulary(s.Vocab)
	u := func(n int) uint32 { return uint32(n) }
	return []KV{
		{"general.architecture", "llama"},
		{"general.name", c.Name},
		{"general.file_type", c.Type.fileType()},
		{"general.alignment", uint32(Alignment)},
		{"llama.context_length", u(s.Context)},
		{"llama.embedding_length", u(s.Width)},
		{"llama.block_count", u(s.Blocks)},
		{"llama.feed_forward_length", u(s.FeedForward)},
		{"llama.attention.head_count", u(s.Heads)},
		{"llama.attention.head_count_kv", u(s.KVHeads)},
		{"llama.rope.dimension_count", u(s.HeadDim())},
		{"llama.rope.freq_base", float32(10000)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.vocab_size", u(s.Vocab)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", v.Tokens},
		{"tokenizer.ggml.scores", v.Scores},
		{"tokenizer.ggml.token_type", v.Types},
		{"tokenizer.ggml.bos_token_id", uint32(BOSID)},
		{"tokenizer.ggml.eos_token_id", uint32(EOSID)},
		{"tokenizer.ggml.unknown_token_id", uint32(UnknownID)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}
}

// Write writes the model c describes to w and returns the bytes written.
// It streams the weights: memory use does not grow with the model.
func Write(w io.Writer, c Config) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, fmt.Errorf("gguf config: %w", err)
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	e := &encoder{w: bw}
	tensors := c.tensors()
	e.header(tensors, c.Metadata())
	if e.err != nil {
		return cw.n, fmt.Errorf("write gguf header: %w", e.err)
	}
	e.pad(cw.n + int64(bw.Buffered()))
	for i, t := range tensors {
		rng := rand.New(rand.NewPCG(c.Seed, uint64(i)))
		writeTensor(e, t, rng)
		e.pad(cw.n + int64(bw.Buffered()))
		if e.err != nil {
			return cw.n, fmt.Errorf("write tensor %s: %w", t.name, e.err)
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("write gguf: %w", err)
	}
	return cw.n, nil
}

// header writes everything before the tensor data (without the padding).
func (e *encoder) header(tensors []tensorSpec, meta []KV) {
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(meta)))
	for _, kv := range meta {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	var offset uint64
	for _, t := range tensors {
		e.str(t.name)
		e.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.u64(d)
		}
		e.u32(uint32(t.typ))
		e.u64(offset)
		offset = align(offset + uint64(t.typ.dataSize(t.elements())))
	}
}

// Size is the byte size of the file Write produces for c, computed without
// generating the weights.
func (c Config) Size() (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, fmt.Errorf("gguf config: %w", err)
	}
	cw := &countingWriter{w: io.Discard}
	bw := bufio.NewWriter(cw)
	e := &encoder{w: bw}
	tensors := c.tensors()
	e.header(tensors, c.Metadata())
	if err := bw.Flush(); err != nil || e.err != nil {
		return 0, fmt.Errorf("size gguf header: %w", errors.Join(e.err, err))
	}
	n := align(uint64(cw.n))
	for _, t := range tensors {
		n += align(uint64(t.typ.dataSize(t.elements())))
	}
	return int64(n), nil
}

func align(n uint64) uint64 { return (n + Alignment - 1) / Alignment * Alignment }

func writeTensor(e *encoder, t tensorSpec, rng *rand.Rand) {
	n := t.elements()
	buf := make([]byte, 0, 64<<10)
	flush := func() {
		e.raw(buf)
		buf = buf[:0]
	}
	switch {
	case t.norm:
		for range n {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(1))
			if len(buf) >= cap(buf)-4 {
				flush()
			}
		}
	case t.typ == Q4_0:
		// Uniform nibbles n in 0..15 stand for (n−8)·d; their RMS is √21.5·d.
		d := float16bits(float32(weightSigma / math.Sqrt(21.5)))
		for range n / q4Block {
			buf = binary.LittleEndian.AppendUint16(buf, d)
			buf = binary.LittleEndian.AppendUint64(buf, rng.Uint64())
			buf = binary.LittleEndian.AppendUint64(buf, rng.Uint64())
			if len(buf) >= cap(buf)-q4BlockBytes {
				flush()
			}
		}
	default:
		for range n {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(rng.NormFloat64()*weightSigma)))
			if len(buf) >= cap(buf)-4 {
				flush()
			}
		}
	}
	flush()
}

// float16bits converts a normal float32 to IEEE half precision (round to
// nearest); values too small for a normal half become 0.
func float16bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case exp <= 0:
		return sign
	case exp >= 31:
		return sign | 0x7c00
	}
	h := uint32(exp)<<10 | mant>>13
	if mant&0x1000 != 0 { // round half up
		h++
	}
	return sign | uint16(h)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes GGUF's little-endian values and keeps the first error.
type encoder struct {
	w   *bufio.Writer
	err error
	tmp [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.tmp[:4], v)
	e.raw(e.tmp[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.tmp[:8], v)
	e.raw(e.tmp[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

// pad writes zeros from position at up to the next alignment boundary.
func (e *encoder) pad(at int64) {
	var zeros [Alignment]byte
	e.raw(zeros[:int64(align(uint64(at)))-at])
}

func (e *encoder) value(v any) {
	switch x := v.(type) {
	case []string:
		e.u32(uint32(TypeArray))
		e.u32(uint32(TypeString))
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []float32:
		e.u32(uint32(TypeArray))
		e.u32(uint32(TypeFloat32))
		e.u64(uint64(len(x)))
		for _, f := range x {
			e.u32(math.Float32bits(f))
		}
	case []int32:
		e.u32(uint32(TypeArray))
		e.u32(uint32(TypeInt32))
		e.u64(uint64(len(x)))
		for _, n := range x {
			e.u32(uint32(n))
		}
	default:
		t, ok := scalarType(v)
		if !ok {
			e.err = fmt.Errorf("metadata value of type %T not supported", v)
			return
		}
		e.u32(uint32(t))
		e.scalar(v)
	}
}

func scalarType(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, true
	case int8:
		return TypeInt8, true
	case uint16:
		return TypeUint16, true
	case int16:
		return TypeInt16, true
	case uint32:
		return TypeUint32, true
	case int32:
		return TypeInt32, true
	case float32:
		return TypeFloat32, true
	case bool:
		return TypeBool, true
	case string:
		return TypeString, true
	case uint64:
		return TypeUint64, true
	case int64:
		return TypeInt64, true
	case float64:
		return TypeFloat64, true
	}
	return 0, false
}

func (e *encoder) scalar(v any) {
	switch x := v.(type) {
	case uint8:
		e.raw([]byte{x})
	case int8:
		e.raw([]byte{byte(x)})
	case uint16:
		e.raw(binary.LittleEndian.AppendUint16(nil, x))
	case int16:
		e.raw(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		e.raw([]byte{b})
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	}
}

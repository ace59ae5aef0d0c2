package gguf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// small is a model small enough to write in every test.
func small(typ TensorType) Config {
	return Config{
		Shape: Shape{Width: 64, Blocks: 2, Heads: 4, KVHeads: 2, FeedForward: 96, Context: 256, Vocab: MinVocab + 5},
		Name:  "test",
		Seed:  7,
		Type:  typ,
	}
}

func write(t *testing.T, c Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := Write(&buf, c)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Write reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestWriteReadsBack(t *testing.T) {
	for _, typ := range []TensorType{F32, Q4_0} {
		t.Run(typ.String(), func(t *testing.T) {
			c := small(typ)
			data := write(t, c)
			f, err := Read(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if f.Version != 3 {
				t.Errorf("version %d, want 3", f.Version)
			}
			want := map[string]any{
				"general.architecture":                   "llama",
				"general.alignment":                      uint32(32),
				"general.file_type":                      typ.fileType(),
				"llama.context_length":                   uint32(256),
				"llama.embedding_length":                 uint32(64),
				"llama.block_count":                      uint32(2),
				"llama.feed_forward_length":              uint32(96),
				"llama.attention.head_count":             uint32(4),
				"llama.attention.head_count_kv":          uint32(2),
				"llama.rope.dimension_count":             uint32(16),
				"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
				"tokenizer.ggml.model":                   "llama",
				"tokenizer.ggml.bos_token_id":            uint32(1),
				"tokenizer.ggml.eos_token_id":            uint32(2),
				"tokenizer.ggml.unknown_token_id":        uint32(0),
			}
			for k, v := range want {
				got, ok := f.Get(k)
				if !ok || got != v {
					t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, v)
				}
			}
			checkVocab(t, f, c.Vocab)
			checkTensors(t, f, c, int64(len(data)))
		})
	}
}

func checkVocab(t *testing.T, f *File, n int) {
	t.Helper()
	toks, _ := f.Get("tokenizer.ggml.tokens")
	types, _ := f.Get("tokenizer.ggml.token_type")
	scores, _ := f.Get("tokenizer.ggml.scores")
	tl, _ := toks.([]any)
	yl, _ := types.([]any)
	sl, _ := scores.([]any)
	if len(tl) != n || len(yl) != n || len(sl) != n {
		t.Fatalf("vocabulary lengths tokens %d types %d scores %d, want %d", len(tl), len(yl), len(sl), n)
	}
	wantTok := map[int]string{0: "<unk>", 1: "<s>", 2: "</s>", 3: "<0x00>", 3 + 0x0A: "<0x0A>", 258: "<0xFF>", 259: "▁"}
	for i, w := range wantTok {
		if tl[i] != w {
			t.Errorf("token %d = %q, want %q", i, tl[i], w)
		}
	}
	wantType := map[int]int32{0: TokenUnknown, 1: TokenControl, 2: TokenControl, 3: TokenByte, 258: TokenByte, 259: TokenNormal}
	for i, w := range wantType {
		if yl[i] != w {
			t.Errorf("token type %d = %v, want %v", i, yl[i], w)
		}
	}
	seen := map[any]bool{}
	for _, tok := range tl {
		if seen[tok] {
			t.Errorf("token %q appears twice", tok)
		}
		seen[tok] = true
	}
}

func checkTensors(t *testing.T, f *File, c Config, fileSize int64) {
	t.Helper()
	wantCount := 3 + 9*c.Blocks
	if len(f.Tensors) != wantCount {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), wantCount)
	}
	if f.DataOffset%Alignment != 0 {
		t.Errorf("data offset %d not aligned to %d", f.DataOffset, Alignment)
	}
	kv := uint64(c.KVHeads * c.HeadDim())
	wantDims := map[string][]uint64{
		"token_embd.weight":        {64, uint64(c.Vocab)},
		"output.weight":            {64, uint64(c.Vocab)},
		"output_norm.weight":       {64},
		"blk.1.attn_q.weight":      {64, 64},
		"blk.1.attn_k.weight":      {64, kv},
		"blk.1.attn_v.weight":      {64, kv},
		"blk.0.attn_output.weight": {64, 64},
		"blk.0.ffn_gate.weight":    {64, 96},
		"blk.0.ffn_up.weight":      {64, 96},
		"blk.0.ffn_down.weight":    {96, 64},
		"blk.0.ffn_norm.weight":    {64},
	}
	var params int64
	end := uint64(0)
	for _, ti := range f.Tensors {
		if ti.Offset%Alignment != 0 {
			t.Errorf("%s offset %d not aligned", ti.Name, ti.Offset)
		}
		if ti.Offset < end {
			t.Errorf("%s at %d overlaps the tensor before (ends %d)", ti.Name, ti.Offset, end)
		}
		n := int64(1)
		for _, d := range ti.Dims {
			n *= int64(d)
		}
		params += n
		end = ti.Offset + uint64(ti.Type.dataSize(n))
		if d, ok := wantDims[ti.Name]; ok && !equalDims(d, ti.Dims) {
			t.Errorf("%s dims %v, want %v", ti.Name, ti.Dims, d)
		}
		wantType := c.Type
		if strings.HasSuffix(ti.Name, "norm.weight") {
			wantType = F32
		}
		if ti.Type != wantType {
			t.Errorf("%s type %v, want %v", ti.Name, ti.Type, wantType)
		}
	}
	if params != c.Params() {
		t.Errorf("tensors hold %d parameters, Params says %d", params, c.Params())
	}
	if got := f.DataOffset + int64(align(end)); got != fileSize {
		t.Errorf("data ends at %d, file is %d bytes", got, fileSize)
	}
	if size, err := c.Size(); err != nil || size != fileSize {
		t.Errorf("Size() = %d, %v; file is %d bytes", size, err, fileSize)
	}
}

func equalDims(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWeights(t *testing.T) {
	c := small(F32)
	data := write(t, c)
	f, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tensor := func(name string) []byte {
		for _, ti := range f.Tensors {
			if ti.Name == name {
				start := f.DataOffset + int64(ti.Offset)
				n := int64(1)
				for _, d := range ti.Dims {
					n *= int64(d)
				}
				return data[start : start+ti.Type.dataSize(n)]
			}
		}
		t.Fatalf("no tensor %s", name)
		return nil
	}
	for i := 0; i < 64; i++ {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(tensor("output_norm.weight")[4*i:])); v != 1 {
			t.Fatalf("output_norm[%d] = %v, want 1", i, v)
		}
	}
	w := tensor("blk.0.ffn_up.weight")
	var sum, sq float64
	n := len(w) / 4
	for i := 0; i < n; i++ {
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:])))
		sum += v
		sq += v * v
	}
	mean, sd := sum/float64(n), math.Sqrt(sq/float64(n))
	if math.Abs(mean) > 0.01 || math.Abs(sd-weightSigma) > 0.005 {
		t.Errorf("ffn_up weights mean %.4f rms %.4f, want ~0 and ~%v", mean, sd, weightSigma)
	}
}

func TestDeterministic(t *testing.T) {
	for _, typ := range []TensorType{F32, Q4_0} {
		a := sha256.Sum256(write(t, small(typ)))
		b := sha256.Sum256(write(t, small(typ)))
		if a != b {
			t.Errorf("%v: same seed gave different bytes", typ)
		}
		other := small(typ)
		other.Seed++
		if sha256.Sum256(write(t, other)) == a {
			t.Errorf("%v: another seed gave the same bytes", typ)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"zero width", func(c *Config) { c.Width = 0 }, "width must be positive"},
		{"heads do not divide width", func(c *Config) { c.Heads = 3 }, "does not divide by heads"},
		{"kv heads do not divide heads", func(c *Config) { c.KVHeads = 3 }, "kv heads"},
		{"odd head dim", func(c *Config) { c.Width, c.Heads, c.KVHeads = 12, 4, 2 }, "must be even"},
		{"vocabulary too small", func(c *Config) { c.Vocab = 100 }, "vocabulary 100"},
		{"q4_0 width", func(c *Config) { c.Type, c.Width, c.Heads, c.KVHeads = Q4_0, 48, 4, 2 }, "divisible by 32"},
		{"unsupported type", func(c *Config) { c.Type = F16 }, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
			if _, err := Write(&bytes.Buffer{}, c); err == nil {
				t.Fatal("Write accepted an invalid config")
			}
		})
	}
}

func TestDefaultConfigSize(t *testing.T) {
	c := DefaultConfig()
	if p := c.Params(); p < 2_000_000 || p > 3_000_000 {
		t.Errorf("default model has %d parameters, want about 2.5M", p)
	}
	size, err := c.Size()
	if err != nil {
		t.Fatal(err)
	}
	if size < 4*c.Params() {
		t.Errorf("F32 model of %d parameters is only %d bytes", c.Params(), size)
	}
}

func TestFloat16(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{{1, 0x3c00}, {-2, 0xc000}, {0.5, 0x3800}, {65504, 0x7bff}, {1e-9, 0}, {1e9, 0x7c00}}
	for _, tt := range tests {
		if got := float16bits(tt.in); got != tt.want {
			t.Errorf("float16bits(%v) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

func TestReadRejects(t *testing.T) {
	good := write(t, small(F32))
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "magic"},
		{"wrong magic", append([]byte("GGML"), good[4:]...), "not a gguf"},
		{"version 9", append(append([]byte("GGUF"), 9, 0, 0, 0), good[8:]...), "version 9"},
		{"truncated metadata", good[:200], "metadata"},
		{"huge tensor count", append(append([]byte("GGUF"), 3, 0, 0, 0), bytes.Repeat([]byte{0xff}, 16)...), "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	c := small(F32)
	c.Blocks = 1
	if _, err := Write(&buf, c); err != nil {
		f.Fatal(err)
	}
	hdr, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes()[:hdr.DataOffset])
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		if got.DataOffset%Alignment != 0 && got.DataOffset < int64(len(data)) {
			if v, ok := got.Get("general.alignment"); !ok || v == uint32(Alignment) {
				t.Fatalf("data offset %d not aligned", got.DataOffset)
			}
		}
		if got.DataOffset < 24 {
			t.Fatalf("data offset %d inside the fixed header", got.DataOffset)
		}
	})
}

package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Limits that keep Read from allocating on the word of a corrupt file.
const (
	maxStringLen  = 1 << 20
	maxArrayLen   = 1 << 24
	maxEntries    = 1 << 20
	maxTensorDims = 4
)

// File is the header of a GGUF file: everything but the tensor data.
type File struct {
	Version  uint32
	Metadata []KV
	Tensors  []TensorInfo
	// DataOffset is where the tensor data starts in the file; tensor offsets
	// are relative to it.
	DataOffset int64
}

// TensorInfo is one entry of the tensor table.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Read reads the header, metadata and tensor table of a GGUF file (v2 or v3)
// from r. It does not read the tensor data.
func Read(r io.Reader) (*File, error) {
	d := &decoder{r: bufio.NewReader(r)}
	var magic [4]byte
	d.full(magic[:])
	if d.err != nil {
		return nil, fmt.Errorf("read gguf magic: %w", d.err)
	}
	if string(magic[:]) != Magic {
		return nil, fmt.Errorf("not a gguf file: magic %q", magic[:])
	}
	f := &File{Version: d.u32()}
	if d.err == nil && (f.Version < 2 || f.Version > 3) {
		return nil, fmt.Errorf("gguf version %d not supported", f.Version)
	}
	nTensors, nKV := d.u64(), d.u64()
	if d.err == nil && (nTensors > maxEntries || nKV > maxEntries) {
		return nil, fmt.Errorf("gguf header: %d tensors, %d metadata entries: too many", nTensors, nKV)
	}
	for i := uint64(0); i < nKV && d.err == nil; i++ {
		key := d.str()
		val := d.value(ValueType(d.u32()), true)
		f.Metadata = append(f.Metadata, KV{Key: key, Value: val})
	}
	if d.err != nil {
		return nil, fmt.Errorf("read gguf metadata: %w", d.err)
	}
	for i := uint64(0); i < nTensors && d.err == nil; i++ {
		t := TensorInfo{Name: d.str()}
		n := d.u32()
		if d.err == nil && n > maxTensorDims {
			return nil, fmt.Errorf("tensor %q has %d dimensions", t.Name, n)
		}
		for j := uint32(0); j < n; j++ {
			t.Dims = append(t.Dims, d.u64())
		}
		t.Type = TensorType(d.u32())
		t.Offset = d.u64()
		f.Tensors = append(f.Tensors, t)
	}
	if d.err != nil {
		return nil, fmt.Errorf("read gguf tensor table: %w", d.err)
	}
	alignment := uint64(Alignment)
	if v, ok := f.Get("general.alignment"); ok {
		a, ok := v.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("general.alignment %v is not a power of two", v)
		}
		alignment = uint64(a)
	}
	f.DataOffset = int64((uint64(d.n) + alignment - 1) / alignment * alignment)
	return f, nil
}

// decoder reads GGUF's little-endian values and keeps the first error.
type decoder struct {
	r   *bufio.Reader
	n   int64 // bytes read
	err error
	tmp [8]byte
}

func (d *decoder) full(p []byte) {
	if d.err != nil {
		return
	}
	n, err := io.ReadFull(d.r, p)
	d.n += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.err = err
	}
}

func (d *decoder) u8() uint8 {
	d.full(d.tmp[:1])
	return d.tmp[0]
}

func (d *decoder) u16() uint16 {
	d.full(d.tmp[:2])
	return binary.LittleEndian.Uint16(d.tmp[:2])
}

func (d *decoder) u32() uint32 {
	d.full(d.tmp[:4])
	return binary.LittleEndian.Uint32(d.tmp[:4])
}

func (d *decoder) u64() uint64 {
	d.full(d.tmp[:8])
	return binary.LittleEndian.Uint64(d.tmp[:8])
}

func (d *decoder) str() string {
	n := d.u64()
	if d.err != nil {
		return ""
	}
	if n > maxStringLen {
		d.err = fmt.Errorf("string of %d bytes is too long", n)
		return ""
	}
	b := make([]byte, n)
	d.full(b)
	return string(b)
}

// value reads one value of type t; arrays only when allowArray (GGUF arrays
// may nest, but no model uses it and the writer never does).
func (d *decoder) value(t ValueType, allowArray bool) any {
	if d.err != nil {
		return nil
	}
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		b := d.u8()
		if d.err == nil && b > 1 {
			d.err = fmt.Errorf("bool value %d", b)
		}
		return b == 1
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	case TypeArray:
		if !allowArray {
			d.err = errors.New("nested arrays not supported")
			return nil
		}
		et, n := ValueType(d.u32()), d.u64()
		if d.err == nil && n > maxArrayLen {
			d.err = fmt.Errorf("array of %d values is too long", n)
		}
		// Grow as values really arrive: a corrupt length allocates nothing.
		vals := make([]any, 0, min(n, 1024))
		for i := uint64(0); i < n && d.err == nil; i++ {
			vals = append(vals, d.value(et, false))
		}
		return vals
	}
	d.err = fmt.Errorf("unknown value type %d", t)
	return nil
}

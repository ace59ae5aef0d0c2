package gateway

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

var fuzzEncodings = []string{"gzip", "deflate", "br", "zstd"}

// referenceDecode decodes a whole body at once with the same library.
func referenceDecode(enc string, data []byte) ([]byte, error) {
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		r = zr
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(data))
	default:
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	return io.ReadAll(r)
}

// FuzzDecoderMatchesReference: bytes fed to the decoder in pieces, as the
// forwarder reads them, decode to what the library decodes from the whole
// body, and a body it cannot decode ends with an error, never a hang.
func FuzzDecoderMatchesReference(f *testing.F) {
	plain := []byte(`{"model":"m1","message":{"content":"hello"},"done":false}` + "\n")
	for i, enc := range fuzzEncodings {
		var buf bytes.Buffer
		w := encoders[enc](&buf)
		_, _ = w.Write(plain)
		_ = w.Flush()
		_, _ = w.Write(plain)
		_ = w.Close()
		f.Add(buf.Bytes(), uint8(i), uint8(7))
		f.Add(buf.Bytes()[:buf.Len()/2], uint8(i), uint8(1))
	}
	f.Add([]byte("not compressed"), uint8(0), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, which, piece uint8) {
		enc := fuzzEncodings[int(which)%len(fuzzEncodings)]
		var got bytes.Buffer
		d, err := newDecoder(enc, got.Write)
		if err != nil {
			t.Fatal(err)
		}
		step := int(piece)%64 + 1
		for i := 0; i < len(data); i += step {
			part := append([]byte(nil), data[i:min(i+step, len(data))]...) // the forwarder reuses its buffer
			_, _ = d.Write(part)
		}
		derr := d.close(true)
		want, werr := referenceDecode(enc, data)
		if werr == nil && (derr != nil || !bytes.Equal(got.Bytes(), want)) {
			t.Fatalf("%s: decoded %q (err %v), the library %q", enc, got.Bytes(), derr, want)
		}
		if werr != nil && derr == nil {
			t.Fatalf("%s: the library fails (%v), the decoder does not (decoded %q)", enc, werr, got.Bytes())
		}
	})
}

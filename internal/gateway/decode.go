package gateway

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// decoder decodes a copy of a compressed response body for the Meter,
// chunk by chunk as the compressed bytes pass. The decompressors pull from
// a reader, so one runs on its own goroutine; Write hands it the bytes just
// read and waits until it has decoded all it can from them (it asks for
// more input), so the Meter sees each chunk at the moment its bytes
// arrived, exactly as for an uncompressed body, and is never used by two
// goroutines at once.
type decoder struct {
	enc   string
	out   func([]byte) (int, error) // the Meter's Write
	in    chan []byte               // compressed bytes for the decoder
	want  chan struct{}             // the decoder has used all it was given
	done  chan struct{}             // the decoder goroutine ended
	ready bool                      // a want was received and not yet answered
	cur   []byte                    // what the decoder has not read yet (its goroutine only)
	err   error                     // why decoding ended early; read after done
}

// newDecoder starts decoding for a Content-Encoding value; an encoding
// that is not known (or a list of several) is an error, and the body is
// then left unmeasured.
func newDecoder(enc string, out func([]byte) (int, error)) (*decoder, error) {
	switch enc {
	case "gzip", "x-gzip", "deflate", "br", "zstd":
	default:
		return nil, fmt.Errorf("content-encoding %q cannot be decoded by the proxy", clip(enc, 64))
	}
	d := &decoder{enc: enc, out: out, in: make(chan []byte), want: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d, nil
}

func (d *decoder) run() {
	defer close(d.done)
	r, closeFn, err := d.open()
	if err != nil {
		d.err = fmt.Errorf("decode content-encoding %s: %w", d.enc, err)
		return
	}
	defer closeFn()
	buf := make([]byte, 16<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = d.out(buf[:n])
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if !errors.Is(err, errDecodeStopped) {
				d.err = fmt.Errorf("decode content-encoding %s: %w", d.enc, err)
			}
			return
		}
	}
}

func (d *decoder) open() (io.Reader, func(), error) {
	src := (*feedReader)(d)
	switch d.enc {
	case "gzip", "x-gzip":
		r, err := gzip.NewReader(src)
		if err != nil {
			return nil, nil, err
		}
		return r, func() { _ = r.Close() }, nil
	case "deflate": // RFC 9110: the zlib format
		r, err := zlib.NewReader(src)
		if err != nil {
			return nil, nil, err
		}
		return r, func() { _ = r.Close() }, nil
	case "br":
		return brotli.NewReader(src), func() {}, nil
	default: // zstd, decoded on this goroutine only
		r, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	}
}

// Write gives the decoder bytes read from the upstream and returns when
// they are decoded (or the decoder has stopped).
func (d *decoder) Write(p []byte) (int, error) {
	if !d.await() {
		return len(p), nil
	}
	d.ready = false
	select {
	case d.in <- p:
	case <-d.done:
		return len(p), nil
	}
	d.await()
	return len(p), nil
}

// await waits until the decoder asks for input; false when it has stopped.
func (d *decoder) await() bool {
	if d.ready {
		return true
	}
	select {
	case <-d.want:
		d.ready = true
		return true
	case <-d.done:
		return false
	}
}

// close ends the input: a clean end lets the decoder finish (and notice a
// truncated body), else it is stopped. It waits for the goroutine and
// returns why decoding failed, if it did.
func (d *decoder) close(clean bool) error {
	if d.await() {
		if clean {
			close(d.in)
		} else {
			d.in <- nil // a nil slice tells feedReader to stop
		}
	}
	<-d.done
	return d.err
}

var errDecodeStopped = errors.New("decoding stopped")

// feedReader is the decoder's source: it returns the bytes fed, asking
// for more when they are used up.
type feedReader decoder

func (f *feedReader) Read(p []byte) (int, error) {
	if len(f.cur) == 0 {
		f.want <- struct{}{}
		b, ok := <-f.in
		switch {
		case !ok:
			return 0, io.EOF
		case b == nil:
			return 0, errDecodeStopped
		}
		f.cur = b
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// ReadByte makes feedReader an io.ByteReader, so the flate decompressor
// reads it directly instead of through a bufio.Reader that would read
// ahead (and block for more input before returning what it has).
func (f *feedReader) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

package gateway

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
)

// flushWriter is a compressor that can push out what it holds, as a
// streaming server does after every chunk.
type flushWriter interface {
	io.WriteCloser
	Flush() error
}

var encoders = map[string]func(io.Writer) flushWriter{
	"gzip":    func(w io.Writer) flushWriter { return gzip.NewWriter(w) },
	"deflate": func(w io.Writer) flushWriter { return zlib.NewWriter(w) },
	"br":      func(w io.Writer) flushWriter { return brotli.NewWriter(w) },
	"zstd": func(w io.Writer) flushWriter {
		e, _ := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		return e
	},
}

// compressingUpstream streams chunks like chunked does, compressed with enc
// ("" for none) and flushed chunk by chunk; it writes every byte it sends
// to sent.
func compressingUpstream(t *testing.T, enc string, chunks []string, sent *bytes.Buffer, done chan<- struct{}) string {
	t.Helper()
	return fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		began := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", ndjson)
		if enc == "" {
			chunked(w, ndjson, chunks, gapDelay, firstDelay)
			return
		}
		w.Header().Set("Content-Encoding", enc)
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		f.Flush()
		out := io.MultiWriter(w, sent)
		zw := encoders[enc](out) // made within the first delay: its cost is the upstream's, not the proxy's
		for i, c := range chunks {
			time.Sleep(time.Until(began.Add(firstDelay + time.Duration(i)*gapDelay)))
			_, _ = io.WriteString(zw, c)
			_ = zw.Flush()
			f.Flush()
		}
		_ = zw.Close()
		f.Flush()
	}).URL
}

// TestCompressedStreamsAreMeasuredLikePlainOnes: the same stream, sent
// plain and in each encoding, gives the same chunk and token counts and
// the same TTFT (within the unit run's tolerance), and the client gets the
// upstream's compressed bytes unchanged.
func TestCompressedStreamsAreMeasuredLikePlainOnes(t *testing.T) {
	const n = 4
	chunks := ollamaStream(n)
	chunks = append(chunks[:n-1:n-1], chunks[n-1]+chunks[n])
	type result struct {
		chunks, outTokens, inTokens int64
		ttft                        float64
	}
	measure := func(t *testing.T, enc string) result {
		var sent bytes.Buffer
		done := make(chan struct{})
		rg := newRig(t, Config{}, compressingUpstream(t, enc, chunks, &sent, done))
		req, _ := http.NewRequest("POST", rg.url+"/api/chat", strings.NewReader(`{"model":"m1"}`))
		req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		resp, err := rg.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		<-done
		rg.settle(t, 0)
		if enc != "" {
			if resp.Header.Get("Content-Encoding") != enc || !bytes.Equal(got, sent.Bytes()) {
				t.Errorf("client got %d bytes (encoding %q), want the upstream's %d %s bytes unchanged",
					len(got), resp.Header.Get("Content-Encoding"), sent.Len(), enc)
			}
		}
		s := rg.span(t, "chat")
		a := attrs(s)
		if e, ok := a[semconv.ErrorTypeKey]; ok {
			t.Fatalf("%q stream recorded as error %s (%v)", enc, e.AsString(), a[attrErrorMessage].AsString())
		}
		if u, ok := a[attrUnmeasured]; ok {
			t.Fatalf("%q stream unmeasured: %s", enc, u.AsString())
		}
		return result{
			chunks:    a[attrOutputChunks].AsInt64(),
			outTokens: a[semconv.GenAIUsageOutputTokensKey].AsInt64(),
			inTokens:  a[semconv.GenAIUsageInputTokensKey].AsInt64(),
			ttft:      a[semconv.GenAIResponseTimeToFirstChunkKey].AsFloat64(),
		}
	}
	plain := measure(t, "")
	if plain.chunks != n || plain.outTokens != n || plain.inTokens != 7 {
		t.Fatalf("plain stream measured %+v, want %d chunks, %d output and 7 input tokens", plain, n, n)
	}
	for enc := range encoders {
		t.Run(enc, func(t *testing.T) {
			got := measure(t, enc)
			if got.chunks != plain.chunks || got.outTokens != plain.outTokens || got.inTokens != plain.inTokens {
				t.Errorf("%s measured %+v, plain %+v", enc, got, plain)
			}
			// Wide above: a loaded machine stalls; the ordering test below
			// shows, independent of load, that each chunk is measured before
			// the next is sent.
			within(t, enc+" TTFT", got.ttft, firstDelay.Seconds(), tolBelow, 2)
			t.Logf("%s TTFT %.4f s, plain %.4f s", enc, got.ttft, plain.ttft)
		})
	}
}

// TestCompressedChunksAreFlushedOneByOne: the upstream compresses and
// sends chunk k+1 only after the client has decoded chunk k, and the proxy
// has measured the first token before the second chunk is even sent.
func TestCompressedChunksAreFlushedOneByOne(t *testing.T) {
	chunks := ollamaStream(3)
	for enc := range encoders {
		t.Run(enc, func(t *testing.T) {
			ack := make(chan struct{})
			var secondSent time.Time
			srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", ndjson)
				w.Header().Set("Content-Encoding", enc)
				w.WriteHeader(http.StatusOK)
				zw := encoders[enc](w)
				for i, c := range chunks {
					if i == 1 {
						secondSent = time.Now()
					}
					_, _ = io.WriteString(zw, c)
					_ = zw.Flush()
					w.(http.Flusher).Flush()
					select {
					case <-ack:
					case <-time.After(10 * time.Second):
						t.Error("the client never got a chunk: the proxy holds it back")
						return
					}
				}
				_ = zw.Close()
			})
			rg := newRig(t, Config{}, srv.URL)
			resp, err := rg.client.Post(rg.url+"/api/chat", "application/json", strings.NewReader(`{"model":"m1"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			zr, err := decodingReader(enc, resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range chunks {
				got := make([]byte, len(want))
				if _, err := io.ReadFull(zr, got); err != nil || string(got) != want {
					t.Fatalf("chunk %d: %q, %v", i, got, err)
				}
				ack <- struct{}{}
			}
			_, _ = io.Copy(io.Discard, zr)
			resp.Body.Close()
			s := waitSpan(t, rg, "chat")
			var first time.Time
			for _, e := range s.Events() {
				if e.Name == eventFirstToken {
					first = e.Time
				}
			}
			if first.IsZero() || !first.Before(secondSent) {
				t.Errorf("first token measured at %v, the second chunk sent at %v: want it measured before", first, secondSent)
			}
		})
	}
}

// decodingReader is a client's decoder for enc.
func decodingReader(enc string, r io.Reader) (io.Reader, error) {
	switch enc {
	case "gzip":
		return gzip.NewReader(r)
	case "deflate":
		return zlib.NewReader(r)
	case "br":
		return brotli.NewReader(r), nil
	default:
		return zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	}
}

// TestUnknownEncodingPassesThroughUnmeasured: bytes the proxy cannot decode
// reach the client unchanged and the request is not an error.
func TestUnknownEncodingPassesThroughUnmeasured(t *testing.T) {
	body := "\x1f\x9dsome LZW bytes"
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ndjson)
		w.Header().Set("Content-Encoding", "compress")
		_, _ = io.WriteString(w, body)
	})
	rg := newRig(t, Config{}, srv.URL)
	resp, got := rg.do(t, "POST", "/api/chat", `{"model":"m1"}`, nil)
	if resp.StatusCode != 200 || string(got) != body {
		t.Fatalf("client got %d %q", resp.StatusCode, got)
	}
	a := attrs(rg.span(t, "chat"))
	if _, ok := a[semconv.ErrorTypeKey]; ok {
		t.Errorf("unmeasured stream recorded as error %s", a[semconv.ErrorTypeKey].AsString())
	}
	if !strings.Contains(a[attrUnmeasured].AsString(), "compress") {
		t.Errorf("tokentrace.unmeasured = %q", a[attrUnmeasured].AsString())
	}
	for _, dp := range histPoints(t, rg.metrics(t), "gen_ai.client.operation.duration") {
		if _, ok := dp.Attributes.Value(semconv.ErrorTypeKey); ok {
			t.Errorf("duration counted as error: %v", dp.Attributes.ToSlice())
		}
	}
}

// TestCorruptCompressedBodyIsUnmeasuredNotStuck: a gzip body that breaks
// off in the middle still reaches the client; the decoder's failure is
// noted, nothing hangs.
func TestCorruptCompressedBodyIsUnmeasuredNotStuck(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = io.WriteString(zw, strings.Join(ollamaStream(2), ""))
	_ = zw.Close()
	bad := append([]byte{}, buf.Bytes()...)
	bad[len(bad)/2] ^= 0xff
	srv := fakeUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ndjson)
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(bad)
	})
	rg := newRig(t, Config{}, srv.URL)
	resp, got := rg.do(t, "POST", "/api/chat", `{"model":"m1"}`, nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, bad) {
		t.Fatalf("client got %d, %d bytes, want the %d sent", resp.StatusCode, len(got), len(bad))
	}
	if u := attrs(rg.span(t, "chat"))[attrUnmeasured].AsString(); !strings.Contains(u, "gzip") {
		t.Errorf("tokentrace.unmeasured = %q, want the gzip decoding error", u)
	}
}

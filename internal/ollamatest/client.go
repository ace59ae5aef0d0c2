package ollamatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// Result is one response, read whole and measured as it streamed.
type Result struct {
	Status int
	Header http.Header
	Body   []byte
	// Measurement is what stream.Meter saw, t_start being just before the
	// request was written.
	Measurement *stream.Measurement
}

// Post sends body (JSON-encoded unless it is already []byte) to base+path and
// reads the response through a stream.Meter. It is safe to call from several
// goroutines.
func Post(ctx context.Context, client *http.Client, base, path string, body any) (*Result, error) {
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request for %s: %w", path, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	m := stream.NewMeter(stream.Config{API: stream.APIOf(path), Start: time.Now()})
	resp, err := client.Do(req)
	if err != nil {
		m.Finish(err)
		return nil, fmt.Errorf("post %s: %w", path, err)
	}
	defer resp.Body.Close()
	m.Response(resp.StatusCode, resp.Header.Get("Content-Type"))
	var buf bytes.Buffer
	_, err = io.Copy(io.MultiWriter(&buf, m), resp.Body)
	res := &Result{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes(), Measurement: m.Finish(err)}
	if err != nil {
		return res, fmt.Errorf("read %s: %w", path, err)
	}
	return res, nil
}

package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

var errBodyTooLarge = errors.New("request body too large")

// readBody reads a whole request body of at most limit bytes. contentLength
// is the request's declared length (-1 when unknown): a declared length past
// the limit is refused without reading.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if r == nil || r == http.NoBody {
		return nil, nil
	}
	if contentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errBodyTooLarge, contentLength, limit)
	}
	size := int64(512)
	if contentLength >= 0 {
		size = contentLength + 1 // +1 lets ReadAll see EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if int64(len(buf)) == int64(cap(buf)) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

//go:build ollama

package ollamatest_test

import (
	"strconv"
	"time"

	"github.com/tokentrace/tokentrace/internal/stream"
)

func itoa(n int) string { return strconv.Itoa(n) }

// ttft is the measurement's TTFT, or -1 when no output arrived.
func ttft(m *stream.Measurement) time.Duration {
	d, ok := m.TTFT()
	if !ok {
		return -1
	}
	return d
}

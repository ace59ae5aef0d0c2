package testproc

import (
	"strings"
	"sync"
	"testing"
)

func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("ab\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if s := b.String(); strings.Count(s, "ab\n") != 800 || len(s) != 2400 {
		t.Errorf("%d bytes, %d whole writes; want 2400 and 800", len(s), strings.Count(s, "ab\n"))
	}
}

// Package testproc is support for tests that run programs and servers: a
// buffer their output can be written into while the test reads it, and a
// free loopback address to give them.
package testproc

import (
	"bytes"
	"sync"
	"testing"

	"github.com/tokentrace/tokentrace/internal/freeport"
)

// Buffer is a bytes.Buffer safe for concurrent writes (a process's output,
// a logger) and reads (the test). The zero value is empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FreeAddr returns a loopback host:port nobody listens on, below the
// ephemeral range (see package freeport).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

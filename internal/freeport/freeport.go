// Package freeport hands out loopback TCP ports for programs a test or a
// benchmark starts and must tell where to listen.
//
// A port taken from the kernel with ":0" lies in the ephemeral range (32768
// and up on Linux), the range every outgoing connection on the machine also
// draws from: between closing the probe listener and the program binding the
// port, a busy machine can hand it to somebody's connect. These ports are
// picked below that range instead, and never twice in one process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

const (
	low  = 20000 // first port handed out
	span = 12000 // ports low..low+span-1, all below Linux's default ephemeral range
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Port returns a loopback TCP port nobody listens on right now and that this
// process has not handed out before.
func Port() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		port := low + rand.IntN(span)
		if given[port] { // handed out already, perhaps not bound yet
			continue
		}
		l, err := net.Listen("tcp", Host(port))
		if err != nil {
			continue
		}
		l.Close()
		given[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free loopback port in %d-%d after 100 tries", low, low+span-1)
}

// Addr is Port as a host:port on 127.0.0.1.
func Addr() (string, error) {
	port, err := Port()
	if err != nil {
		return "", err
	}
	return Host(port), nil
}

// Host is port on 127.0.0.1 as host:port.
func Host(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Package bounded keeps strings that others choose (model names, scenario
// names, finish reasons) in sets of bounded size, so a client or a server
// sending ever new values costs bounded memory.
package bounded

import "sync"

// Strings keeps up to a fixed number of distinct strings, one copy of
// each. It is safe for concurrent use.
type Strings struct {
	mu  sync.RWMutex
	max int
	m   map[string]string
}

// NewStrings returns a set that keeps at most max strings.
func NewStrings(max int) *Strings {
	return &Strings{max: max, m: make(map[string]string)}
}

// Keep returns the set's copy of v and true, adding v when the set has
// room; "" and false when the set is full and v is not in it. Looking up a
// []byte allocates nothing.
func Keep[T ~string | ~[]byte](s *Strings, v T) (string, bool) {
	s.mu.RLock()
	kept, ok := s.m[string(v)]
	s.mu.RUnlock()
	if ok {
		return kept, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kept, ok := s.m[string(v)]; ok {
		return kept, true
	}
	if len(s.m) >= s.max {
		return "", false
	}
	kept = string(v)
	s.m[kept] = kept
	return kept, true
}

// Len is how many strings the set keeps.
func (s *Strings) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

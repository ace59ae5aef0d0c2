package bounded

import (
	"strconv"
	"testing"
	"unsafe"
)

// TestKeepSharesOneCopyUpToTheBound: a value is kept once, every later
// Keep of an equal value returns that copy, and past the bound nothing new
// is kept.
func TestKeepSharesOneCopyUpToTheBound(t *testing.T) {
	s := NewStrings(3)
	a, ok := Keep(s, []byte("model-a"))
	if !ok || a != "model-a" {
		t.Fatalf("Keep = %q, %v", a, ok)
	}
	b, _ := Keep(s, "model-a")
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("an equal value got a copy of its own")
	}
	for i := range 5 {
		v := "m" + strconv.Itoa(i)
		got, ok := Keep(s, v)
		if want := i < 2; ok != want || (ok && got != v) {
			t.Errorf("Keep(%q) = %q, %v; want kept %v", v, got, ok, want)
		}
	}
	if s.Len() != 3 {
		t.Errorf("%d kept, want the bound 3", s.Len())
	}
	if got, ok := Keep(s, "model-a"); !ok || got != "model-a" {
		t.Errorf("a kept value was refused once the set was full: %q, %v", got, ok)
	}
}

// TestKeepOfBytesAllocatesNothing: the per-chunk lookup of a kept value.
func TestKeepOfBytesAllocatesNothing(t *testing.T) {
	s := NewStrings(4)
	v := []byte("model-a")
	Keep(s, v)
	if n := testing.AllocsPerRun(100, func() { Keep(s, v) }); n != 0 {
		t.Errorf("%v allocations per Keep of a kept []byte", n)
	}
}

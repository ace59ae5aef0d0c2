package calibrate

import (
	"testing"
	"time"
)

// chunksAt is a request's chunk times: first, then every step.
func chunksAt(first time.Duration, step time.Duration, n int) []time.Duration {
	c := make([]time.Duration, n)
	for i := range c {
		c[i] = first + time.Duration(i)*step
	}
	return c
}

// How many tokens the leader had sent before the late requests' first
// token: 1 when they joined the next batch, 2 the batch after next.
func TestRoundLead(t *testing.T) {
	ms := time.Millisecond
	leader := Observation{Round: 0, Chunks: chunksAt(300*ms, 12*ms, 10)}
	for _, tc := range []struct {
		name   string
		others []Observation
		want   int
	}{
		{"joined the next batch", []Observation{{Chunks: chunksAt(313*ms, 12*ms, 10)}}, 1},
		{"joined the batch after next", []Observation{{Chunks: chunksAt(324*ms, 12*ms, 10)}}, 2},
		{"in the leader's first batch", []Observation{{Chunks: chunksAt(300500*time.Microsecond, 12*ms, 10)}}, 0},
		{"two late, the earlier counts", []Observation{{Chunks: chunksAt(336*ms, 12*ms, 10)}, {Chunks: chunksAt(325*ms, 12*ms, 10)}}, 2},
		{"one with the leader, one late", []Observation{{Chunks: chunksAt(301*ms, 12*ms, 10)}, {Chunks: chunksAt(312*ms, 12*ms, 10)}}, 1},
		{"a request without chunks", []Observation{{}}, 0},
	} {
		// The leader listed last: it is found by its first chunk.
		round := append(append([]Observation(nil), tc.others...), leader)
		if got := roundLead(round); got != tc.want {
			t.Errorf("%s: lead %d, want %d", tc.name, got, tc.want)
		}
	}
}

// joins counts each round once, and no round in which the leader was more
// than two tokens ahead (the others waited for a slot).
func TestJoins(t *testing.T) {
	ms := time.Millisecond
	var obs []Observation
	for r, late := range []time.Duration{12 * ms, 24 * ms, 24 * ms, 0, 36 * ms} {
		obs = append(obs, Observation{Round: r, Chunks: chunksAt(100*ms, 12*ms, 8)},
			Observation{Round: r, Chunks: chunksAt(100*ms+late+ms, 12*ms, 8)})
	}
	got := joins(obs)
	if want := (JoinCount{Next: 1, Late: 2}); got != want {
		t.Errorf("joins %+v, want %+v", got, want)
	}
	if r := got.Rate(); r != 2.0/3 {
		t.Errorf("rate %v, want 2/3", r)
	}
	if r := (JoinCount{}).Rate(); r != 0 {
		t.Errorf("no rounds: rate %v, want 0", r)
	}
}

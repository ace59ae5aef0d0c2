package main

import "testing"

// Over as many rounds as there are variants, each variant runs once in each
// place of the round.
func TestRoundsRotateTheOrder(t *testing.T) {
	vs := []string{"direct", "bare", "gateway", "nginx", "bare-again"}
	places := map[string]map[int]bool{}
	for r := range len(vs) + 2 {
		order := rotated(vs, r)
		if len(order) != len(vs) {
			t.Fatalf("round %d: %v", r, order)
		}
		for i, v := range order {
			if r < len(vs) {
				if places[v] == nil {
					places[v] = map[int]bool{}
				}
				places[v][i] = true
			}
		}
		if r == len(vs)+1 && order[0] != vs[1] {
			t.Errorf("round %d starts with %s, want %s (the rotation wraps)", r, order[0], vs[1])
		}
	}
	for _, v := range vs {
		if len(places[v]) != len(vs) {
			t.Errorf("%s took places %v in %d rounds, want each of %d once", v, places[v], len(vs), len(vs))
		}
	}
	if rotated([]string(nil), 3) != nil {
		t.Error("rotated(nil) is not nil")
	}
}

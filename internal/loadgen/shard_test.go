package loadgen

import (
	"net/http"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in           string
		index, count int
		ok           bool
	}{
		{"0/1", 0, 1, true}, {"3/10", 3, 10, true}, {" 9 / 10 ", 9, 10, true},
		{"10/10", 0, 0, false}, {"-1/4", 0, 0, false}, {"0/0", 0, 0, false}, {"1", 0, 0, false},
		{"a/b", 0, 0, false}, {"", 0, 0, false},
	} {
		i, n, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || i != tc.index || n != tc.count {
			t.Errorf("ParseShard(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.in, i, n, err, tc.index, tc.count, tc.ok)
		}
	}
}

// The shards' parts add up to the whole attack, whatever the remainder.
func TestSplitAddsUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		base  Options
		count int
	}{
		{"closed loop", Options{Concurrency: 10, Requests: 101, WarmupRequests: 7, Seed: 5}, 3},
		{"open loop capped", Options{Rate: 9, Concurrency: 11, Requests: 30}, 4},
		{"open loop uncapped", Options{Rate: 2.5, Duration: time.Minute}, 10},
		{"one shard", Options{Concurrency: 3, Requests: 3}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conc, req, warm uint64
			var rate float64
			seeds := map[uint64]bool{}
			for i := range tc.count {
				o := tc.base
				if err := (Shard{Index: i, Count: tc.count}).Split(&o); err != nil {
					t.Fatal(err)
				}
				conc, req, warm, rate = conc+uint64(o.Concurrency), req+o.Requests, warm+o.WarmupRequests, rate+o.Rate
				if o.Duration != tc.base.Duration {
					t.Errorf("shard %d: Duration %v, want the whole window %v", i, o.Duration, tc.base.Duration)
				}
				if tc.base.Seed != 0 {
					seeds[o.Seed] = true
				}
			}
			if conc != uint64(tc.base.Concurrency) || req != tc.base.Requests || warm != tc.base.WarmupRequests {
				t.Errorf("parts sum to concurrency %d, requests %d, warm-up %d; want %d, %d, %d",
					conc, req, warm, tc.base.Concurrency, tc.base.Requests, tc.base.WarmupRequests)
			}
			if d := rate - tc.base.Rate; d > 1e-9 || d < -1e-9 {
				t.Errorf("rates sum to %g, want %g", rate, tc.base.Rate)
			}
			if tc.base.Seed != 0 && len(seeds) != tc.count {
				t.Errorf("%d distinct seeds over %d shards", len(seeds), tc.count)
			}
		})
	}
}

func TestSplitRefusesEmptyShards(t *testing.T) {
	for _, o := range []Options{{Concurrency: 2}, {Rate: 5, Concurrency: 2}, {Concurrency: 8, Requests: 2}} {
		if err := (Shard{Index: 0, Count: 3}).Split(&o); err == nil {
			t.Errorf("Split of %+v over 3 shards: no error; some shard would get nothing (or no bound)", o)
		}
	}
}

func TestShardRoundTrip(t *testing.T) {
	want := Shard{Index: 2, Count: 10, Pod: "tt-loadtest-2-abcde", Node: "gpu-node-7",
		StartAt: time.Unix(1800000000, 0), Started: time.Unix(1800000000, 1234567)}
	r := &vegeta.Result{Headers: http.Header{}}
	if err := want.Encode(r.Headers); err != nil {
		t.Fatal(err)
	}
	got, ok, err := DecodeShard(r)
	if err != nil || !ok {
		t.Fatalf("DecodeShard: ok=%v err=%v", ok, err)
	}
	if got.Index != want.Index || got.Count != want.Count || got.Pod != want.Pod || got.Node != want.Node ||
		!got.StartAt.Equal(want.StartAt) || !got.Started.Equal(want.Started) {
		t.Errorf("round trip: got %+v, want %+v", got, want)
	}
	if _, ok, err := DecodeShard(&vegeta.Result{}); ok || err != nil {
		t.Errorf("a result without the header: ok=%v err=%v, want neither", ok, err)
	}
	r.Headers.Set(ShardHeader, `{"v":1,"index":5,"count":3}`)
	if _, _, err := DecodeShard(r); err == nil {
		t.Error("index ≥ count decoded without error")
	}
}

func FuzzParseShardHeader(f *testing.F) {
	f.Add([]byte(`{"v":1,"index":0,"count":1,"started_unix_ns":1}`))
	f.Add([]byte(`{"v":1,"index":3,"count":4,"pod":"p","node":"n","start_at_unix_ns":5,"started_unix_ns":6}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseShard(b)
		if err != nil {
			return
		}
		if s.Validate() != nil {
			t.Fatalf("parseShard accepted an invalid shard %+v", s)
		}
	})
}

package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestWarmupRequestsCarryTheirOwnScenario(t *testing.T) {
	fake := &fakeLLM{api: "ollama", chunks: 2}
	srv := newFakeLLM(t, fake)
	o := testOptions(srv.URL, "ollama")
	o.Scenario, o.WarmupRequests, o.Requests = "s1", 2, 3
	var winStart, winEnd time.Time
	o.OnWindow = func(s, e time.Time) { winStart, winEnd = s, e }
	rs, _ := collect(t, context.Background(), o)
	if len(rs) != 3 {
		t.Fatalf("%d measured results, want 3", len(rs))
	}
	for seq := uint64(0); seq < 5; seq++ {
		h, _ := fake.request(seq)
		want := "s1"
		if seq < 2 {
			want = "s1" + WarmupSuffix
		}
		if got := h.Get(ScenarioHeader); got != want {
			t.Errorf("request %d: scenario %q, want %q", seq, got, want)
		}
	}
	if winStart.IsZero() || !winEnd.IsZero() {
		t.Errorf("window %v – %v: want a start and no end (no duration)", winStart, winEnd)
	}
}

func TestGreedyRequestsAskForTheSameAnswer(t *testing.T) {
	for _, tc := range []struct{ api, want string }{
		{"ollama", `"options":{"seed":42,"temperature":0}`},
		{"openai", `"seed":42,"temperature":0`},
	} {
		t.Run(tc.api, func(t *testing.T) {
			fake := &fakeLLM{api: tc.api, chunks: 2}
			o := testOptions(newFakeLLM(t, fake).URL, tc.api)
			o.Requests, o.Greedy, o.MaxTokens = 1, true, 0
			collect(t, context.Background(), o)
			if _, body := fake.request(0); !strings.Contains(body, tc.want) {
				t.Errorf("body %s lacks %s", body, tc.want)
			}
		})
	}
}

// TestCappedOpenLoopCountsLateArrivals: 20 arrivals per second into one
// worker whose requests take ~100 ms each. Every arrival after the first
// waits for the worker, so it is late, and later the further it is
// down the queue: a lower bound that does not depend on the machine's load.
func TestCappedOpenLoopCountsLateArrivals(t *testing.T) {
	srv := newFakeLLM(t, &fakeLLM{api: "ollama", chunks: 10, interval: 10 * time.Millisecond})
	o := testOptions(srv.URL, "ollama")
	o.Rate, o.Concurrency, o.Requests = 20, 1, 5
	_, fs := collect(t, context.Background(), o)
	if len(fs) != 5 {
		t.Fatalf("%d results, want 5", len(fs))
	}
	for i, f := range fs {
		// Arrival i is due at (i+1)·50 ms; it cannot be sent before i
		// requests of ≥ 90 ms have ended after the first one's arrival.
		if want := time.Duration(i) * 40 * time.Millisecond; f.Late < want {
			t.Errorf("request %d: late by %s, want at least %s", i, f.Late, want)
		}
	}
	// A closed loop has no schedule to be late for.
	o.Rate, o.Requests = 0, 2
	if _, fs := collect(t, context.Background(), o); fs[0].Late != 0 || fs[1].Late != 0 {
		t.Errorf("closed loop: late %s, %s", fs[0].Late, fs[1].Late)
	}
}

// TestWarmupIsByTheTimeARequestIsSent: in a closed loop of one user whose
// answers take ~300 ms, the pacer releases the second request at once but
// it is sent only when the first answer ends, after a 100 ms warm-up: it
// is measured, not warm-up.
func TestWarmupIsByTheTimeARequestIsSent(t *testing.T) {
	srv := newFakeLLM(t, &fakeLLM{api: "ollama", chunks: 10, interval: 30 * time.Millisecond})
	o := testOptions(srv.URL, "ollama")
	o.Concurrency, o.Warmup, o.Duration = 1, 100*time.Millisecond, 500*time.Millisecond
	var winStart time.Time
	o.OnWindow = func(s, _ time.Time) { winStart = s }
	var warm []time.Time
	o.OnWarmupResult = func(r *vegeta.Result) {
		f, err := Decode(r)
		if err != nil {
			t.Error(err)
		}
		warm = append(warm, f.Start)
	}
	_, fs := collect(t, context.Background(), o)
	if len(warm) != 1 || len(fs) == 0 {
		t.Fatalf("%d warm-up and %d measured requests, want 1 and at least 1", len(warm), len(fs))
	}
	for _, f := range fs {
		if f.Start.Before(winStart) {
			t.Errorf("a measured request was sent %s before the window", winStart.Sub(f.Start))
		}
	}
	if !warm[0].Before(winStart) {
		t.Errorf("the warm-up request was sent after the window opened")
	}
}

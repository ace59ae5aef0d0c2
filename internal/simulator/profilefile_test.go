package simulator

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestProfileFileRoundTrip(t *testing.T) {
	for _, name := range ProfileNames() {
		p := Profiles[name]
		p.PromptTokenRatio, p.PromptTokenOffset, p.KVBytesPerToken, p.AttentionPerPair, p.DecodePerContextToken = 2.5, -12.5, 4096, 6*time.Microsecond, 3*time.Microsecond
		p.LateJoinRate, p.LateJoinRateTogether = 0.8, 0.45
		b, err := MarshalProfile(p)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadProfileFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("%s: read back %+v\nwant %+v", name, got, p)
		}
	}
	b, _ := MarshalProfile(Profiles["tiny"])
	for _, key := range []string{`"step_base": "500µs"`, `"prefill_per_token": "10µs"`, `"kv_heads": 2`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("profile file lacks %s:\n%s", key, b)
		}
	}
}

// A profile file written before the together rate existed has one late
// join rate, which then holds for every join, as it did; the mid-prompt
// rate earlier calibrations wrote is read and ignored (the join probe found
// it the same as the one rate).
func TestProfileFileOneLateJoinRate(t *testing.T) {
	p := Profiles["tiny"]
	p.LateJoinRate, p.LateJoinRateTogether = 0.8, 0.3
	b, _ := MarshalProfile(p)
	if !strings.Contains(string(b), `"late_join_rate_together": 0.3`) {
		t.Fatalf("profile file lacks the together rate:\n%s", b)
	}
	old := strings.Replace(string(b), `"late_join_rate_together": 0.3`, `"late_join_rate_mid_prompt": 0.9`, 1)
	got, err := UnmarshalProfile([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if got.LateJoinRate != 0.8 || got.LateJoinRateTogether != 0.8 {
		t.Errorf("rates %v / %v, want 0.8 / 0.8", got.LateJoinRate, got.LateJoinRateTogether)
	}
	bad := strings.Replace(string(b), `"late_join_rate_together": 0.3`, `"late_join_rate_together": 1.5`, 1)
	if _, err := UnmarshalProfile([]byte(bad)); err == nil || !strings.Contains(err.Error(), "LateJoinRateTogether") {
		t.Errorf("a together rate of 1.5: %v, want an error naming it", err)
	}
}

func TestProfileFileErrors(t *testing.T) {
	good, _ := MarshalProfile(Profiles["tiny"])
	for _, tc := range []struct{ name, body, want string }{
		{"unknown field", strings.Replace(string(good), `"layers"`, `"layer"`, 1), "unknown field"},
		{"bad duration", strings.Replace(string(good), `"500µs"`, `"fast"`, 1), "not a duration"},
		{"invalid profile", strings.Replace(string(good), `"batch_size": 512`, `"batch_size": 0`, 1), "BatchSize"},
		{"not JSON", "step_base: 1ms", "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.json")
			os.WriteFile(path, []byte(tc.body), 0o644)
			if _, err := ReadProfileFile(path); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadProfileFile = %v; want an error naming the file and %q", err, tc.want)
			}
		})
	}
	if _, err := ReadProfileFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing file read without error")
	}
}

// KVBytesPerToken sizes the KV cache of a slot (the step costs are in
// batch_test.go).
func TestCalibratedProfileFields(t *testing.T) {
	p := Profiles["tiny"]
	p.KVBytesPerToken = 100
	if got := p.KVBytesPerSlot(2048); got != 204800 {
		t.Errorf("KVBytesPerSlot = %d, want 204800", got)
	}
}

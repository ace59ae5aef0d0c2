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
		p.PromptTokenRatio, p.KVBytesPerToken, p.AttentionPerPair, p.DecodePerContextToken = 2.5, 4096, 6*time.Microsecond, 3*time.Microsecond
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

// PromptTokenRatio scales the prefill cost of a step, AttentionPerPair adds
// the pairs its tokens attend to, KVBytesPerToken sizes the KV cache of a slot.
func TestCalibratedProfileFields(t *testing.T) {
	p := Profiles["tiny"]
	p.PrefillPerToken, p.PromptTokenRatio = time.Millisecond, 3
	e := &engine{prof: p, scale: 1}
	if got, want := e.stepTime([]work{{prefill: 10}}), p.StepBase+p.StepPerSeq+30*time.Millisecond; got != want {
		t.Errorf("step with 10 prompt tokens at ratio 3 = %v, want %v", got, want)
	}
	// Attention at ratio 3: a 10-token chunk read from position 5 (30
	// engine tokens from 15) attends to 30·(15+15) = 900
	// pairs at 1 µs; a slot decoding after an 8-token prompt and 3 tokens of
	// answer to 8·3+3 = 27 context tokens at 2 µs.
	p.AttentionPerPair, p.DecodePerContextToken = time.Microsecond, 2*time.Microsecond
	e = &engine{prof: p, scale: 1}
	reading := &job{prompt: make([]uint32, 20), pos: 5}
	decoding := &job{prompt: make([]uint32, 8), pos: 8, out: make([]uint32, 3)}
	want := p.StepBase + 2*p.StepPerSeq + 30*time.Millisecond + 954*time.Microsecond
	if got := e.stepTime([]work{{job: reading, prefill: 10}, {job: decoding}}); got != want {
		t.Errorf("step with attention = %v, want %v", got, want)
	}
	// A batch reads BatchSize of the engine's tokens of a prompt: 512 at
	// ratio 3 is 170 of the simulator's.
	if got := p.promptChunk(); got != 170 {
		t.Errorf("prompt chunk at ratio 3 = %d, want 170", got)
	}
	p.KVBytesPerToken = 100
	if got := p.KVBytesPerSlot(2048); got != 204800 {
		t.Errorf("KVBytesPerSlot = %d, want 204800", got)
	}
}

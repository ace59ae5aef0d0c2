package matrix

import (
	"errors"
	"slices"
	"testing"
)

func TestFindCapacity(t *testing.T) {
	tests := []struct {
		name       string
		search     Search
		capacity   float64 // the probe meets the SLO up to here
		want       float64
		wantProbed []float64
	}{
		{"concurrency 3 of 16", Search{Kind: SearchConcurrency, Max: 16, Start: 1}, 3, 3, []float64{1, 2, 4, 3}},
		{"concurrency 5 of 16", Search{Kind: SearchConcurrency, Max: 16, Start: 1}, 5, 5, []float64{1, 2, 4, 8, 6, 5}},
		{"concurrency at the bound", Search{Kind: SearchConcurrency, Max: 6, Start: 1}, 100, 6, []float64{1, 2, 4, 6}},
		{"concurrency none", Search{Kind: SearchConcurrency, Max: 8, Start: 1}, 0, 0, []float64{1}},
		{"concurrency 1", Search{Kind: SearchConcurrency, Max: 8, Start: 1}, 1, 1, []float64{1, 2}},
		{"rate 3 of 32", Search{Kind: SearchRate, Max: 32, Start: 1, Precision: 0.1}, 3, 2.875,
			[]float64{1, 2, 4, 3, 3.5, 3.25, 3.125, 3.0625}},
		{"rate at the bound", Search{Kind: SearchRate, Max: 3, Start: 1, Precision: 0.1}, 10, 3, []float64{1, 2, 3}},
		{"rate none", Search{Kind: SearchRate, Max: 8, Start: 0.5, Precision: 0.1}, 0.1, 0, []float64{0.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.search.Validate(); err != nil {
				t.Fatal(err)
			}
			got, probed, err := tc.search.FindCapacity(func(x float64) (bool, error) { return x <= tc.capacity, nil })
			if err != nil {
				t.Fatal(err)
			}
			if tc.search.Kind == SearchRate && got > 0 && tc.capacity < tc.search.Max {
				// A rate search ends within its precision below the capacity.
				if got > tc.capacity || got < tc.capacity*(1-tc.search.Precision) {
					t.Errorf("capacity %g, want within 10%% below %g", got, tc.capacity)
				}
			} else if got != tc.want {
				t.Errorf("capacity %g, want %g", got, tc.want)
			}
			if tc.search.Kind == SearchConcurrency && !slices.Equal(probed, tc.wantProbed) {
				t.Errorf("probed %v, want %v", probed, tc.wantProbed)
			}
			if tc.search.Kind == SearchRate && len(probed) > 12 {
				t.Errorf("probed %v: too many", probed)
			}
		})
	}
	boom := errors.New("engine died")
	if _, probed, err := (Search{Kind: SearchConcurrency, Max: 8, Start: 1}).FindCapacity(func(x float64) (bool, error) {
		if x == 4 {
			return false, boom
		}
		return true, nil
	}); !errors.Is(err, boom) || !slices.Equal(probed, []float64{1, 2, 4}) {
		t.Errorf("error: %v after %v", err, probed)
	}
	for _, bad := range []Search{{Kind: "users", Max: 4}, {Kind: SearchConcurrency, Max: 0.5}, {Kind: SearchRate, Max: 4, Start: 8, Precision: 0.1},
		{Kind: SearchRate, Max: 4, Start: 1, Precision: 0}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestKVCacheEstimateFollowsTheEnvironment(t *testing.T) {
	// qwen2.5:7b's shape: 28 layers, 4 KV heads of 128: 224 MiB per 4096-token slot at f16.
	info := map[string]any{"general.architecture": "qwen2", "qwen2.block_count": 28.0, "qwen2.embedding_length": 3584.0,
		"qwen2.attention.head_count": 28.0, "qwen2.attention.head_count_kv": 4.0}
	for _, tc := range []struct {
		env     []string
		typ     string
		wantMiB float64
	}{
		{nil, "f16", 224},
		{[]string{"OLLAMA_KV_CACHE_TYPE=q8_0"}, "f16", 224}, // without flash attention Ollama keeps f16
		{[]string{"OLLAMA_KV_CACHE_TYPE=q8_0", "OLLAMA_FLASH_ATTENTION=1"}, "q8_0", 119},
		{[]string{"OLLAMA_KV_CACHE_TYPE=q4_0", "OLLAMA_FLASH_ATTENTION=true", "PATH=/bin"}, "q4_0", 63},
		{[]string{"OLLAMA_KV_CACHE_TYPE=bogus", "OLLAMA_FLASH_ATTENTION=1"}, "f16", 224},
	} {
		env := OllamaEnv(tc.env)
		if _, ok := env["PATH"]; ok {
			t.Errorf("OllamaEnv kept PATH")
		}
		got, ok := KVBytesPerSlot(info, 4096, env)
		if !ok || KVCacheType(env) != tc.typ || float64(got)/(1<<20) != tc.wantMiB {
			t.Errorf("%v: %s, %.2f MiB; want %s, %g MiB", tc.env, KVCacheType(env), float64(got)/(1<<20), tc.typ, tc.wantMiB)
		}
	}
}

package simulator

import (
	"fmt"
	"os"
)

// Memory is what a loaded model takes, as Ollama estimates it.
type Memory struct {
	// Weights is the model file's size.
	Weights int64
	// KVPerSlot is one slot's KV cache (Profile.KVBytesPerSlot).
	KVPerSlot int64
	// Slots is the number of slots.
	Slots int
	// Resident is what the process really holds when Config.Allocate is
	// set: Weights × WeightsScale plus every slot's KV cache.
	Resident int64
}

// Total is the /api/ps size: weights plus every slot's KV cache.
func (m Memory) Total() int64 { return m.Weights + int64(m.Slots)*m.KVPerSlot }

// errMemory is Ollama's refusal when a model does not fit
// (llm.NewLlamaServer: "model requires more system memory …").
func errMemory(required, available int64) error {
	return fmt.Errorf("model requires more system memory (%s) than is available (%s)",
		humanBytes2(required), humanBytes2(available))
}

// humanBytes2 formats sizes as Ollama's format.HumanBytes2 does.
func humanBytes2(b int64) string {
	const kib, mib, gib = 1 << 10, 1 << 20, 1 << 30
	switch {
	case b >= gib:
		return fmt.Sprintf("%.1f GiB", float64(b)/gib)
	case b >= mib:
		return fmt.Sprintf("%.1f MiB", float64(b)/mib)
	case b >= kib:
		return fmt.Sprintf("%.1f KiB", float64(b)/kib)
	default:
		return fmt.Sprintf("%d B", b)
	}
}

// allocation is memory really held for a loaded model: one block for the
// (scaled) weights and one per slot, every page written so it is resident.
type allocation struct {
	blocks [][]byte
}

func allocate(m Memory, weightsScale float64) (*allocation, error) {
	a := &allocation{}
	sizes := []int64{int64(float64(m.Weights) * weightsScale)}
	for range m.Slots {
		sizes = append(sizes, m.KVPerSlot)
	}
	for _, n := range sizes {
		if n <= 0 {
			continue
		}
		if n > 1<<40 {
			return nil, fmt.Errorf("allocate %s: too large", humanBytes2(n))
		}
		b := make([]byte, n)
		page := os.Getpagesize()
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		a.blocks = append(a.blocks, b)
	}
	return a, nil
}

// bytes is what the allocation holds.
func (a *allocation) bytes() int64 {
	var n int64
	for _, b := range a.blocks {
		n += int64(len(b))
	}
	return n
}

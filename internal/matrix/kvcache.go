package matrix

import (
	"strings"

	"github.com/tokentrace/tokentrace/internal/backend"
)

// KVCacheType is the element type of Ollama's KV cache for an engine
// environment: OLLAMA_KV_CACHE_TYPE (f16, q8_0, q4_0) takes effect only
// with OLLAMA_FLASH_ATTENTION on; otherwise, or when unset, it is f16.
func KVCacheType(env map[string]string) string {
	t := strings.ToLower(strings.TrimSpace(env["OLLAMA_KV_CACHE_TYPE"]))
	flash := strings.TrimSpace(env["OLLAMA_FLASH_ATTENTION"])
	on := flash == "1" || strings.EqualFold(flash, "true")
	if !on || (t != "q8_0" && t != "q4_0") {
		return "f16"
	}
	return t
}

// kvBytesPerElement is the storage of one cached K or V value: ggml's
// q8_0 and q4_0 blocks hold 32 values in 34 and 18 bytes.
var kvBytesPerElement = map[string]float64{"f16": 2, "q8_0": 34.0 / 32, "q4_0": 18.0 / 32}

// KVBytesPerSlot estimates one slot's KV cache from /api/show's model_info
// and the engine's environment: 2 (K and V) × layers × KV heads × head
// dimension × context × the bytes per element of KVCacheType(env).
func KVBytesPerSlot(modelInfo map[string]any, numCtx int, env map[string]string) (int64, bool) {
	f16, ok := backend.KVCacheBytesPerSlot(modelInfo, numCtx) // at 2 bytes per element
	if !ok {
		return 0, false
	}
	return int64(float64(f16) / 2 * kvBytesPerElement[KVCacheType(env)]), true
}

// OllamaEnv is the OLLAMA_* variables of an environment ("NAME=value").
func OllamaEnv(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "OLLAMA_") {
			out[name] = value
		}
	}
	return out
}

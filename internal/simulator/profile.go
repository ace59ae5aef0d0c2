package simulator

import (
	"math"
	"sort"
	"time"
)

// Profile is a model on a machine: the model's shape (which decides its
// memory) and the costs of the machine's steps (which decide its timings).
// All durations are at TimeScale 1.
type Profile struct {
	// Name selects the profile (Config.Profile, --profile).
	Name string
	// Description says what the profile stands for and how it was calibrated.
	Description string

	// Model is the name the server answers to, as in `ollama list`.
	Model string
	// Architecture is general.architecture in /api/show (e.g. "qwen2").
	Architecture string
	// Family, ParameterSize and Quantization fill the models' "details".
	Family        string
	ParameterSize string
	Quantization  string
	// ParameterCount is general.parameter_count in /api/show.
	ParameterCount int64
	// Digest is the model's manifest digest (hex, no "sha256:").
	Digest string

	// Layers, Embedding, Heads, KVHeads and FeedForward are the model's
	// shape (<arch>.block_count, .embedding_length, .attention.head_count,
	// .attention.head_count_kv, .feed_forward_length). The head dimension is
	// Embedding / Heads.
	Layers, Embedding, Heads, KVHeads, FeedForward int
	// VocabSize bounds the token ids the tokenizer hands out.
	VocabSize int
	// TrainContext is <arch>.context_length, the context the model was
	// trained for (not the context a slot is given).
	TrainContext int
	// ContextLength is the context of one slot when Config.ContextLength is
	// 0 (Ollama's own default is 2048; OLLAMA_CONTEXT_LENGTH sets it).
	ContextLength int
	// WeightsBytes is the size of the model file, as /api/tags reports it.
	WeightsBytes int64
	// OnGPU reports the whole model in /api/ps size_vram (as on Apple
	// silicon); false reports 0 (a CPU run).
	OnGPU bool
	// SystemPrompt is the system message the model's template adds when a
	// request has none (it counts in prompt_eval_count).
	SystemPrompt string

	// LoadTime is how long the first request waits for the model to load.
	LoadTime time.Duration
	// RequestOverhead is the fixed work of a request before it reaches the
	// slots: parsing, templating, tokenizing, the runner round trip.
	RequestOverhead time.Duration
	// StepBase is the fixed cost of one forward pass: a batch is one or
	// more micro-batches of at most BatchSize tokens (batch.go, rule 4).
	StepBase time.Duration
	// StepPerSeq is what every sequence in a batch adds to it: with n slots
	// decoding, a step takes StepBase + n·StepPerSeq, so each stream runs at
	// 1/(StepBase + n·StepPerSeq) tokens per second.
	StepPerSeq time.Duration
	// PrefillPerToken is the cost of each uncached prompt token in a batch.
	PrefillPerToken time.Duration
	// AttentionPerPair is the cost of one prompt token of a batch attending
	// to one token before it in its sequence: what makes a long prompt's
	// prefill grow with its square. In the engine's tokens (the token line,
	// PromptTokenRatio and PromptTokenOffset, converts); 0 leaves it out.
	AttentionPerPair time.Duration
	// DecodePerContextToken is what each token of a decoding slot's context
	// (its prompt, in the engine's tokens, and its answer so far) adds to
	// the step: a stream decodes slower as its context fills. Reading the
	// KV cache for one new token costs differently from a prompt's batched
	// attention, so it is a parameter of its own; 0 leaves it out.
	DecodePerContextToken time.Duration
	// BatchSize bounds the prompt tokens one sequence adds to one batch
	// (Ollama's num_batch, 512), in the engine's tokens, and is the size of
	// the micro-batches llama.cpp computes a batch in (n_ubatch).
	BatchSize int
	// PromptTokenRatio and PromptTokenOffset say how many of the engine's
	// tokens a prompt of n tokens of the simulator's tokenizer is:
	// PromptTokenOffset + PromptTokenRatio·n, at least 1 (a byte-level
	// vocabulary cuts text into more tokens; its chat template adds fewer
	// than the simulator's ChatML, so the offset may be negative). Prefill
	// cost, prompt chunks and context are counted in the engine's tokens. A
	// ratio of 0 means 1. A calibration measures both.
	PromptTokenRatio  float64
	PromptTokenOffset float64
	// KVBytesPerToken, when positive, is one slot's KV cache per context
	// token as measured, instead of the figure from the model's shape.
	KVBytesPerToken int64
	// LateJoinRate is the share, from 0 to 1, of batch ends at which the
	// requests that became ready while the batch ran miss the next batch
	// as well, while the runner has other work (batch.go, rule 6): how
	// often the runner's loop takes its lock back before a woken request
	// does. 0 lets them always join the next batch. A calibration measures
	// it.
	LateJoinRate float64
	// LateJoinRateTogether is the same share for requests whose prompts
	// take more than one batch and that reached an idle runner together
	// with the request that started the batch (within TogetherWindow;
	// batch.go, rule 6). A calibration measures it with a probe of its own.
	LateJoinRateTogether float64
}

// engineTokens is how many of the engine's tokens a prompt of n of the
// simulator's tokens stands for.
func (p Profile) engineTokens(n int) int {
	if n <= 0 {
		return 0
	}
	return max(1, int(math.Round(p.PromptTokenOffset+p.tokenRatio()*float64(n))))
}

// enginePos is where the engine is in a prompt of n of the simulator's
// tokens when the simulator is at position pos: the same line as for whole
// prompts, so a cached prefix made only of the template's first tokens
// (where ChatML spends more than the engine's template) counts for little.
func (p Profile) enginePos(pos, n int) int {
	total := p.engineTokens(n)
	if pos >= n {
		return total
	}
	if pos <= 0 {
		return 0
	}
	return min(max(0, int(math.Round(p.PromptTokenOffset+p.tokenRatio()*float64(pos)))), total-1)
}

// promptPos is enginePos's inverse: the simulator's position in a prompt of
// n tokens once the engine has read eng of its tokens; n only when the
// engine has read the whole prompt.
func (p Profile) promptPos(eng, n int) int {
	if eng >= p.engineTokens(n) {
		return n
	}
	return min(max(0, int((float64(eng)-p.PromptTokenOffset)/p.tokenRatio())), n-1)
}

func (p Profile) tokenRatio() float64 {
	if p.PromptTokenRatio <= 0 {
		return 1
	}
	return p.PromptTokenRatio
}

// HeadDim is the size of one attention head.
func (p Profile) HeadDim() int {
	if p.Heads == 0 {
		return 0
	}
	return p.Embedding / p.Heads
}

// KVBytesPerSlot is the KV cache of one slot with a context of ctx tokens:
// keys and values (2) × layers × KV heads × head dim × ctx × 2 bytes (f16),
// or KVBytesPerToken × ctx when a calibration measured it.
func (p Profile) KVBytesPerSlot(ctx int) int64 {
	if p.KVBytesPerToken > 0 {
		return p.KVBytesPerToken * int64(ctx)
	}
	return 2 * int64(p.Layers) * int64(p.KVHeads) * int64(p.HeadDim()) * int64(ctx) * 2
}

// DefaultProfile is the profile used when Config.Profile is empty.
const DefaultProfile = "qwen2.5-7b-m4max"

const qwenSystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

// Profiles are the built-in profiles by name.
var Profiles = map[string]Profile{
	DefaultProfile: {
		Name: DefaultProfile,
		Description: "qwen2.5:7b-instruct (Q4_K_M) served by Ollama on an Apple M4 Max with a 4096 context: " +
			"~57 ms TTFT at concurrency 1 for a prompt the slot has cached (+0.9 ms per uncached prompt token), " +
			"~82 tok/s for one stream, ~27 tok/s per stream with 4 slots busy, 224 MiB of KV cache per slot",
		Model:          "qwen2.5:7b-instruct",
		Architecture:   "qwen2",
		Family:         "qwen2",
		ParameterSize:  "7.6B",
		Quantization:   "Q4_K_M",
		ParameterCount: 7615616512,
		Digest:         "845dbda0ea48ed749caafd9e6037047aa19acfcfd82e704d7ca97d631a0b697e",
		Layers:         28, Embedding: 3584, Heads: 28, KVHeads: 4, FeedForward: 18944,
		VocabSize:    152064,
		TrainContext: 32768, ContextLength: 4096,
		WeightsBytes:    4683087332,
		OnGPU:           true,
		SystemPrompt:    qwenSystemPrompt,
		LoadTime:        2 * time.Second,
		RequestOverhead: 43 * time.Millisecond,
		StepBase:        3900 * time.Microsecond,
		StepPerSeq:      8300 * time.Microsecond,
		PrefillPerToken: 900 * time.Microsecond,
		BatchSize:       512,
	},
	// cpu-25m is the fit of `make calibrate-ollama` (Ollama v0.17.4, 2 cores,
	// 2026-12-01; docs/simulator.md has the run and its held-out errors,
	// all within ±12%), rounded. Its KV cache per token is the model's
	// shape: 4,096 bytes, what the engine's log said.
	"cpu-25m": {
		Name: "cpu-25m",
		Description: "the generated 25M-parameter llama model (512 wide, 8 blocks, 8 heads, 2 KV heads, F32) served " +
			"by a CPU-built Ollama v0.17.4 on 2 cores, fitted by make calibrate-ollama: ~90 tok/s for one stream " +
			"after a short prompt, ~25 tok/s each with 4 slots busy, 6 ms per prompt token plus attention",
		Model:          "tokentrace-25m:latest",
		Architecture:   "llama",
		Family:         "llama",
		ParameterSize:  "25M",
		Quantization:   "F32",
		ParameterCount: 25000000,
		Digest:         "5b1ba6a1c3e0b5f0d4b2cf4c7f0e5a5d9d2c3f1a7b6e8d9c0a1b2c3d4e5f6a7b",
		Layers:         8, Embedding: 512, Heads: 8, KVHeads: 2, FeedForward: 1536,
		VocabSize:    1024,
		TrainContext: 4096, ContextLength: 2048,
		WeightsBytes:          100000000,
		SystemPrompt:          "",
		LoadTime:              670 * time.Millisecond,
		RequestOverhead:       0,
		StepBase:              1800 * time.Microsecond,
		StepPerSeq:            8900 * time.Microsecond,
		PrefillPerToken:       6 * time.Millisecond,
		AttentionPerPair:      11600 * time.Nanosecond,
		DecodePerContextToken: 8600 * time.Nanosecond,
		BatchSize:             512,
		// The generated model's byte-level vocabulary and short template:
		// engine tokens = 5.21 × the simulator's − 38.6.
		PromptTokenRatio:  5.21,
		PromptTokenOffset: -38.6,
		// Rule 6 as the calibration's probes measured it, pooled over
		// runs 15-25 and the join probes (docs/simulator.md): requests
		// waiting at a batch end miss the next batch 82% of the time
		// (173 of 210 rounds), long prompts sent together 53% (40 of 75).
		LateJoinRate:         0.82,
		LateJoinRateTogether: 0.53,
	},
	"tiny": {
		Name: "tiny",
		Description: "a fast toy model for tests, shaped like the project's default generated GGUF " +
			"(256 wide, 4 blocks): 1 ms steps, no load time, 2 MiB of KV cache per slot",
		Model: "tiny:latest", Architecture: "llama", Family: "llama",
		ParameterSize: "2.4M", Quantization: "F32", ParameterCount: 2400000,
		Digest: "0d9a1c7e2b3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3",
		Layers: 4, Embedding: 256, Heads: 8, KVHeads: 2, FeedForward: 512,
		VocabSize: 512, TrainContext: 2048, ContextLength: 2048,
		WeightsBytes:    9500000,
		LoadTime:        0,
		RequestOverhead: 0,
		StepBase:        500 * time.Microsecond,
		StepPerSeq:      500 * time.Microsecond,
		PrefillPerToken: 10 * time.Microsecond,
		BatchSize:       512,
	},
}

// ProfileNames lists the built-in profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

package simulator

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"
)

// Config sets up a Server. The zero value is valid: Ollama's defaults with
// the default profile, in real time.
type Config struct {
	// Profile names the model and machine to simulate (a key of Profiles);
	// DefaultProfile when empty. Ignored when CustomProfile is set.
	Profile string
	// CustomProfile, when not nil, is used instead of a named profile.
	CustomProfile *Profile
	// Model overrides the model name the server answers to (the profile's
	// Model when empty).
	Model string

	// Parallel is the number of slots (OLLAMA_NUM_PARALLEL); 4 when 0, the
	// value Ollama picks when memory allows.
	Parallel int
	// MaxQueue is how many requests may wait for a slot (OLLAMA_MAX_QUEUE);
	// 512 when 0. One more is refused with 503.
	MaxQueue int
	// ContextLength is each slot's context in tokens (OLLAMA_CONTEXT_LENGTH);
	// the profile's when 0. It sizes the KV cache.
	ContextLength int

	// TimeScale multiplies every simulated duration: 0.1 runs the same
	// shape ten times faster. 1 when 0. Durations reported on the wire
	// (total_duration and the rest) are measured, so they are scaled too.
	TimeScale float64

	// MemoryLimit, when > 0, is the memory (bytes) the model may use:
	// loading fails, as Ollama's does, when the weights plus every slot's KV
	// cache (the /api/ps size) exceed it.
	MemoryLimit int64
	// Allocate makes the server really hold its memory while the model is
	// loaded, touched so it is resident: the weights times WeightsScale and
	// every slot's KV cache in full. For a simulator run as its own process;
	// leave it off in tests.
	Allocate bool
	// WeightsScale is the fraction of the weights Allocate holds (1/16 when
	// 0): the weights of a 7B model would not fit beside a test run.
	WeightsScale float64

	// NaturalStop makes num_predict / max_tokens only cap the reply: a
	// reply whose natural length (see docs/simulator.md) is shorter ends
	// there with done_reason "stop", as an instruction-tuned model ends its
	// answer. Off, the limit is the reply's exact length, as with a model
	// that never samples the end of sequence (random weights).
	NaturalStop bool

	// ThinkingTokens makes the first ThinkingTokens tokens of every reply
	// reasoning, sent before the answer as the API sends a thinking model's
	// (Ollama's message.thinking and "thinking", OpenAI chat's
	// delta.reasoning, Responses' reasoning summary deltas, Messages'
	// thinking block). They count in eval_count and the usage, as Ollama
	// counts them. 0 (the default) sends none.
	ThinkingTokens int

	// KeepAlive is how long the model stays loaded once no request uses it
	// (OLLAMA_KEEP_ALIVE), in real time (not scaled); 5 minutes when 0,
	// forever when negative. A request's keep_alive replaces it, as in
	// Ollama (keep_alive 0 unloads as soon as the model is idle).
	KeepAlive time.Duration
	// Version is what /api/version reports; "0.17.4" (the version whose wire
	// formats it imitates) when empty.
	Version string

	// OnChunkSent, when set, is called after every chunk has been written
	// and flushed, from the request's goroutine. It must not block.
	OnChunkSent func(ChunkSent)
	// GroundTruth, when set, receives every ChunkSent as a JSON line.
	GroundTruth io.Writer
	// OnLoadFailure, when set, is called when loading the model fails (the
	// memory limit), before the waiting requests get their error; the
	// command uses it to exit like a killed runner. It must not block.
	OnLoadFailure func(error)
	// Logger receives Ollama-like log lines (loads, refusals); none when nil.
	Logger *slog.Logger
}

// Defaults of the Config fields (Ollama's).
const (
	DefaultParallel  = 4
	DefaultMaxQueue  = 512
	DefaultKeepAlive = 5 * time.Minute
	DefaultVersion   = "0.17.4"
	// DefaultWeightsScale is the share of the weights Allocate holds.
	DefaultWeightsScale = 1.0 / 16
)

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	if c.CustomProfile == nil && c.Profile != "" {
		if _, ok := Profiles[c.Profile]; !ok {
			return fmt.Errorf("simulator: Profile %q is not one of %v", c.Profile, ProfileNames())
		}
	}
	if c.CustomProfile != nil {
		if err := c.CustomProfile.validate(); err != nil {
			return fmt.Errorf("simulator: CustomProfile: %w", err)
		}
	}
	switch {
	case c.Parallel < 0:
		return fmt.Errorf("simulator: Parallel %d is negative", c.Parallel)
	case c.MaxQueue < 0:
		return fmt.Errorf("simulator: MaxQueue %d is negative", c.MaxQueue)
	case c.ContextLength < 0:
		return fmt.Errorf("simulator: ContextLength %d is negative", c.ContextLength)
	case c.ContextLength > 0 && c.ContextLength < 16:
		return fmt.Errorf("simulator: ContextLength %d is too small (at least 16)", c.ContextLength)
	case c.TimeScale < 0:
		return fmt.Errorf("simulator: TimeScale %g is negative", c.TimeScale)
	case c.ThinkingTokens < 0:
		return fmt.Errorf("simulator: ThinkingTokens %d is negative", c.ThinkingTokens)
	case c.MemoryLimit < 0:
		return fmt.Errorf("simulator: MemoryLimit %d is negative", c.MemoryLimit)
	case c.WeightsScale < 0 || c.WeightsScale > 1:
		return fmt.Errorf("simulator: WeightsScale %g is not within [0, 1]", c.WeightsScale)
	}
	return nil
}

func (p Profile) validate() error {
	switch {
	case p.Model == "":
		return errors.New("Model is empty")
	case p.Layers <= 0 || p.Embedding <= 0 || p.Heads <= 0 || p.KVHeads <= 0:
		return errors.New("Layers, Embedding, Heads and KVHeads must be positive")
	case p.Embedding%p.Heads != 0:
		return fmt.Errorf("Embedding %d is not a multiple of Heads %d", p.Embedding, p.Heads)
	case p.VocabSize <= 0:
		return errors.New("VocabSize must be positive")
	case p.ContextLength <= 0:
		return errors.New("ContextLength must be positive")
	case p.BatchSize <= 0:
		return errors.New("BatchSize must be positive")
	case p.LoadTime < 0 || p.RequestOverhead < 0 || p.StepBase < 0 || p.StepPerSeq < 0 || p.PrefillPerToken < 0 ||
		p.AttentionPerPair < 0 || p.DecodePerContextToken < 0:
		return errors.New("durations must not be negative")
	case p.StepBase+p.StepPerSeq <= 0:
		return errors.New("StepBase + StepPerSeq must be positive")
	case !(p.LateJoinRate >= 0 && p.LateJoinRate <= 1):
		return fmt.Errorf("LateJoinRate %v must be between 0 and 1", p.LateJoinRate)
	case !(p.LateJoinRateTogether >= 0 && p.LateJoinRateTogether <= 1):
		return fmt.Errorf("LateJoinRateTogether %v must be between 0 and 1", p.LateJoinRateTogether)
	case p.PromptTokenRatio < 0 || p.KVBytesPerToken < 0:
		return errors.New("PromptTokenRatio and KVBytesPerToken must not be negative")
	case math.IsNaN(p.PromptTokenOffset) || math.IsInf(p.PromptTokenOffset, 0) || math.IsNaN(p.PromptTokenRatio) || math.IsInf(p.PromptTokenRatio, 0):
		return errors.New("PromptTokenRatio and PromptTokenOffset must be finite numbers")
	}
	return nil
}

// withDefaults returns the config with every zero field set and the
// profile resolved. It assumes Validate passed.
func (c Config) withDefaults() (Config, Profile) {
	var p Profile
	switch {
	case c.CustomProfile != nil:
		p = *c.CustomProfile
	case c.Profile != "":
		p = Profiles[c.Profile]
	default:
		p = Profiles[DefaultProfile]
	}
	if c.Model != "" {
		p.Model = c.Model
	}
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.ContextLength == 0 {
		c.ContextLength = p.ContextLength
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.WeightsScale == 0 {
		c.WeightsScale = DefaultWeightsScale
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	return c, p
}

// ChunkSent is the ground truth of one chunk: an NDJSON line, an SSE event
// or a whole non-streaming body, stamped right after it was written and
// flushed.
type ChunkSent struct {
	// RequestID is the X-Simulator-Request-Id of the response.
	RequestID string `json:"request_id"`
	// Path is the request's path (/api/chat, /v1/chat/completions, …).
	Path string `json:"path"`
	// Index numbers the request's chunks from 0, in sending order.
	Index int `json:"index"`
	// WriteAt is just before the chunk was written: the client cannot have
	// read it earlier.
	WriteAt time.Time `json:"write_at"`
	// SentAt is when the write and the flush returned. A fast client may
	// read the chunk a few microseconds before that.
	SentAt time.Time `json:"sent_at"`
	// Tokens is the number of output tokens the chunk carries (0 for the
	// final, role, usage and [DONE] chunks; all of them for a non-streaming
	// body).
	Tokens int `json:"tokens"`
	// Final marks the last chunk of the response.
	Final bool `json:"final,omitempty"`
	// Bytes is the size of the chunk on the wire.
	Bytes int `json:"bytes"`
}

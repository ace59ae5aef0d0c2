package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// profileFile is a Profile as JSON: snake-case names, durations as "5.8ms".
type profileFile struct {
	Name              string  `json:"name"`
	Description       string  `json:"description"`
	Model             string  `json:"model"`
	Architecture      string  `json:"architecture"`
	Family            string  `json:"family"`
	ParameterSize     string  `json:"parameter_size"`
	Quantization      string  `json:"quantization"`
	ParameterCount    int64   `json:"parameter_count"`
	Digest            string  `json:"digest"`
	Layers            int     `json:"layers"`
	Embedding         int     `json:"embedding"`
	Heads             int     `json:"heads"`
	KVHeads           int     `json:"kv_heads"`
	FeedForward       int     `json:"feed_forward"`
	VocabSize         int     `json:"vocab_size"`
	TrainContext      int     `json:"train_context"`
	ContextLength     int     `json:"context_length"`
	WeightsBytes      int64   `json:"weights_bytes"`
	OnGPU             bool    `json:"on_gpu"`
	SystemPrompt      string  `json:"system_prompt,omitempty"`
	LoadTime          jsonDur `json:"load_time"`
	RequestOverhead   jsonDur `json:"request_overhead"`
	StepBase          jsonDur `json:"step_base"`
	StepPerSeq        jsonDur `json:"step_per_seq"`
	PrefillPerToken   jsonDur `json:"prefill_per_token"`
	AttentionPerPair  jsonDur `json:"attention_per_pair,omitempty"`
	DecodePerContext  jsonDur `json:"decode_per_context_token,omitempty"`
	BatchSize         int     `json:"batch_size"`
	PromptTokenRatio  float64 `json:"prompt_token_ratio,omitempty"`
	PromptTokenOffset float64 `json:"prompt_token_offset,omitempty"`
	KVBytesPerToken   int64   `json:"kv_bytes_per_token,omitempty"`
	LateJoinRate      float64 `json:"late_join_rate,omitempty"`
	// LateJoinRateTogether absent (a file written before it existed)
	// means the one rate everywhere.
	LateJoinRateTogether *float64 `json:"late_join_rate_together,omitempty"`
	// LateJoinRateMidPrompt is read and ignored: earlier calibrations
	// wrote a rate for batch ends at which no slot samples, which the join
	// probe then measured to be the same as LateJoinRate.
	LateJoinRateMidPrompt *float64 `json:"late_join_rate_mid_prompt,omitempty"`
}

type jsonDur time.Duration

func (d jsonDur) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *jsonDur) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 5.8ms", b)
	}
	*d = jsonDur(v)
	return nil
}

// MarshalProfile writes p as the JSON that ReadProfileFile reads.
func MarshalProfile(p Profile) ([]byte, error) {
	f := profileFile{
		Name:                 p.Name,
		Description:          p.Description,
		Model:                p.Model,
		Architecture:         p.Architecture,
		Family:               p.Family,
		ParameterSize:        p.ParameterSize,
		Quantization:         p.Quantization,
		ParameterCount:       p.ParameterCount,
		Digest:               p.Digest,
		Layers:               p.Layers,
		Embedding:            p.Embedding,
		Heads:                p.Heads,
		KVHeads:              p.KVHeads,
		FeedForward:          p.FeedForward,
		VocabSize:            p.VocabSize,
		TrainContext:         p.TrainContext,
		ContextLength:        p.ContextLength,
		WeightsBytes:         p.WeightsBytes,
		OnGPU:                p.OnGPU,
		SystemPrompt:         p.SystemPrompt,
		LoadTime:             jsonDur(p.LoadTime),
		RequestOverhead:      jsonDur(p.RequestOverhead),
		StepBase:             jsonDur(p.StepBase),
		StepPerSeq:           jsonDur(p.StepPerSeq),
		PrefillPerToken:      jsonDur(p.PrefillPerToken),
		AttentionPerPair:     jsonDur(p.AttentionPerPair),
		DecodePerContext:     jsonDur(p.DecodePerContextToken),
		BatchSize:            p.BatchSize,
		PromptTokenRatio:     p.PromptTokenRatio,
		PromptTokenOffset:    p.PromptTokenOffset,
		KVBytesPerToken:      p.KVBytesPerToken,
		LateJoinRate:         p.LateJoinRate,
		LateJoinRateTogether: &p.LateJoinRateTogether,
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode profile %s: %w", p.Name, err)
	}
	return append(b, '\n'), nil
}

// UnmarshalProfile reads a profile written by MarshalProfile; unknown
// fields and a profile the simulator cannot run are errors.
func UnmarshalProfile(b []byte) (Profile, error) {
	var f profileFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Profile{}, err
	}
	p := Profile{
		Name:                  f.Name,
		Description:           f.Description,
		Model:                 f.Model,
		Architecture:          f.Architecture,
		Family:                f.Family,
		ParameterSize:         f.ParameterSize,
		Quantization:          f.Quantization,
		ParameterCount:        f.ParameterCount,
		Digest:                f.Digest,
		Layers:                f.Layers,
		Embedding:             f.Embedding,
		Heads:                 f.Heads,
		KVHeads:               f.KVHeads,
		FeedForward:           f.FeedForward,
		VocabSize:             f.VocabSize,
		TrainContext:          f.TrainContext,
		ContextLength:         f.ContextLength,
		WeightsBytes:          f.WeightsBytes,
		OnGPU:                 f.OnGPU,
		SystemPrompt:          f.SystemPrompt,
		LoadTime:              time.Duration(f.LoadTime),
		RequestOverhead:       time.Duration(f.RequestOverhead),
		StepBase:              time.Duration(f.StepBase),
		StepPerSeq:            time.Duration(f.StepPerSeq),
		PrefillPerToken:       time.Duration(f.PrefillPerToken),
		AttentionPerPair:      time.Duration(f.AttentionPerPair),
		DecodePerContextToken: time.Duration(f.DecodePerContext),
		BatchSize:             f.BatchSize,
		PromptTokenRatio:      f.PromptTokenRatio,
		PromptTokenOffset:     f.PromptTokenOffset,
		KVBytesPerToken:       f.KVBytesPerToken,
		LateJoinRate:          f.LateJoinRate,
		LateJoinRateTogether:  f.LateJoinRate,
	}
	if f.LateJoinRateTogether != nil {
		p.LateJoinRateTogether = *f.LateJoinRateTogether
	}
	if err := p.validate(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// ReadProfileFile reads a profile file (`supervisor calibrate` writes them).
func ReadProfileFile(path string) (Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, fmt.Errorf("read profile: %w", err)
	}
	p, err := UnmarshalProfile(b)
	if err != nil {
		return Profile{}, fmt.Errorf("profile %s: %w", path, err)
	}
	return p, nil
}

package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tokentrace/tokentrace/internal/simulator"
)

// profileFlag overrides one field of the chosen profile from the command
// line, so every parameter of a profile can be changed without code.
type profileFlag struct {
	name, usage string
	set         func(p *simulator.Profile, v string) error
}

func durationField(field func(p *simulator.Profile) *time.Duration) func(*simulator.Profile, string) error {
	return func(p *simulator.Profile, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration like 12ms", v)
		}
		*field(p) = d
		return nil
	}
}

func countField(field func(p *simulator.Profile) *int) func(*simulator.Profile, string) error {
	return func(p *simulator.Profile, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive count", v)
		}
		*field(p) = n
		return nil
	}
}

func shareField(field func(p *simulator.Profile) *float64) func(*simulator.Profile, string) error {
	return func(p *simulator.Profile, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return fmt.Errorf("%q is not a share from 0 to 1", v)
		}
		*field(p) = f
		return nil
	}
}

var profileFlags = []profileFlag{
	{"load-time", "time to load the model on the first request", durationField(func(p *simulator.Profile) *time.Duration { return &p.LoadTime })},
	{"request-overhead", "fixed work of a request before the slots", durationField(func(p *simulator.Profile) *time.Duration { return &p.RequestOverhead })},
	{"step-base", "fixed cost of one forward pass (a batch is one or more micro-batches)", durationField(func(p *simulator.Profile) *time.Duration { return &p.StepBase })},
	{"step-per-seq", "cost each busy slot adds to a batch", durationField(func(p *simulator.Profile) *time.Duration { return &p.StepPerSeq })},
	{"prefill-per-token", "cost of each uncached prompt token", durationField(func(p *simulator.Profile) *time.Duration { return &p.PrefillPerToken })},
	{"batch-size", "prompt tokens one slot adds to a batch (num_batch)", countField(func(p *simulator.Profile) *int { return &p.BatchSize })},
	{"late-join-rate", "share (0-1) of batch ends at which requests that became ready during the batch miss the next one too", shareField(func(p *simulator.Profile) *float64 { return &p.LateJoinRate })},
	{"late-join-rate-together", "the same share for requests with prompts of more than one batch sent together to an idle engine", shareField(func(p *simulator.Profile) *float64 { return &p.LateJoinRateTogether })},
	{"layers", "model blocks (sizes the KV cache)", countField(func(p *simulator.Profile) *int { return &p.Layers })},
	{"embedding", "model width", countField(func(p *simulator.Profile) *int { return &p.Embedding })},
	{"heads", "attention heads", countField(func(p *simulator.Profile) *int { return &p.Heads })},
	{"kv-heads", "KV heads (sizes the KV cache)", countField(func(p *simulator.Profile) *int { return &p.KVHeads })},
	{"weights-bytes", "size of the model file (e.g. 4.4GiB)", func(p *simulator.Profile, v string) error {
		n, err := parseBytes(v)
		if err != nil {
			return err
		}
		p.WeightsBytes = n
		return nil
	}},
}

// profileOverrides registers the profile flags on fs; apply then builds the
// custom profile from the named one when any of them was given.
func profileOverrides(fs *flag.FlagSet) (apply func(cfg *simulator.Config) error) {
	values := map[string]*string{}
	for _, pf := range profileFlags {
		values[pf.name] = fs.String(pf.name, "", "override the profile: "+pf.usage)
	}
	return func(cfg *simulator.Config) error {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		name := cfg.Profile
		if name == "" {
			name = simulator.DefaultProfile
		}
		p, ok := simulator.Profiles[name]
		if !ok && isProfileFile(name) {
			fp, err := simulator.ReadProfileFile(name)
			if err != nil {
				return fmt.Errorf("--profile: %w", err)
			}
			p, cfg.CustomProfile = fp, &fp
		} else if !ok {
			return fmt.Errorf("--profile %q is not one of %v, nor a profile file (a path ending in .json)", name, simulator.ProfileNames())
		}
		changed := false
		for _, pf := range profileFlags {
			if !set[pf.name] {
				continue
			}
			if err := pf.set(&p, *values[pf.name]); err != nil {
				return fmt.Errorf("--%s: %w", pf.name, err)
			}
			changed = true
		}
		if changed {
			cfg.CustomProfile = &p
		}
		return nil
	}
}

// isProfileFile tells a profile file (`supervisor calibrate` writes them)
// from a built-in profile's name.
func isProfileFile(s string) bool {
	return strings.HasSuffix(s, ".json") || strings.ContainsRune(s, filepath.Separator)
}

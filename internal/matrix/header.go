package matrix

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/memsample"
)

// Settings are every choice of a run; a resumed run uses the saved ones.
type Settings struct {
	// Backend is "ollama", "sim", "command" or "external".
	Backend     string `json:"backend"`
	Model       string `json:"model"`
	API         string `json:"api"` // "ollama" or "openai"
	Concurrency []int  `json:"concurrency"`
	// Rates are open-loop request rates (Poisson arrivals), run after the
	// concurrencies.
	Rates       []float64 `json:"rates,omitempty"`
	PromptSizes []string  `json:"prompt_sizes"`
	NumParallel []int     `json:"num_parallel"`
	NumCtx      []int     `json:"num_ctx"`
	// Duration is each scenario's measurement window; Warmup is run before
	// it and not counted.
	Duration    Duration `json:"duration"`
	Warmup      Duration `json:"warmup"`
	MaxTokens   int      `json:"max_tokens"`
	VaryPrompts bool     `json:"vary_prompts"`
	// Command is the engine's command line (--cmd, or the one built for
	// ollama and sim), with {parallel}, {ctx} and {port} unexpanded.
	Command string `json:"command,omitempty"`
	// URL is the engine of an external backend (not restarted).
	URL string `json:"url,omitempty"`
	// SimArgs are extra simulator flags (time scale, memory limit).
	SimArgs []string `json:"sim_args,omitempty"`
	// SLO are the latency limits a setting must meet (--slo); goodput
	// counts against them.
	SLO SLO `json:"slo,omitempty"`
	// Search, when its Kind is set, runs a capacity search per setting and
	// prompt size instead of the fixed concurrencies and rates.
	Search Search `json:"search,omitempty"`
}

// Validate checks the settings before anything starts.
func (s Settings) Validate(promptSizes []string) error {
	if err := s.Search.Validate(); err != nil {
		return err
	}
	if s.Search.Kind != "" && !s.SLO.Set() {
		return errors.New("a capacity search needs --slo: the limits the setting must meet")
	}
	if (len(s.Concurrency) == 0 && len(s.Rates) == 0 && s.Search.Kind == "") || len(s.PromptSizes) == 0 || len(s.NumParallel) == 0 || len(s.NumCtx) == 0 {
		return errors.New("concurrency (or rates), prompt sizes, parallel and context each need at least one value")
	}
	for _, r := range s.Rates {
		if !(r > 0) || math.IsInf(r, 0) {
			return fmt.Errorf("rate %g: must be a positive number of requests per second", r)
		}
	}
	for _, c := range s.Concurrency {
		if c <= 0 {
			return fmt.Errorf("concurrency %d: must be at least 1", c)
		}
	}
	for _, p := range s.NumParallel {
		if p <= 0 {
			return fmt.Errorf("num-parallel %d: must be at least 1", p)
		}
	}
	for _, c := range s.NumCtx {
		if c <= 0 {
			return fmt.Errorf("num-ctx %d: must be positive", c)
		}
	}
	for _, p := range s.PromptSizes {
		if !slices.Contains(promptSizes, p) {
			return fmt.Errorf("unknown prompt size %q: want one of %v", p, promptSizes)
		}
	}
	switch {
	case s.Duration.D() <= 0:
		return fmt.Errorf("duration %s: must be positive", s.Duration.D())
	case s.Warmup.D() < 0:
		return fmt.Errorf("warmup %s: must not be negative", s.Warmup.D())
	case s.MaxTokens < 0:
		return fmt.Errorf("max-tokens %d: must not be negative", s.MaxTokens)
	case s.Model == "":
		return errors.New("model: required")
	}
	return nil
}

// Scenarios lists the matrix in run order: settings outermost (one engine
// restart each), then concurrency, then prompt size.
func (s Settings) Scenarios() []Scenario {
	var out []Scenario
	for _, ctx := range s.NumCtx {
		for _, p := range s.NumParallel {
			if s.Search.Kind != "" {
				for _, size := range s.PromptSizes {
					out = append(out, Scenario{Setting: Setting{p, ctx}, PromptSize: size, Search: s.Search.Kind})
				}
				continue
			}
			for _, c := range s.Concurrency {
				for _, size := range s.PromptSizes {
					out = append(out, Scenario{Setting: Setting{p, ctx}, Concurrency: c, PromptSize: size})
				}
			}
			for _, r := range s.Rates {
				for _, size := range s.PromptSizes {
					out = append(out, Scenario{Setting: Setting{p, ctx}, Rate: r, PromptSize: size})
				}
			}
		}
	}
	return out
}

// Duration is a time.Duration that reads and writes as "60s" in JSON.
type Duration time.Duration

// D is the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// EngineInfo says which engine served the run.
type EngineInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Restartable is false for an external engine: only concurrency × size ran.
	Restartable bool `json:"restartable"`
}

// Machine is where the run happened.
type Machine struct {
	OS          string `json:"os"`
	Platform    string `json:"platform"`
	Kernel      string `json:"kernel"`
	Arch        string `json:"arch"`
	CPUModel    string `json:"cpu_model"`
	CPUs        int    `json:"cpus"`
	MemoryBytes uint64 `json:"memory_bytes"`
	// GPUs are the NVIDIA GPUs nvidia-smi sees (name, driver, memory);
	// none without nvidia-smi.
	GPUs []memsample.GPU `json:"gpus,omitempty"`
}

// Header is the run header (header.json).
type Header struct {
	Started  time.Time         `json:"started"`
	Settings Settings          `json:"settings"`
	Engine   EngineInfo        `json:"engine"`
	Model    backend.ModelInfo `json:"model"`
	Machine  Machine           `json:"machine"`
	// KVBytesPerSlot is the KV-cache estimate from the model's shape, per
	// context size ("4096": bytes), at KVCacheType's element size.
	KVBytesPerSlot map[string]int64 `json:"kv_bytes_per_slot,omitempty"`
	KVCacheType    string           `json:"kv_cache_type,omitempty"`
	// EngineEnv is every OLLAMA_* variable the engine ran with (those of
	// the first setting: OLLAMA_NUM_PARALLEL and OLLAMA_CONTEXT_LENGTH
	// change per setting).
	EngineEnv map[string]string `json:"engine_env,omitempty"`
}

// ThisMachine describes the machine the supervisor runs on.
func ThisMachine(ctx context.Context) Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	if infos, err := cpu.InfoWithContext(ctx); err == nil && len(infos) > 0 {
		m.CPUModel = infos[0].ModelName
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		m.MemoryBytes = vm.Total
	}
	if hi, err := host.InfoWithContext(ctx); err == nil {
		m.Platform = hi.Platform + " " + hi.PlatformVersion
		m.Kernel = hi.KernelVersion
	}
	return m
}

package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// resumeSettings is the saved run's settings with what the command line
// adds: new concurrencies, rates, parallel settings, contexts and prompt
// sizes run as additions. Anything else given that differs from the saved
// run is refused, since the figures would no longer compare: another
// engine or model (start a new run), another duration, warm-up, answer
// cap, prompt variation, SLO or search. The engine flags are set from the
// saved run.
func (f *runFlags) resumeSettings(saved, given matrix.Settings, set map[string]bool) (matrix.Settings, error) {
	engine := []struct {
		flag         string
		saved, given string
	}{
		{"backend", saved.Backend, f.backend},
		{"model", saved.Model, f.model},
		{"api", saved.API, f.api},
		{"url", saved.URL, f.url},
		{"cmd", saved.Command, f.cmd},
	}
	for _, e := range engine {
		if set[e.flag] && e.given != e.saved {
			return saved, fmt.Errorf("the run used --%s %q; --%s %q is another engine or model, whose figures would not compare: start a new run with --out",
				e.flag, e.saved, e.flag, e.given)
		}
	}
	same := []struct {
		flag         string
		saved, given any
	}{
		{"duration", saved.Duration, given.Duration},
		{"warmup", saved.Warmup, given.Warmup},
		{"max-tokens", saved.MaxTokens, given.MaxTokens},
		{"vary-prompts", saved.VaryPrompts, given.VaryPrompts},
		{"slo", saved.SLO.String(), given.SLO.String()},
		{"search", saved.Search, given.Search},
		{"max-concurrency", saved.Search, given.Search},
		{"max-rate", saved.Search, given.Search},
		{"min-rate", saved.Search, given.Search},
	}
	for _, c := range same {
		if set[c.flag] && fmt.Sprint(c.saved) != fmt.Sprint(c.given) {
			return saved, fmt.Errorf("--%s differs from the run's (%v): the new scenarios would not compare with the saved ones; start a new run with --out",
				c.flag, c.saved)
		}
	}
	s := saved
	if set["concurrency"] {
		s.Concurrency = union(s.Concurrency, given.Concurrency)
	}
	if set["rates"] {
		s.Rates = union(s.Rates, given.Rates)
	}
	if set["num-parallel"] {
		s.NumParallel = union(s.NumParallel, given.NumParallel)
	}
	if set["num-ctx"] {
		s.NumCtx = union(s.NumCtx, given.NumCtx)
	}
	if set["prompt-sizes"] {
		s.PromptSizes = union(s.PromptSizes, given.PromptSizes)
	}
	if s.Search.Kind != "" && (len(s.Concurrency) > 0 || len(s.Rates) > 0) {
		return saved, fmt.Errorf("the run is a capacity search (--search %s): --concurrency and --rates do not apply", s.Search.Kind)
	}
	f.backend, f.model, f.api, f.url, f.simFlags = s.Backend, s.Model, s.API, s.URL, s.SimArgs
	if s.Backend == "command" {
		f.cmd = s.Command
	}
	return s, nil
}

// union is a followed by the values of b it lacks, in order.
func union[T comparable](a, b []T) []T {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// describeAdded says what a resume adds, for the log.
func describeAdded(saved, s matrix.Settings) string {
	var parts []string
	add := func(name string, before, after int) {
		if after > before {
			parts = append(parts, fmt.Sprintf("%d %s", after-before, name))
		}
	}
	add("concurrencies", len(saved.Concurrency), len(s.Concurrency))
	add("rates", len(saved.Rates), len(s.Rates))
	add("parallel settings", len(saved.NumParallel), len(s.NumParallel))
	add("contexts", len(saved.NumCtx), len(s.NumCtx))
	add("prompt sizes", len(saved.PromptSizes), len(s.PromptSizes))
	return strings.Join(parts, ", ")
}

package loadgen

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// ScenarioHeader carries Options.Scenario to the proxy.
const ScenarioHeader = "X-Tokentrace-Scenario"

// targeter builds the inference requests of an attack. vegeta calls it from
// every worker at once; it only reads shared state and bumps a counter.
type targeter struct {
	url      string
	api      string
	endpoint string
	model    string
	max      int
	greedy   bool
	prompts  []Prompt
	bodies   [][]byte // pre-encoded bodies when prompts do not vary
	vary     bool
	runID    string
	header   http.Header
	n        atomic.Uint64
}

func newTargeter(o *Options, runID string) (*targeter, error) {
	u, err := o.targetURL()
	if err != nil {
		return nil, err
	}
	prompts := o.Prompts
	if len(prompts) == 0 {
		p, ok := BuiltinPrompt(o.PromptSize)
		if !ok {
			return nil, fmt.Errorf("prompt size %q: must be one of %v", o.PromptSize, PromptSizes())
		}
		prompts = []Prompt{p}
	}
	h := http.Header{}
	for k, vs := range o.Headers {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	h.Set("Content-Type", "application/json")
	if o.API == "openai" {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/x-ndjson")
	}
	if o.Scenario != "" {
		h.Set(ScenarioHeader, o.Scenario)
	}
	t := &targeter{url: u, api: o.API, endpoint: o.Endpoint, model: o.Model, max: o.MaxTokens, greedy: o.Greedy,
		prompts: prompts, vary: o.VaryPrompts, runID: runID, header: h}
	if !t.vary {
		for _, p := range prompts {
			b, err := t.body(p)
			if err != nil {
				return nil, err
			}
			t.bodies = append(t.bodies, b)
		}
	}
	return t, nil
}

// Targeter returns the vegeta.Targeter.
func (t *targeter) Targeter() vegeta.Targeter {
	return func(tgt *vegeta.Target) error {
		if tgt == nil {
			return vegeta.ErrNilTarget
		}
		i := t.n.Add(1) - 1
		k := int(i % uint64(len(t.prompts)))
		tgt.Method, tgt.URL, tgt.Header = http.MethodPost, t.url, t.header
		if !t.vary {
			tgt.Body = t.bodies[k]
			return nil
		}
		p := t.prompts[k]
		msgs := append([]Message(nil), p.Messages...)
		// The prefix goes first, so no two requests share a cached prefix.
		msgs[0].Content = "[run " + t.runID + " request " + strconv.FormatUint(i, 10) + "] " + msgs[0].Content
		b, err := t.body(Prompt{Messages: msgs})
		if err != nil {
			return err
		}
		tgt.Body = b
		return nil
	}
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type ollamaOptions struct {
	NumPredict  int      `json:"num_predict,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	Seed        int      `json:"seed,omitempty"`
}

// sampling is the OpenAI request's temperature and seed (Options.Greedy).
type sampling struct {
	Temperature *float64 `json:"temperature,omitempty"`
	Seed        int      `json:"seed,omitempty"`
}

var zeroTemperature = 0.0

// body is the JSON request for one prompt.
func (t *targeter) body(p Prompt) ([]byte, error) {
	var v any
	switch t.api + " " + t.endpoint {
	case "ollama chat":
		v = struct {
			Model    string         `json:"model"`
			Messages []Message      `json:"messages"`
			Stream   bool           `json:"stream"`
			Options  *ollamaOptions `json:"options,omitempty"`
		}{t.model, p.Messages, true, t.ollamaOptions()}
	case "ollama generate":
		v = struct {
			Model   string         `json:"model"`
			Prompt  string         `json:"prompt"`
			Stream  bool           `json:"stream"`
			Options *ollamaOptions `json:"options,omitempty"`
		}{t.model, p.Text(), true, t.ollamaOptions()}
	case "openai chat":
		v = struct {
			Model         string        `json:"model"`
			Messages      []Message     `json:"messages"`
			Stream        bool          `json:"stream"`
			StreamOptions streamOptions `json:"stream_options"`
			MaxTokens     int           `json:"max_tokens,omitempty"`
			sampling
		}{t.model, p.Messages, true, streamOptions{true}, t.max, t.sampling()}
	case "openai completions":
		v = struct {
			Model         string        `json:"model"`
			Prompt        string        `json:"prompt"`
			Stream        bool          `json:"stream"`
			StreamOptions streamOptions `json:"stream_options"`
			MaxTokens     int           `json:"max_tokens,omitempty"`
			sampling
		}{t.model, p.Text(), true, streamOptions{true}, t.max, t.sampling()}
	default:
		return nil, fmt.Errorf("API %q endpoint %q: not supported", t.api, t.endpoint)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s request: %w", t.api, t.endpoint, err)
	}
	return b, nil
}

func (t *targeter) ollamaOptions() *ollamaOptions {
	if t.max == 0 && !t.greedy {
		return nil
	}
	o := &ollamaOptions{NumPredict: t.max}
	if t.greedy {
		o.Temperature, o.Seed = &zeroTemperature, GreedySeed
	}
	return o
}

func (t *targeter) sampling() sampling {
	if !t.greedy {
		return sampling{}
	}
	return sampling{Temperature: &zeroTemperature, Seed: GreedySeed}
}

package loadgen

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// ScenarioHeader carries Options.Scenario to the proxy.
const ScenarioHeader = "X-Tokentrace-Scenario"

// targeter builds the inference requests of an attack. vegeta calls it from
// every worker at once; it only reads shared state and bumps a counter.
type targeter struct {
	url      string
	endpoint stream.Endpoint
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
	ep, err := o.endpoint()
	if err != nil {
		return nil, err
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", ep.API.Wire().StreamType)
	if o.Scenario != "" {
		h.Set(ScenarioHeader, o.Scenario)
	}
	t := &targeter{url: u, endpoint: ep, model: o.Model, max: o.MaxTokens, greedy: o.Greedy,
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

// body is the JSON request for one prompt; greedy requests ask every API
// that has them for temperature 0 and a fixed seed.
func (t *targeter) body(p Prompt) ([]byte, error) {
	r := stream.GenRequest{Model: t.model, Messages: p.Messages, MaxTokens: t.max}
	if t.greedy {
		zero, seed := 0.0, int64(GreedySeed)
		r.Temperature, r.Seed = &zero, &seed
	}
	return t.endpoint.Body(r)
}

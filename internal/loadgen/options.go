package loadgen

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// Arrival processes for an open-loop attack (-rate).
const (
	ArrivalConstant = "constant"
	ArrivalPoisson  = "poisson"
)

// Default values of Options; DefaultOptions returns them.
const (
	DefaultAPI         = "ollama"
	DefaultEndpoint    = "chat"
	DefaultModel       = "qwen2.5:7b-instruct"
	DefaultMaxTokens   = 256
	DefaultPromptSize  = "medium"
	DefaultConcurrency = 1
	DefaultTimeout     = 5 * time.Minute
	DefaultAttackName  = "loadtest"
)

// Options configure one attack. Start from DefaultOptions and call Validate.
type Options struct {
	// URL is the server or proxy to attack. When its path is empty or "/",
	// the endpoint's path (/api/chat, /v1/chat/completions, …) is appended;
	// otherwise the URL is used as given.
	URL string
	// API names a wire API of internal/stream's table: "ollama" (NDJSON,
	// /api/*), "openai" (SSE, /v1/chat/completions and /v1/completions),
	// "responses" (/v1/responses) or "anthropic" (/v1/messages).
	API string
	// Endpoint names one of the API's endpoints: "chat" or "generate" for
	// Ollama, "chat" or "completions" for OpenAI, "chat" for Responses and
	// Messages.
	Endpoint string
	// Model is sent as the request's model.
	Model string
	// MaxTokens caps the output (Ollama options.num_predict, OpenAI
	// max_tokens, Responses max_output_tokens, Messages max_tokens); 0 leaves
	// it to the server (Messages requires a limit: 4096 is sent then).
	MaxTokens int
	// PromptSize picks a built-in prompt: small, medium, large or xlarge.
	// Ignored when Prompts is not empty.
	PromptSize string
	// Prompts, when not empty, are sent in turn instead of a built-in
	// prompt (ReadPrompts reads them from a -prompts JSONL file).
	Prompts []Prompt
	// PromptsFile, when set and Prompts is empty, is a JSONL file of
	// prompts Run reads (the format of ReadPrompts).
	PromptsFile string
	// VaryPrompts puts a unique prefix before every prompt so that no
	// request can hit a prefix cache.
	VaryPrompts bool

	// Concurrency is the number of requests in flight in a closed loop
	// (vegeta's zero rate with that many workers). With Rate > 0 it bounds
	// the workers of the open loop instead (0: unbounded).
	Concurrency int
	// Rate, when > 0, makes the attack an open loop of Rate requests per
	// second with the given Arrival process.
	Rate float64
	// Arrival is "constant" or "poisson" (exponential gaps, mean 1/Rate).
	Arrival string
	// Seed seeds the Poisson arrivals and the prompt prefixes; 0 picks one
	// from the clock.
	Seed uint64
	// Duration bounds the measured window (after warm-up); 0 for none.
	Duration time.Duration
	// Requests bounds the measured requests (after warm-up); 0 for none.
	// With neither Duration nor Requests the attack runs until ctx ends.
	Requests uint64
	// Warmup is a time at the start whose requests are sent but neither
	// counted nor handed to the callback.
	Warmup time.Duration
	// WarmupRequests is a number of requests at the start treated as
	// Warmup; set at most one of the two.
	WarmupRequests uint64

	// Name is the vegeta attack name of every result (plots draw one
	// series per name).
	Name string
	// Scenario, when set, is sent as the X-Tokentrace-Scenario header.
	Scenario string
	// Timeout bounds each request, body included.
	Timeout time.Duration
	// Headers are added to every request (Authorization, …).
	Headers http.Header
	// TracerProvider makes every request a CLIENT span and sends its
	// traceparent. When nil, a provider that exports nothing is used so
	// that traceparent (and the trace id in the figures) is still sent.
	TracerProvider trace.TracerProvider
	// Abort, when closed, cancels the requests in flight (they become
	// "canceled" error records); closing ctx only stops new ones.
	Abort <-chan struct{}
	// OnWarmupResult, when set, receives every warm-up result (with its
	// figures) instead of dropping it: a request started in the warm-up
	// that ends inside the window counts in the window's throughput.
	OnWarmupResult func(*vegeta.Result)
	// OnWindow, when set, is told the measured window once the attack has
	// begun: it opens when the warm-up ends (the load goes on without a
	// pause) and closes Duration later (zero when Duration is 0).
	OnWindow func(start, end time.Time)
	// Greedy asks for the same answer at every run: temperature 0 and the
	// seed GreedySeed in every request (Ollama's options.temperature and
	// options.seed, OpenAI's temperature and seed).
	Greedy bool
}

// GreedySeed is the sampling seed of Options.Greedy.
const GreedySeed = 42

// DefaultOptions returns Options with every default set; URL is empty.
func DefaultOptions() Options {
	return Options{
		API:         DefaultAPI,
		Endpoint:    DefaultEndpoint,
		Model:       DefaultModel,
		MaxTokens:   DefaultMaxTokens,
		PromptSize:  DefaultPromptSize,
		Concurrency: DefaultConcurrency,
		Arrival:     ArrivalConstant,
		Timeout:     DefaultTimeout,
		Name:        DefaultAttackName,
	}
}

// Validate reports the first field that is not usable, by name.
func (o *Options) Validate() error {
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		return errors.New("URL: required")
	case err != nil:
		return fmt.Errorf("URL %q: %w", o.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("URL %q: scheme must be http or https", o.URL)
	case u.Host == "":
		return fmt.Errorf("URL %q: no host", o.URL)
	}
	if _, err := o.endpoint(); err != nil {
		return err
	}
	if o.Model == "" {
		return errors.New("Model: required")
	}
	if o.MaxTokens < 0 {
		return fmt.Errorf("MaxTokens %d: must not be negative", o.MaxTokens)
	}
	if len(o.Prompts) == 0 && o.PromptsFile == "" {
		if _, ok := builtinPrompts[o.PromptSize]; !ok {
			return fmt.Errorf("PromptSize %q: must be one of %v", o.PromptSize, PromptSizes())
		}
	}
	for i, p := range o.Prompts {
		if err := p.validate(); err != nil {
			return fmt.Errorf("Prompts[%d]: %w", i, err)
		}
	}
	switch {
	case o.Concurrency < 0:
		return fmt.Errorf("Concurrency %d: must not be negative", o.Concurrency)
	case o.Rate < 0:
		return fmt.Errorf("Rate %g: must not be negative", o.Rate)
	case o.Rate == 0 && o.Concurrency == 0:
		return errors.New("Concurrency: must be at least 1 for a closed loop (Rate 0)")
	case o.Arrival != ArrivalConstant && o.Arrival != ArrivalPoisson:
		return fmt.Errorf("Arrival %q: must be %q or %q", o.Arrival, ArrivalConstant, ArrivalPoisson)
	case o.Duration < 0:
		return fmt.Errorf("Duration %s: must not be negative", o.Duration)
	case o.Warmup < 0:
		return fmt.Errorf("Warmup %s: must not be negative", o.Warmup)
	case o.Warmup > 0 && o.WarmupRequests > 0:
		return errors.New("Warmup and WarmupRequests: set at most one")
	case o.Timeout <= 0:
		return fmt.Errorf("Timeout %s: must be positive", o.Timeout)
	}
	return nil
}

// endpoint is the endpoint Options.API and Options.Endpoint name, from
// the table of wire APIs.
func (o *Options) endpoint() (stream.Endpoint, error) {
	w, ok := stream.WireNamed(o.API)
	if !ok {
		return stream.Endpoint{}, fmt.Errorf("API %q: must be one of %s", o.API, strings.Join(stream.WireNames(), ", "))
	}
	if e, ok := w.EndpointNamed(o.Endpoint); ok && e.CanBuild() {
		return e, nil
	}
	var names []string
	for _, e := range w.Endpoints {
		if e.CanBuild() {
			names = append(names, e.Name)
		}
	}
	return stream.Endpoint{}, fmt.Errorf("Endpoint %q: %s's are %s", o.Endpoint, w.Name, strings.Join(names, " and "))
}

// targetURL is the URL requests go to.
func (o *Options) targetURL() (string, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return "", fmt.Errorf("parse URL %q: %w", o.URL, err)
	}
	if u.Path == "" || u.Path == "/" {
		e, err := o.endpoint()
		if err != nil {
			return "", err
		}
		u.Path = e.Path
	}
	return u.String(), nil
}

package gateway

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TokenEventMode says which output chunks become span events.
type TokenEventMode int

const (
	// TokenEventsAll adds an event for every output chunk, up to the cap.
	TokenEventsAll TokenEventMode = iota
	// TokenEventsOff adds none (the first_token event is always added).
	TokenEventsOff
	// TokenEventsEveryN adds one for chunks 0, N, 2N, …, up to the cap.
	TokenEventsEveryN
)

func (m TokenEventMode) String() string {
	switch m {
	case TokenEventsOff:
		return "off"
	case TokenEventsEveryN:
		return "every"
	default:
		return "all"
	}
}

// TokenEvents configures the per-token span events. The number of chunks
// left out (by sampling or the cap) is recorded on the span.
type TokenEvents struct {
	Mode TokenEventMode
	// Every is N for TokenEventsEveryN.
	Every int
	// Cap bounds the events on one span; DefaultTokenEventCap when 0. The
	// tracer provider must allow as many events per span (telemetry.NewTracing
	// does; the SDK's own default is 128).
	Cap int
	// Packed puts the events on the span as one attribute
	// (telemetry.PackTokenEvents) instead of one SDK event each, which costs
	// a fifth of the gateway's CPU per token at 256 paced streams. Only the
	// exporters of telemetry.NewTracing turn the attribute back into the
	// events, so set it only when every span processor of the tracer
	// provider exports through them, as the proxy command's does. Chunk text
	// (CaptureContent) is never packed.
	Packed bool
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes    = 16 << 20
	DefaultTokenEventCap   = 1024
	DefaultProviderName    = "ollama"
	DefaultScenarioHeader  = "X-Tokentrace-Scenario"
	DefaultMaxModels       = 32
	DefaultMaxScenarios    = 32
	DefaultUpstreamTimeout = 5 * time.Minute
	DefaultDialTimeout     = 5 * time.Second
	DefaultStreamIdle      = 5 * time.Minute
	DefaultEjectBackoff    = 2 * time.Second
)

// GCPercent is the GOGC the proxy command runs with unless GOGC is set
// (while its live heap is under GCHeadroom/4; see TuneGC). A
// proxy's live heap is small (tens of KiB per stream) while every streamed
// chunk and every exported span allocates, so at Go's default of 100 the
// collector runs many times a second and its marking, assists and sweeping
// were a tenth of the gateway's CPU in make bench-proxy. At 400 the heap may
// grow to five times the live heap between collections (the live heap per
// in-flight stream does not change) and collections are a quarter as
// frequent. docs/proxy.md has the figures.
const GCPercent = 400

// Config configures a Gateway. The zero value of every field but Upstreams
// means its default.
type Config struct {
	// Upstreams are the base URLs (scheme://host:port) requests are spread
	// over, each to the upstream with the fewest requests in flight. At
	// least one is required.
	Upstreams []string
	// RouteByModel sends inference requests for a model (the request body's
	// "model", matched exactly) to its own upstreams, balanced alike; other
	// requests go to Upstreams.
	RouteByModel map[string][]string
	// Providers names gen_ai.provider.name per upstream URL; ProviderName
	// for upstreams not listed.
	Providers map[string]string
	// ProviderName is gen_ai.provider.name (default "ollama").
	ProviderName string
	// MaxBodyBytes bounds an inference request body, which is read to learn
	// the model and stream flag; larger bodies get 413 (default 16 MiB).
	// Other requests stream through unread.
	MaxBodyBytes int64
	// TokenEvents configures per-token span events (default: all, capped).
	TokenEvents TokenEvents
	// CaptureContent records the request body and the generated text on the
	// span. Off by default: prompts and completions may be private.
	CaptureContent bool
	// ScenarioHeader is a request header whose value becomes the
	// tokentrace.scenario span attribute and metric label; it is not
	// forwarded (default X-Tokentrace-Scenario).
	ScenarioHeader string
	// MaxModels caps the distinct model label values; later ones are
	// reported as "_other" (default 32).
	MaxModels int
	// MaxScenarios caps the distinct scenario label values likewise (default 32).
	MaxScenarios int
	// UpstreamTimeout bounds the wait for an upstream's response headers,
	// which for a model server includes queueing, loading and prompt
	// evaluation; past it the client gets 504 (default 5 min).
	UpstreamTimeout time.Duration
	// DialTimeout bounds connecting to an upstream (default 5 s).
	DialTimeout time.Duration
	// StreamIdleTimeout bounds the wait for the next byte of a response
	// body once its headers arrived (a queued request can sit minutes
	// between headers and its first chunk). When it passes, the stream is
	// cut for the client and the request is an error of type timeout
	// (default 5 min).
	StreamIdleTimeout time.Duration
	// EjectBackoff is how long an upstream that refused a connection gets
	// no new requests; it doubles with each refusal in a row, up to 32×,
	// and ends at the first connection it accepts (default 2 s).
	EjectBackoff time.Duration
	// TrustForwarded keeps the Forwarded and X-Forwarded-* headers clients
	// send (appending the client's address to X-Forwarded-For). Off by
	// default: they are replaced by what the proxy sees, since any client
	// can write them.
	TrustForwarded bool
	// TracerProvider makes the spans; none are recorded when nil.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the metrics; none are recorded when nil.
	MeterProvider metric.MeterProvider
	// Propagator reads and writes trace context (default W3C trace context
	// and baggage).
	Propagator propagation.TextMapPropagator
	// Transport sends upstream requests; a tuned http.Transport when nil.
	Transport http.RoundTripper
	// ErrorLog receives the forwarder's errors; discarded when nil.
	ErrorLog *log.Logger
}

func (c *Config) setDefaults() {
	if c.ProviderName == "" {
		c.ProviderName = DefaultProviderName
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.TokenEvents.Cap == 0 {
		c.TokenEvents.Cap = DefaultTokenEventCap
	}
	if c.ScenarioHeader == "" {
		c.ScenarioHeader = DefaultScenarioHeader
	}
	if c.MaxModels == 0 {
		c.MaxModels = DefaultMaxModels
	}
	if c.MaxScenarios == 0 {
		c.MaxScenarios = DefaultMaxScenarios
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = DefaultStreamIdle
	}
	if c.EjectBackoff == 0 {
		c.EjectBackoff = DefaultEjectBackoff
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if len(c.Upstreams) == 0 {
		return errors.New("gateway config: Upstreams is empty: give at least one upstream URL")
	}
	for _, u := range c.Upstreams {
		if _, err := parseUpstream(u); err != nil {
			return fmt.Errorf("gateway config: Upstreams: %w", err)
		}
	}
	for model, us := range c.RouteByModel {
		if model == "" {
			return errors.New("gateway config: RouteByModel: empty model name")
		}
		if len(us) == 0 {
			return fmt.Errorf("gateway config: RouteByModel[%q]: no upstreams", model)
		}
		for _, u := range us {
			if _, err := parseUpstream(u); err != nil {
				return fmt.Errorf("gateway config: RouteByModel[%q]: %w", model, err)
			}
		}
	}
	switch {
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("gateway config: MaxBodyBytes %d is negative", c.MaxBodyBytes)
	case c.TokenEvents.Mode < TokenEventsAll || c.TokenEvents.Mode > TokenEventsEveryN:
		return fmt.Errorf("gateway config: TokenEvents.Mode %d is unknown", c.TokenEvents.Mode)
	case c.TokenEvents.Mode == TokenEventsEveryN && c.TokenEvents.Every < 1:
		return fmt.Errorf("gateway config: TokenEvents.Every %d must be at least 1", c.TokenEvents.Every)
	case c.TokenEvents.Cap < 0:
		return fmt.Errorf("gateway config: TokenEvents.Cap %d is negative", c.TokenEvents.Cap)
	case c.MaxModels < 0:
		return fmt.Errorf("gateway config: MaxModels %d is negative", c.MaxModels)
	case c.MaxScenarios < 0:
		return fmt.Errorf("gateway config: MaxScenarios %d is negative", c.MaxScenarios)
	case c.UpstreamTimeout < 0:
		return fmt.Errorf("gateway config: UpstreamTimeout %v is negative", c.UpstreamTimeout)
	case c.DialTimeout < 0:
		return fmt.Errorf("gateway config: DialTimeout %v is negative", c.DialTimeout)
	case c.StreamIdleTimeout < 0:
		return fmt.Errorf("gateway config: StreamIdleTimeout %v is negative", c.StreamIdleTimeout)
	case c.EjectBackoff < 0:
		return fmt.Errorf("gateway config: EjectBackoff %v is negative", c.EjectBackoff)
	case c.ScenarioHeader != "" && strings.ContainsAny(c.ScenarioHeader, " :\r\n"):
		return fmt.Errorf("gateway config: ScenarioHeader %q is not a header name", c.ScenarioHeader)
	}
	return nil
}

// ParseTokenEvents reads "off", "all" or "every:N" (a flag's value).
func ParseTokenEvents(s string) (TokenEvents, error) {
	switch {
	case s == "off":
		return TokenEvents{Mode: TokenEventsOff}, nil
	case s == "all" || s == "":
		return TokenEvents{Mode: TokenEventsAll}, nil
	case strings.HasPrefix(s, "every:"):
		var n int
		if _, err := fmt.Sscan(strings.TrimPrefix(s, "every:"), &n); err != nil || n < 1 {
			return TokenEvents{}, fmt.Errorf("token events %q: N in every:N must be a positive integer", s)
		}
		return TokenEvents{Mode: TokenEventsEveryN, Every: n}, nil
	}
	return TokenEvents{}, fmt.Errorf("token events %q: want off, all or every:N", s)
}

// parseUpstream checks an upstream base URL. Its path must be empty: the
// forwarder keeps each request's own path.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("upstream %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("upstream %q: no host", s)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("upstream %q: a path is not supported (requests keep their own)", s)
	}
	u.Path = ""
	return u, nil
}

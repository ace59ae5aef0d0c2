// Command bench measures what the proxy costs: against a fake SSE upstream
// on loopback it runs, side by side in one run, a direct connection, a bare
// httputil.ReverseProxy, the instrumented gateway (spans exported over
// OTLP to a running collector) and, when installed, nginx, at several
// scales (streams and the upstream's pace), and reports broken streams,
// requests served, added TTFT (p50/p99), proxy CPU time per streamed token
// and memory per in-flight stream.
//
// Each proxy runs in a child process (this binary with -serve, or nginx),
// so its CPU time (from /proc) and memory are its own; the upstream and the
// clients run here.
//
//	go run ./proxy/bench            # or: make bench-proxy
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

type options struct {
	serve, upstream, otlp string // the child's

	streams        []int
	gaps           []time.Duration
	firstToken     time.Duration
	tokens         int
	duration       time.Duration
	rounds         int
	requestTimeout time.Duration
	variants       []string
	apis           []*benchAPI
	apiStreams     int
	apiGap         time.Duration
	otelcol        string
	nginx          string
	memStreams     int
	hold, longHold int
	cpuProfile     string
	memProfile     string
	tracePrefix    string
	perfPrefix     string
}

// scale is one load: streams at once, tokens gap apart, in one API.
type scale struct {
	streams int
	gap     time.Duration
	api     *benchAPI // nil: OpenAI chat completions
}

func (s scale) String() string {
	load := fmt.Sprintf("%d streams, a token every %v", s.streams, s.gap)
	if s.gap == 0 {
		load = fmt.Sprintf("%d streams, unpaced", s.streams)
	}
	if s.api != nil {
		load += fmt.Sprintf(", %s API (%s)", s.api.name, s.api.path)
	}
	return load
}

func (o options) scales() []scale {
	var out []scale
	for i, n := range o.streams {
		g := o.gaps[0]
		if len(o.gaps) > 1 {
			g = o.gaps[i]
		}
		out = append(out, scale{streams: n, gap: g})
	}
	for _, a := range o.apis {
		out = append(out, scale{streams: o.apiStreams, gap: o.apiGap, api: a})
	}
	return out
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	var streams, gaps, variants, apis string
	flag.StringVar(&o.serve, "serve", "", "internal: serve this proxy variant (bare or gateway) as a child process")
	flag.StringVar(&o.upstream, "upstream", "", "internal: the upstream the child proxies to")
	flag.StringVar(&o.otlp, "otlp", "", "internal: the collector's OTLP/gRPC address for the gateway child (empty: spans are discarded in-process)")
	flag.StringVar(&streams, "streams", "32,256,1000", "concurrent streams of each scale, comma-separated")
	flag.StringVar(&gaps, "token-gap", "0,20ms,20ms", "the upstream's pause between tokens at each scale (one value: all scales); 0 is unpaced")
	flag.StringVar(&apis, "apis", "openai,responses,anthropic,ollama", "after the scales above, load each of these APIs (openai, responses, anthropic, ollama) at -api-streams and -api-token-gap, for the CPU per token of each; empty: none")
	flag.IntVar(&o.apiStreams, "api-streams", 256, "concurrent streams of each -apis load")
	flag.DurationVar(&o.apiGap, "api-token-gap", 20*time.Millisecond, "the upstream's pause between tokens in each -apis load")
	flag.DurationVar(&o.firstToken, "first-token", 50*time.Millisecond, "the upstream's pause before the first token")
	flag.IntVar(&o.tokens, "tokens", 32, "tokens per answer")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "how long each variant is loaded in each round (requests under way then finish)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per scale, going through every variant in turn; figures are given as the median and range over rounds")
	flag.DurationVar(&o.requestTimeout, "request-timeout", time.Minute, "longest one request may take (then it counts as broken)")
	flag.StringVar(&variants, "variants", "direct,bare,gateway,nginx,bare-again", "what to measure, in order: direct, bare, bare-again (a second bare proxy: how far two identical proxies differ), gateway, gateway-events-off, nginx (skipped when not installed); direct is required")
	flag.StringVar(&o.otelcol, "otelcol", "", "the collector binary the gateway exports spans to (make bench-proxy passes the project's build); empty: spans are exported to a discarding exporter in the gateway's process")
	flag.StringVar(&o.nginx, "nginx", "", "the nginx binary (default: nginx on PATH or /usr/sbin/nginx, skipped when there is none)")
	flag.IntVar(&o.memStreams, "memory-streams", 256, "streams held mid-answer to read memory per in-flight stream (0: skip)")
	flag.IntVar(&o.hold, "hold", 32, "tokens each stream has received when memory is read")
	flag.IntVar(&o.longHold, "long-hold", 512, "tokens in, for the second memory reading (0: skip)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write each Go proxy child's CPU profile to FILE.<variant>")
	flag.StringVar(&o.memProfile, "memprofile", "", "write each Go proxy child's allocation profile to FILE.<variant> when it stops")
	flag.StringVar(&o.tracePrefix, "trace", "", "write each Go proxy child's execution trace (go tool trace) to FILE.<variant>; large: use with one short scale")
	flag.StringVar(&o.perfPrefix, "perf", "", "record each Go proxy child with Linux perf (kernel and user stacks, 499 Hz) to FILE.<variant>, for perf report; needs perf on PATH")
	flag.Parse()
	if o.serve != "" {
		if err := serveProxy(o); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			return 1
		}
		return 0
	}
	if err := o.parse(streams, gaps, variants, apis); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	rep, err := measure(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	rep.write(os.Stdout)
	return 0
}

// parse reads the list flags and checks every option.
func (o *options) parse(streams, gaps, variants, apis string) error {
	var err error
	if o.apis, err = parseAPIs(apis); err != nil {
		return err
	}
	for _, s := range strings.Split(streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-streams %q: want positive counts, comma-separated", streams)
		}
		o.streams = append(o.streams, n)
	}
	for _, s := range strings.Split(gaps, ",") {
		s = strings.TrimSpace(s)
		if s == "0" {
			s = "0s"
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("-token-gap %q: want durations ≥ 0, comma-separated", gaps)
		}
		o.gaps = append(o.gaps, d)
	}
	if len(o.gaps) != 1 && len(o.gaps) != len(o.streams) {
		return fmt.Errorf("-token-gap has %d values for %d -streams: give one, or one per scale", len(o.gaps), len(o.streams))
	}
	known := map[string]bool{"direct": true, "bare": true, "bare-again": true, "gateway": true, "gateway-events-off": true, "nginx": true}
	seen := map[string]bool{}
	for _, v := range strings.Split(variants, ",") {
		v = strings.TrimSpace(v)
		if !known[v] || seen[v] {
			return fmt.Errorf("-variants %q: %q is unknown or repeated (want direct, bare, bare-again, gateway, gateway-events-off, nginx)", variants, v)
		}
		seen[v] = true
		o.variants = append(o.variants, v)
	}
	switch {
	case !seen["direct"]:
		return fmt.Errorf("-variants %q: direct is required (added TTFT is against it)", variants)
	case o.tokens < 2:
		return fmt.Errorf("-tokens %d: want at least 2", o.tokens)
	case len(o.apis) > 0 && (o.apiStreams < 1 || o.apiGap < 0):
		return fmt.Errorf("-api-streams %d and -api-token-gap %v: want a positive count and a duration ≥ 0", o.apiStreams, o.apiGap)
	case o.rounds < 1:
		return fmt.Errorf("-rounds %d: want at least 1", o.rounds)
	case o.duration <= 0 || o.requestTimeout <= 0:
		return fmt.Errorf("-duration and -request-timeout must be positive")
	case o.firstToken < 0:
		return fmt.Errorf("-first-token %v: must not be negative", o.firstToken)
	case o.memStreams < 0 || o.hold < 1 || o.longHold < 0:
		return fmt.Errorf("-memory-streams ≥ 0, -hold ≥ 1 and -long-hold ≥ 0, please")
	}
	if o.perfPrefix != "" {
		if _, err := exec.LookPath("perf"); err != nil {
			return fmt.Errorf("-perf %s: perf is not on PATH (Debian: apt-get install linux-perf)", o.perfPrefix)
		}
	}
	return nil
}

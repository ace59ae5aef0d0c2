// Command soak holds the proxy under steady load for a long time and fails
// when its resident memory, goroutines or open descriptors keep growing
// (make soak-proxy; see docs/proxy.md).
//
// It runs the proxy binary as a child process in front of the built-in
// simulated Ollama (internal/simulator, which speaks every API the stream
// package knows), drives -streams concurrent streaming requests mixed over
// every streaming inference endpoint of internal/stream, lets every
// -disconnect-th client leave mid-stream, restarts the upstream every
// -restart-every (cutting its connections), and samples the proxy every
// -interval. The run fails when the median of the last minute's samples of
// any series is more than -max-growth above the median of the minute after
// -warmup.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	proxyBin     string
	out          string
	duration     time.Duration
	warmup       time.Duration
	interval     time.Duration
	streams      int
	tokens       int
	tokenGap     time.Duration
	disconnect   int
	restartEvery time.Duration
	restartDown  time.Duration
	maxGrowth    float64
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.proxyBin, "proxy", "bin/proxy", "the proxy binary to soak")
	fs.StringVar(&o.out, "out", "bin/soak-proxy", "folder for samples.csv and the proxy's log")
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "length of the run")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Minute, "growth is measured from the minute after this")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "time between samples of the proxy")
	fs.IntVar(&o.streams, "streams", 256, "concurrent streaming requests")
	fs.IntVar(&o.tokens, "tokens", 32, "output tokens per request")
	fs.DurationVar(&o.tokenGap, "token-gap", 100*time.Millisecond, "time between output tokens of one stream")
	fs.IntVar(&o.disconnect, "disconnect", 5, "every Nth request's client leaves after 3 chunks (0: none)")
	fs.DurationVar(&o.restartEvery, "restart-every", 3*time.Minute, "restart the upstream this often (0: never)")
	fs.DurationVar(&o.restartDown, "restart-down", 2*time.Second, "how long the upstream stays down when restarting")
	fs.Float64Var(&o.maxGrowth, "max-growth", 0.10, "largest allowed growth of any series after the warm-up (0.10 = 10%)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.streams < 1 || o.tokens < 4:
		return o, errors.New("-streams must be at least 1 and -tokens at least 4")
	case o.interval <= 0 || o.tokenGap <= 0:
		return o, errors.New("-interval and -token-gap must be positive")
	case o.duration < o.warmup+2*time.Minute:
		return o, fmt.Errorf("-duration %v: must be at least -warmup (%v) + 2 minutes, for a baseline and a final minute", o.duration, o.warmup)
	case o.maxGrowth <= 0:
		return o, errors.New("-max-growth must be positive")
	case o.restartEvery > 0 && o.warmup < o.restartEvery+o.restartDown:
		// The first restart's burst (every stream cut, clients retrying,
		// connections remade) sets the heap's high-water mark once; a
		// baseline taken before it reads that as growth.
		return o, fmt.Errorf("-warmup %v: must include the first upstream restart (-restart-every %v + -restart-down %v)", o.warmup, o.restartEvery, o.restartDown)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "soak:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := soak(ctx, o, stderr)
	if res != nil {
		res.report(stdout, o)
	}
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	return 0
}

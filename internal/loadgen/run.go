// Package loadgen is tokentrace's attack engine: vegeta's Attacker, pacers
// and Result stream, with a transport that measures every streamed response
// with the shared stream.Meter and carries the figures of docs/METRICS.md in
// each Result (see Figures and Decode).
package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// Run attacks opts.URL and calls fn with every measured Result, in the
// order they complete, from one goroutine. Each Result carries its Figures
// in Result.Headers (read them with Decode), BytesIn counts the body bytes
// read, and Result.Error is set for every failed request, errors inside
// the stream included. Warm-up results are dropped.
//
// When ctx ends, no new request starts and Run waits for those in flight
// (each bounded by opts.Timeout); closing opts.Abort cancels them as well.
// Every request sent before the stop is handed to fn. An error from fn
// stops the attack, cancels requests in flight and is returned.
func Run(ctx context.Context, opts Options, fn func(*vegeta.Result) error) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("loadgen options: %w", err)
	}
	if len(opts.Prompts) == 0 && opts.PromptsFile != "" {
		f, err := os.Open(opts.PromptsFile)
		if err != nil {
			return fmt.Errorf("loadgen prompts: %w", err)
		}
		opts.Prompts, err = ReadPrompts(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("loadgen prompts %s: %w", opts.PromptsFile, err)
		}
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	tg, err := newTargeter(&opts, strconv.FormatUint(opts.Seed%0xffffffff, 36))
	if err != nil {
		return err
	}
	pacer, err := newPacer(&opts)
	if err != nil {
		return err
	}
	wp := newWindowPacer(pacer, &opts)

	abort, cancelAbort := context.WithCancel(context.Background())
	defer cancelAbort()
	if opts.Abort != nil {
		go func() {
			select {
			case <-opts.Abort:
				cancelAbort()
			case <-abort.Done():
			}
		}()
	}
	table := &figureTable{m: map[uint64]Figures{}}
	tr := newTapTransport(&opts, ctx, abort, table)
	tr.window = wp
	defer tr.next.(*http.Transport).CloseIdleConnections()

	workers, maxWorkers := uint64(opts.Concurrency), uint64(opts.Concurrency)
	if opts.Rate > 0 {
		workers = min(uint64(max(opts.Concurrency, 1)), vegeta.DefaultWorkers)
		if opts.Concurrency == 0 {
			maxWorkers = vegeta.DefaultMaxWorkers
		}
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr, Timeout: opts.Timeout}),
		vegeta.MaxBody(0), vegeta.Workers(workers), vegeta.MaxWorkers(maxWorkers))
	du := opts.Duration
	if du > 0 {
		du += opts.Warmup
	}
	// vegeta's attack begins within microseconds of this; the open loop's
	// schedule and the window count from it.
	tr.began = time.Now()
	wp.began = tr.began
	results := atk.Attack(tg.Targeter(), wp, du, opts.Name)
	if opts.OnWindow != nil {
		start := tr.began.Add(opts.Warmup)
		var end time.Time
		if opts.Duration > 0 {
			end = start.Add(opts.Duration)
		}
		opts.OnWindow(start, end)
	}
	stopOnCtx := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stopOnCtx()

	var fnErr error
	for r := range results {
		f, ok := table.take(r.Seq)
		// Vegeta can hand a worker one more hit after Stop; the transport
		// refused to send it, so it is no request.
		if fnErr != nil || (!ok && strings.Contains(r.Error, errStopped.Error())) {
			continue
		}
		sent := r.Timestamp
		if ok && !f.Start.IsZero() {
			sent = f.Start
		}
		if wp.isWarmup(r.Seq, sent) {
			if opts.OnWarmupResult != nil {
				attach(r, f, ok, opts.API)
				opts.OnWarmupResult(r)
			}
			continue
		}
		attach(r, f, ok, opts.API)
		if err := fn(r); err != nil {
			fnErr = err
			atk.Stop()
			cancelAbort()
		}
	}
	return fnErr
}

func newPacer(o *Options) (vegeta.Pacer, error) {
	switch {
	case o.Rate == 0:
		return vegeta.ConstantPacer{}, nil // as fast as the workers allow: a closed loop
	case o.Arrival == ArrivalPoisson:
		return NewPoissonPacer(o.Rate, o.Seed)
	default:
		per := time.Duration(float64(time.Second) / o.Rate)
		if per <= 0 {
			return nil, fmt.Errorf("rate %g: too high", o.Rate)
		}
		return vegeta.ConstantPacer{Freq: 1, Per: per}, nil
	}
}

// attach puts the figures into the Result vegeta made of the request.
func attach(r *vegeta.Result, f Figures, ok bool, api string) {
	if !ok { // never sent: the targeter or the request failed
		f = Figures{API: api, Start: r.Timestamp, End: r.Latency, ErrorType: stream.ErrTransport, Error: r.Error}
		if f.Error == "" {
			f.Error = "request not sent"
		}
	}
	if r.Headers == nil {
		r.Headers = http.Header{}
	}
	_ = f.Encode(r.Headers) // Figures hold only encodable values
	r.BytesIn = uint64(f.BytesIn)
	if !f.OK() && r.Error == "" {
		r.Error = f.ErrorType + ": " + f.Error
	}
}

func newTapTransport(o *Options, stop, abort context.Context, table *figureTable) *tapTransport {
	base := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: max(o.Concurrency, vegeta.DefaultConnections),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // the Meter must see the bytes as they come
		ForceAttemptHTTP2:   false,
	}
	ep, _ := o.endpoint()
	api := ep.API
	attrs := []attribute.KeyValue{
		semconv.GenAIOperationNameKey.String(ep.Operation),
		semconv.GenAIProviderNameKey.String(o.API),
		semconv.GenAIRequestModel(o.Model),
		semconv.GenAIRequestStream(true),
	}
	if o.MaxTokens > 0 {
		attrs = append(attrs, semconv.GenAIRequestMaxTokens(o.MaxTokens))
	}
	if u, err := url.Parse(o.URL); err == nil {
		attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
		if p, err := strconv.Atoi(u.Port()); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	}
	t := &tapTransport{next: base, api: api, prop: propagation.TraceContext{},
		spanName: ep.Operation + " " + o.Model, attrs: attrs, stop: stop, abort: abort, table: table,
		scenario: o.Scenario}
	if o.TracerProvider != nil {
		t.tracer = o.TracerProvider.Tracer("github.com/tokentrace/tokentrace/internal/loadgen")
	} else {
		t.tracer = idTracer{noop.NewTracerProvider().Tracer("")}
	}
	return t
}

// idTracer records nothing but gives every request fresh trace and span
// ids, so traceparent is sent and the proxy's spans can be joined to the
// load tester's records by trace id.
type idTracer struct{ trace.Tracer }

func (t idTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	var tid trace.TraceID
	var sid trace.SpanID
	binary.LittleEndian.PutUint64(tid[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(tid[8:], rand.Uint64())
	binary.LittleEndian.PutUint64(sid[:], rand.Uint64()|1)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return t.Tracer.Start(trace.ContextWithSpanContext(ctx, sc), name, opts...)
}

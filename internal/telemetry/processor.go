package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BatchProcessor is a span processor that never blocks the code ending a
// span: ended spans go into a bounded queue and, when the queue is full
// because the collector is down or slow, they are dropped and counted.
// One goroutine exports batches; Shutdown stops it. It sleeps until a
// batch is queued or the batch timeout passes, so ending a span does not
// wake it (a proxy ends two spans per request: two goroutine wake-ups each,
// most of them a futex call, on a machine whose cores the proxy shares).
type BatchProcessor struct {
	exporter      sdktrace.SpanExporter
	queue         chan sdktrace.ReadOnlySpan
	full          chan struct{} // a batch is queued
	batchSize     int
	batchTimeout  time.Duration
	exportTimeout time.Duration

	flushReq chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	queued   atomic.Uint64 // accepted into the queue
	dropped  atomic.Uint64 // refused because the queue was full, or failed to export
	exported atomic.Uint64
}

// BatchConfig sizes a BatchProcessor; zero fields take the defaults.
type BatchConfig struct {
	// QueueSize bounds the spans waiting for export (default 2048).
	QueueSize int
	// BatchSize is the most spans one export carries (default 512).
	BatchSize int
	// BatchTimeout is the longest a span waits before its batch is sent (default 1 s).
	BatchTimeout time.Duration
	// ExportTimeout bounds one export call (default 10 s).
	ExportTimeout time.Duration
}

func (c *BatchConfig) setDefaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 2048
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 512
	}
	if c.BatchSize > c.QueueSize {
		c.BatchSize = c.QueueSize
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = time.Second
	}
	if c.ExportTimeout <= 0 {
		c.ExportTimeout = 10 * time.Second
	}
}

// NewBatchProcessor starts a BatchProcessor exporting to exp.
func NewBatchProcessor(exp sdktrace.SpanExporter, cfg BatchConfig) *BatchProcessor {
	cfg.setDefaults()
	p := &BatchProcessor{
		exporter:      exp,
		queue:         make(chan sdktrace.ReadOnlySpan, cfg.QueueSize),
		full:          make(chan struct{}, 1),
		batchSize:     cfg.BatchSize,
		batchTimeout:  cfg.BatchTimeout,
		exportTimeout: cfg.ExportTimeout,
		flushReq:      make(chan chan struct{}),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	go p.run()
	return p
}

// OnStart does nothing.
func (p *BatchProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span, or drops it when the queue is full.
func (p *BatchProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	select {
	case <-p.stop:
		p.dropped.Add(1)
		return
	default:
	}
	select {
	case p.queue <- s:
		p.queued.Add(1)
		if len(p.queue) >= p.batchSize {
			select {
			case p.full <- struct{}{}:
			default: // the exporting goroutine is told already
			}
		}
	default:
		p.dropped.Add(1)
	}
}

// Dropped is the number of spans lost: refused by a full queue or failed to export.
func (p *BatchProcessor) Dropped() uint64 { return p.dropped.Load() }

// Exported is the number of spans the exporter accepted.
func (p *BatchProcessor) Exported() uint64 { return p.exported.Load() }

func (p *BatchProcessor) run() {
	defer close(p.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, p.batchSize)
	timer := time.NewTimer(p.batchTimeout)
	defer timer.Stop()
	send := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.exportTimeout)
		err := p.exporter.ExportSpans(ctx, batch)
		cancel()
		if err != nil {
			p.dropped.Add(uint64(len(batch)))
		} else {
			p.exported.Add(uint64(len(batch)))
		}
		clear(batch)
		batch = batch[:0]
	}
	// sendFull sends a batch for every batchSize spans queued and leaves
	// the rest in the queue, where OnEnd counts them towards the next one.
	// Only this goroutine receives from the queue, so the receives do not
	// block.
	sendFull := func() {
		for len(p.queue) >= p.batchSize {
			for range p.batchSize {
				batch = append(batch, <-p.queue)
			}
			send()
		}
	}
	// sendAll sends every queued span, the last batch partial.
	sendAll := func() {
		for {
			select {
			case s := <-p.queue:
				batch = append(batch, s)
				if len(batch) == p.batchSize {
					send()
				}
			default:
				send()
				return
			}
		}
	}
	for {
		select {
		case <-p.full:
			sendFull()
		case <-timer.C:
			sendAll()
			timer.Reset(p.batchTimeout)
		case ack := <-p.flushReq:
			sendAll()
			close(ack)
		case <-p.stop:
			sendAll()
			return
		}
	}
}

// ForceFlush exports what is queued, waiting at most until ctx ends.
func (p *BatchProcessor) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case p.flushReq <- ack:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush spans: %w", ctx.Err())
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush spans: %w", ctx.Err())
	}
}

// Shutdown exports what is queued and shuts the exporter down, waiting at
// most until ctx ends. It is safe to call more than once.
func (p *BatchProcessor) Shutdown(ctx context.Context) error {
	first := false
	p.stopOnce.Do(func() { close(p.stop); first = true })
	var err error
	select {
	case <-p.done:
	case <-ctx.Done():
		err = fmt.Errorf("drain spans: %w", ctx.Err())
	}
	if first {
		if e := p.exporter.Shutdown(ctx); e != nil {
			err = errors.Join(err, fmt.Errorf("shut down span exporter: %w", e))
		}
	}
	return err
}

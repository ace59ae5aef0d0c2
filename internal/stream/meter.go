package stream

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Error types: the values of error.type. They are few and fixed (an HTTP
// status adds its code, "503"), so they are safe as metric labels.
const (
	ErrTransport  = "transport"         // the connection failed
	ErrTimeout    = "timeout"           // a deadline passed
	ErrCanceled   = "canceled"          // the client went away
	ErrInStream   = "stream_error"      // an error object arrived inside the stream
	ErrMalformed  = "malformed_stream"  // a chunk that is not JSON
	ErrIncomplete = "incomplete_stream" // the stream ended without its final marker
)

// maxErrorMessage bounds the error text a Measurement keeps.
const maxErrorMessage = 512

// ChunkEvent is one output-carrying chunk, as it arrives.
type ChunkEvent struct {
	Index int           // among output chunks, from 0
	At    time.Time     // when the bytes that completed it arrived
	Gap   time.Duration // since the previous output chunk; 0 for the first
	Text  string        // generated and reasoning text it carries
	// Reasoning: the chunk carries reasoning only, not yet the visible
	// answer (docs/METRICS.md, "first content").
	Reasoning bool
}

// Config sets up a Meter.
type Config struct {
	// API is the protocol of the response (decides what "[DONE]" means).
	API API
	// Start is t_start: when the request began (see docs/METRICS.md).
	Start time.Time
	// Clock reads the time; time.Now when nil. Tests pass a fake.
	Clock func() time.Time
	// OnChunk, when set, is called for every output-carrying chunk.
	OnChunk func(ChunkEvent)
	// NoChunkText leaves ChunkEvent.Text empty: set it when OnChunk does not
	// read the text, to save copying it out of every chunk.
	NoChunkText bool
	// MaxChunk bounds one chunk's size; DefaultMaxChunk when 0.
	MaxChunk int
}

// Meter taps one response body as it streams and measures it. Feed it the
// status with Response, every body byte with Write, and call Finish once.
// A Meter is not safe for concurrent use.
type Meter struct {
	cfg           Config
	framer        framer
	framed        bool // Response has set up the framer
	m             Measurement
	malformedSeen bool
	inStreamErr   string
	finished      bool
	now           time.Time // the time of the Write being read
	// gaps holds the first Gaps, in the Meter itself: among hundreds of
	// streams, what one chunk touches is out of the CPU's caches and TLB
	// (each system call empties the TLB on a kernel with page-table
	// isolation and no PCID), so every separate object costs a miss.
	gaps [32]time.Duration
	// shape is the last chunk's, for reading the next one by comparing
	// bytes (shape.go).
	shape shape
}

// scanners hold the chunk scanners, which keep nothing from one chunk to
// the next but their buffers. A Meter borrows one per chunk instead of
// keeping its own: among hundreds of streams, each stream's own scanner (a
// kilobyte, most of it cleared per chunk) would be out of the CPU's caches
// at every chunk, while the one a goroutine just returned to its P is in
// them.
var scanners = sync.Pool{New: func() any { return new(chunkScanner) }}

// maxPooledBuffer bounds the buffers a pooled scanner keeps: one outsized
// chunk's do not stay pinned.
const maxPooledBuffer = 64 << 10

func borrowScanner() *chunkScanner { return scanners.Get().(*chunkScanner) }

func returnScanner(sc *chunkScanner) {
	if cap(sc.scratch) > maxPooledBuffer || cap(sc.text) > maxPooledBuffer || cap(sc.ev.keyBuf) > maxPooledBuffer {
		return
	}
	scanners.Put(sc)
}

// NewMeter returns a Meter for one response.
func NewMeter(cfg Config) *Meter {
	mt := new(Meter)
	mt.Init(cfg)
	return mt
}

// Init sets up a zero Meter in place, as NewMeter does: for a Meter held
// inside another object, which then needs no allocation of its own.
func (mt *Meter) Init(cfg Config) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Start.IsZero() {
		cfg.Start = cfg.Clock()
	}
	mt.cfg = cfg
	mt.m = Measurement{API: cfg.API, Start: cfg.Start}
}

// Response records the response's status and framing (from Content-Type).
func (mt *Meter) Response(status int, contentType string) {
	mt.m.Status = status
	mt.m.Format = FormatOf(contentType)
	mt.framer.init(mt.m.Format, mt.cfg.MaxChunk)
	mt.framed = true
}

// Write reads body bytes as they arrive; it never fails, so it can sit in
// an io.TeeReader.
func (mt *Meter) Write(p []byte) (int, error) {
	if len(p) == 0 || mt.finished {
		return len(p), nil
	}
	mt.WriteAt(p, mt.cfg.Clock())
	return len(p), nil
}

// Now reads the Meter's clock: the arrival time to give WriteAt.
func (mt *Meter) Now() time.Time { return mt.cfg.Clock() }

// WriteAt reads body bytes that arrived at the given time (from Now),
// for a reader that passes them on before it measures them.
func (mt *Meter) WriteAt(p []byte, at time.Time) {
	if len(p) == 0 || mt.finished {
		return
	}
	if !mt.framed {
		mt.Response(200, "")
	}
	mt.now = at
	if mt.m.FirstByte.IsZero() {
		mt.m.FirstByte = mt.now
	}
	mt.framer.write(p, mt.chunk)
}

func (mt *Meter) chunk(payload []byte) {
	m := &mt.m
	wantText := mt.cfg.OnChunk != nil && !mt.cfg.NoChunkText
	var ci chunkInfo
	if !wantText && mt.shape.match(payload) {
		ci = mt.shape.ci
	} else {
		sc := borrowScanner()
		ci = sc.inspect(mt.cfg.API, payload, m.Model, m.FinishReason, wantText)
		if !wantText {
			mt.shape.learn(sc, payload, ci)
		}
		returnScanner(sc)
	}
	switch {
	case ci.malformed:
		mt.malformedSeen = true
		return
	case ci.isErr:
		if mt.inStreamErr == "" {
			mt.inStreamErr = ci.errMsg
			if mt.inStreamErr == "" {
				mt.inStreamErr = "error object in stream"
			}
		}
		return
	}
	if ci.model != "" {
		m.Model = ci.model
	}
	if ci.output {
		ev := ChunkEvent{Index: m.OutputChunks, At: mt.now, Text: ci.text, Reasoning: !ci.content}
		if m.OutputChunks == 0 {
			m.FirstToken = mt.now
			m.reasoningFirst = !ci.content
		} else {
			ev.Gap = mt.now.Sub(m.LastToken)
			if m.Gaps == nil {
				m.Gaps = mt.gaps[:0]
			}
			m.Gaps = append(m.Gaps, ev.Gap)
		}
		m.LastToken = mt.now
		m.OutputChunks++
		if ci.content && m.FirstContent.IsZero() {
			m.FirstContent = mt.now
		}
		if mt.cfg.OnChunk != nil {
			mt.cfg.OnChunk(ev)
		}
	}
	if ci.finishReason != "" {
		m.FinishReason = ci.finishReason
	}
	if ci.hasUsage {
		m.InputTokens, m.OutputTokens, m.serverCounts = ci.inputTokens, ci.outputTokens, true
	}
	if ci.hasInput {
		m.InputTokens = ci.inputTokens
	}
	if ci.hasOutput {
		m.OutputTokens, m.serverCounts = ci.outputTokens, true
	}
	if ci.hasReasoningTokens {
		m.ReasoningTokens, m.ReasoningTokensReported = ci.reasoningTokens, true
	}
	if ci.hasCachedTokens {
		m.CachedInputTokens, m.CachedInputTokensReported = ci.cachedTokens, true
	}
	if ci.ollama != nil {
		m.Ollama = ci.ollama
	}
	if ci.final {
		m.Complete = true
	}
}

// Finish ends the measurement. err is how reading the body ended: nil or
// io.EOF for a clean end, else the transport error. Later calls return the
// same Measurement.
func (mt *Meter) Finish(err error) *Measurement {
	m := &mt.m
	if mt.finished {
		return m
	}
	mt.finished = true
	m.End = mt.cfg.Clock()
	if !mt.framed {
		mt.Response(0, "")
	}
	if err == nil || errors.Is(err, io.EOF) {
		mt.now = m.End
		mt.framer.close(mt.chunk)
		if mt.m.Format == FormatJSON && m.Status > 0 && m.Status < 400 && !mt.malformedSeen && mt.inStreamErr == "" {
			m.Complete = true
		}
	}
	if !m.serverCounts {
		m.OutputTokens, m.TokensEstimated = m.OutputChunks, true
	}
	switch {
	case m.Status >= 400:
		m.setError(strconv.Itoa(m.Status), mt.inStreamErr)
	case err != nil && !errors.Is(err, io.EOF):
		m.setError(ClassifyError(err), err.Error())
	case mt.inStreamErr != "":
		m.setError(ErrInStream, mt.inStreamErr)
	case mt.malformedSeen:
		m.setError(ErrMalformed, "a chunk of the stream is not JSON")
	case !m.Complete:
		m.setError(ErrIncomplete, "the stream ended without its final marker")
	}
	return m
}

// ClassifyError names a transport error with one of the fixed error types.
func ClassifyError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return ErrCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	default:
		return ErrTransport
	}
}

// Measurement is one request measured per docs/METRICS.md.
type Measurement struct {
	API    API
	Format Format
	Status int // 0 when no response arrived

	Start      time.Time // t_start
	FirstByte  time.Time // t_first_byte; zero when no body byte arrived
	FirstToken time.Time // t_first_token; zero when no output arrived
	// FirstContent is t_first_content: the first chunk of the visible answer
	// (not reasoning only); zero when none arrived.
	FirstContent time.Time
	LastToken    time.Time // t_last_token
	End          time.Time // t_end

	OutputChunks int             // output-carrying chunks
	Gaps         []time.Duration // every t_k − t_(k−1), k ≥ 2

	InputTokens     int
	OutputTokens    int
	TokensEstimated bool // the server gave no counts: OutputTokens counts chunks
	serverCounts    bool
	// ReasoningTokens are the output tokens the server says were spent
	// reasoning (Responses' output_tokens_details.reasoning_tokens), when
	// ReasoningTokensReported.
	ReasoningTokens         int
	ReasoningTokensReported bool
	// CachedInputTokens are the input tokens the server says it read from a
	// prompt cache, when CachedInputTokensReported.
	CachedInputTokens         int
	CachedInputTokensReported bool
	reasoningFirst            bool // the first output chunk was reasoning only

	FinishReason string
	Model        string         // the response's model
	Ollama       *OllamaTimings // Ollama's final-chunk timings, when sent
	Complete     bool           // the final marker arrived

	ErrorType string // "" when the request succeeded
	Error     string // what went wrong, bounded
}

func (m *Measurement) setError(typ, msg string) {
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
	}
	m.ErrorType, m.Error = typ, msg
}

// OK reports whether the request succeeded.
func (m *Measurement) OK() bool { return m.ErrorType == "" }

// TTFT is t_first_token − t_start; false when no output arrived.
func (m *Measurement) TTFT() (time.Duration, bool) {
	if m.FirstToken.IsZero() {
		return 0, false
	}
	return m.FirstToken.Sub(m.Start), true
}

// ThinkingTime is t_first_content − t_first_token: how long the model
// reasoned before its visible answer began. False unless the first output
// was reasoning and a visible answer followed.
func (m *Measurement) ThinkingTime() (time.Duration, bool) {
	if !m.reasoningFirst || m.FirstContent.IsZero() {
		return 0, false
	}
	return m.FirstContent.Sub(m.FirstToken), true
}

// E2E is t_end − t_start.
func (m *Measurement) E2E() time.Duration { return m.End.Sub(m.Start) }

// TPOT is (t_last_token − t_first_token) / (output_tokens − 1); false when
// fewer than two output tokens arrived.
func (m *Measurement) TPOT() (time.Duration, bool) {
	if m.OutputTokens < 2 || m.OutputChunks < 2 {
		return 0, false
	}
	return m.LastToken.Sub(m.FirstToken) / time.Duration(m.OutputTokens-1), true
}

// DecodeSpeed is the per-request decode speed, 1/TPOT, in tokens per second.
func (m *Measurement) DecodeSpeed() float64 {
	tpot, ok := m.TPOT()
	if !ok || tpot <= 0 {
		return 0
	}
	return float64(time.Second) / float64(tpot)
}

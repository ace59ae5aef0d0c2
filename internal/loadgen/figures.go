package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// FiguresHeader is the Result header that carries a request's Figures as
// one line of JSON. vegeta's encoders (gob, JSON, CSV) keep headers, so the
// figures travel through `attack | tee | report` and through the real
// vegeta CLI unchanged.
const FiguresHeader = "X-Tokentrace-Figures"

// figuresVersion is bumped when the encoding changes incompatibly.
const figuresVersion = 1

// ErrNoFigures means a Result carries no tokentrace figures (it came from
// plain vegeta, or the request was never sent).
var ErrNoFigures = errors.New("result carries no tokentrace figures")

// Figures are what the load tester measured of one request, per
// docs/METRICS.md. Offsets are durations since Start (t_start).
type Figures struct {
	API    string    // the wire API's name: "ollama", "openai", "responses" or "anthropic"
	Status int       // HTTP status; 0 when no response arrived
	Start  time.Time // t_start: just before the request was written

	FirstByte  time.Duration // t_first_byte − t_start; 0 when no body byte arrived
	FirstToken time.Duration // t_first_token − t_start; valid when OutputChunks > 0
	// FirstContent is t_first_content − t_start when reasoning came before
	// the visible answer (so ThinkingTime is defined); 0 otherwise.
	FirstContent time.Duration
	LastToken    time.Duration // t_last_token − t_start
	End          time.Duration // t_end − t_start: the E2E latency

	OutputChunks int             // output-carrying chunks
	Gaps         []time.Duration // inter-chunk latencies, microsecond resolution

	InputTokens     int
	OutputTokens    int
	TokensEstimated bool // the server sent no counts: OutputTokens counts chunks
	ReasoningTokens int  // of OutputTokens, spent reasoning; 0 unless the server said

	FinishReason string
	Model        string
	Ollama       *stream.OllamaTimings // Ollama's final timings, when sent

	ErrorType string // "" when the request succeeded
	Error     string
	TraceID   string // of the request's span, to join with the proxy's
	BytesIn   int64  // body bytes read

	// Late is, in an open loop, how long after its scheduled arrival the
	// request was sent (a concurrency cap held it back); 0 when on time.
	Late time.Duration
}

// OK reports whether the request succeeded.
func (f *Figures) OK() bool { return f.ErrorType == "" }

// TTFT is t_first_token − t_start; false when no output arrived.
func (f *Figures) TTFT() (time.Duration, bool) { return f.FirstToken, f.OutputChunks > 0 }

// ThinkingTime is t_first_content − t_first_token, for a request that
// reasoned before it answered; false otherwise.
func (f *Figures) ThinkingTime() (time.Duration, bool) {
	if f.FirstContent <= 0 || f.OutputChunks == 0 {
		return 0, false
	}
	return f.FirstContent - f.FirstToken, true
}

// TPOT is (t_last_token − t_first_token)/(output_tokens − 1); false with
// fewer than two output tokens.
func (f *Figures) TPOT() (time.Duration, bool) {
	if f.OutputTokens < 2 || f.OutputChunks < 2 {
		return 0, false
	}
	return (f.LastToken - f.FirstToken) / time.Duration(f.OutputTokens-1), true
}

// DecodeSpeed is 1/TPOT in tokens per second; 0 when TPOT is undefined.
func (f *Figures) DecodeSpeed() float64 {
	tpot, ok := f.TPOT()
	if !ok || tpot <= 0 {
		return 0
	}
	return float64(time.Second) / float64(tpot)
}

// figuresFrom turns a stream measurement into Figures.
func figuresFrom(m *stream.Measurement, traceID string, bytesIn int64) Figures {
	f := Figures{
		API: m.API.String(), Status: m.Status, Start: m.Start,
		End:          m.End.Sub(m.Start),
		OutputChunks: m.OutputChunks,
		InputTokens:  m.InputTokens, OutputTokens: m.OutputTokens, TokensEstimated: m.TokensEstimated,
		FinishReason: m.FinishReason, Model: m.Model, Ollama: m.Ollama,
		ErrorType: m.ErrorType, Error: m.Error, TraceID: traceID, BytesIn: bytesIn,
	}
	if !m.FirstByte.IsZero() {
		f.FirstByte = m.FirstByte.Sub(m.Start)
	}
	if m.OutputChunks > 0 {
		f.FirstToken, f.LastToken = m.FirstToken.Sub(m.Start), m.LastToken.Sub(m.Start)
	}
	if _, ok := m.ThinkingTime(); ok {
		f.FirstContent = m.FirstContent.Sub(m.Start)
	}
	if m.ReasoningTokensReported {
		f.ReasoningTokens = m.ReasoningTokens
	}
	if len(m.Gaps) > 0 {
		f.Gaps = make([]time.Duration, len(m.Gaps))
		for i, g := range m.Gaps {
			f.Gaps[i] = g.Round(time.Microsecond)
		}
	}
	return f
}

// wireFigures is the JSON form: nanoseconds, gaps in microseconds.
type wireFigures struct {
	V               int                   `json:"v"`
	API             string                `json:"api"`
	Status          int                   `json:"status,omitempty"`
	Start           int64                 `json:"start_unix_ns"`
	FirstByte       int64                 `json:"first_byte_ns,omitempty"`
	FirstToken      int64                 `json:"first_token_ns,omitempty"`
	FirstContent    int64                 `json:"first_content_ns,omitempty"`
	LastToken       int64                 `json:"last_token_ns,omitempty"`
	End             int64                 `json:"end_ns"`
	OutputChunks    int                   `json:"chunks,omitempty"`
	GapsUS          []int64               `json:"gaps_us,omitempty"`
	InputTokens     int                   `json:"input_tokens,omitempty"`
	OutputTokens    int                   `json:"output_tokens,omitempty"`
	TokensEstimated bool                  `json:"tokens_estimated,omitempty"`
	ReasoningTokens int                   `json:"reasoning_tokens,omitempty"`
	FinishReason    string                `json:"finish_reason,omitempty"`
	Model           string                `json:"model,omitempty"`
	Ollama          *stream.OllamaTimings `json:"ollama,omitempty"`
	ErrorType       string                `json:"error_type,omitempty"`
	Error           string                `json:"error,omitempty"`
	TraceID         string                `json:"trace_id,omitempty"`
	BytesIn         int64                 `json:"bytes_in,omitempty"`
	Late            int64                 `json:"late_ns,omitempty"`
}

// Encode writes the figures into h (FiguresHeader).
func (f *Figures) Encode(h http.Header) error {
	w := wireFigures{V: figuresVersion, API: f.API, Status: f.Status, Start: f.Start.UnixNano(),
		FirstByte: int64(f.FirstByte), FirstToken: int64(f.FirstToken), FirstContent: int64(f.FirstContent),
		LastToken: int64(f.LastToken), End: int64(f.End), OutputChunks: f.OutputChunks,
		InputTokens: f.InputTokens, OutputTokens: f.OutputTokens, TokensEstimated: f.TokensEstimated,
		ReasoningTokens: f.ReasoningTokens,
		FinishReason:    f.FinishReason, Model: f.Model, Ollama: f.Ollama,
		ErrorType: f.ErrorType, Error: f.Error, TraceID: f.TraceID, BytesIn: f.BytesIn, Late: int64(f.Late)}
	if len(f.Gaps) > 0 {
		w.GapsUS = make([]int64, len(f.Gaps))
		for i, g := range f.Gaps {
			w.GapsUS[i] = int64(g.Round(time.Microsecond) / time.Microsecond)
		}
	}
	b, err := json.Marshal(&w)
	if err != nil {
		return fmt.Errorf("encode figures: %w", err)
	}
	h.Set(FiguresHeader, string(b))
	return nil
}

// Decode reads the Figures a Result carries; ErrNoFigures when it has
// none, another error when they are malformed.
func Decode(r *vegeta.Result) (Figures, error) {
	if r == nil || r.Headers == nil {
		return Figures{}, ErrNoFigures
	}
	v := r.Headers.Get(FiguresHeader)
	if v == "" {
		return Figures{}, ErrNoFigures
	}
	return parseFigures([]byte(v))
}

func parseFigures(b []byte) (Figures, error) {
	var w wireFigures
	if err := json.Unmarshal(b, &w); err != nil {
		return Figures{}, fmt.Errorf("decode %s: %w", FiguresHeader, err)
	}
	if w.V != figuresVersion {
		return Figures{}, fmt.Errorf("decode %s: version %d, want %d", FiguresHeader, w.V, figuresVersion)
	}
	if w.OutputChunks < 0 || w.InputTokens < 0 || w.OutputTokens < 0 || w.ReasoningTokens < 0 || w.End < 0 || w.FirstContent < 0 || w.Late < 0 {
		return Figures{}, fmt.Errorf("decode %s: negative count or duration", FiguresHeader)
	}
	f := Figures{API: w.API, Status: w.Status, Start: time.Unix(0, w.Start),
		FirstByte: time.Duration(w.FirstByte), FirstToken: time.Duration(w.FirstToken),
		FirstContent: time.Duration(w.FirstContent),
		LastToken:    time.Duration(w.LastToken), End: time.Duration(w.End), OutputChunks: w.OutputChunks,
		InputTokens: w.InputTokens, OutputTokens: w.OutputTokens, TokensEstimated: w.TokensEstimated,
		ReasoningTokens: w.ReasoningTokens,
		FinishReason:    w.FinishReason, Model: w.Model, Ollama: w.Ollama,
		ErrorType: w.ErrorType, Error: w.Error, TraceID: w.TraceID, BytesIn: w.BytesIn, Late: time.Duration(w.Late)}
	if len(w.GapsUS) > 0 {
		f.Gaps = make([]time.Duration, len(w.GapsUS))
		for i, g := range w.GapsUS {
			f.Gaps[i] = time.Duration(g) * time.Microsecond
		}
	}
	return f, nil
}

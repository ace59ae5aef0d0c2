package simulator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// generation is one inference request, whatever its API.
type generation struct {
	start    time.Time // request received (Ollama's checkpointStart)
	model    string    // the model as the request named it; responses echo it
	prompt   string    // the prompt after the chat template
	userText string    // the last user message: it decides the natural length
	limit    int       // num_predict / max_tokens; 0 for none
	stream   bool
	wire     wireFormat
	// keepAlive is the request's keep_alive; nil when it gave none.
	keepAlive *time.Duration
	// withContext adds the prompt and reply tokens to the last chunk
	// (/api/generate's deprecated "context").
	withContext bool
}

// finalInfo is what the last chunk (or the whole body) reports.
type finalInfo struct {
	model        string
	text         string // the whole reply (non-streaming bodies)
	thinking     string // its reasoning, when the wire keeps it apart
	reason       string
	promptTokens int
	evalCount    int
	total        time.Duration
	load         time.Duration
	promptEval   time.Duration
	eval         time.Duration
	context      []int // /api/generate: prompt and reply tokens
}

// finish sends the last chunk of a stream, or the whole body.
func (s *Server) finish(rs *responder, g generation, d *doneInfo, prompt []uint32, out []int, text, thinking string, load time.Duration) {
	f := finalInfo{model: g.model, text: text, thinking: thinking, reason: d.reason, promptTokens: d.promptTokens,
		evalCount: d.evalCount, load: load, promptEval: d.promptEval}
	if g.withContext {
		f.context = make([]int, 0, len(prompt)+len(out))
		for _, id := range prompt {
			f.context = append(f.context, int(id))
		}
		f.context = append(f.context, out...)
	}
	now := time.Now()
	f.eval, f.total = now.Sub(d.firstSample), now.Sub(g.start)
	if !g.stream {
		rs.whole(http.StatusOK, g.wire.contentType(false), g.wire.whole(f), len(out))
		return
	}
	if len(out) == 0 {
		rs.w.Header().Set("Content-Type", g.wire.contentType(true))
	}
	rs.send(true, g.wire.final(f)...) //nolint:errcheck // the client went away
}

// wireFormat renders one API's responses.
type wireFormat interface {
	contentType(stream bool) string
	token(model, text string) []byte
	final(f finalInfo) []chunk
	whole(f finalInfo) []byte
	fail(rs *responder, status int, msg string)
}

// thinkingWire is a wire that can send reasoning: Config.ThinkingTokens
// of every reply go out through thinkingToken instead of token.
type thinkingWire interface {
	thinkingToken(model, text string) []byte
}

// chatTemplate renders messages as Qwen's ChatML template does, adding the
// profile's system prompt when the messages have none.
func (s *Server) chatTemplate(msgs []message) string {
	var b strings.Builder
	if s.prof.SystemPrompt != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		b.WriteString("<|im_start|>system\n" + s.prof.SystemPrompt + "<|im_end|>\n")
	}
	for _, m := range msgs {
		b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	b.WriteString("<|im_start|>assistant\n")
	return b.String()
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func lastUserText(msgs []message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	if len(msgs) > 0 {
		return msgs[len(msgs)-1].Content
	}
	return ""
}

// generate runs g: load, queue, slot, stream. It writes the whole response.
func (s *Server) generate(rs *responder, r *http.Request, g generation) {
	ctx := r.Context()
	if err := s.acquire(ctx); err != nil {
		s.failRun(rs, g, err)
		return
	}
	defer s.release(g.keepAlive)
	loaded := time.Now()
	if err := s.sleep(ctx, s.prof.RequestOverhead); err != nil {
		s.failRun(rs, g, err)
		return
	}
	ids := tokenize(g.prompt, s.prof.VocabSize)
	if keep := s.cfg.ContextLength - 1; len(ids) > keep {
		ids = ids[len(ids)-keep:] // Ollama truncates a prompt longer than the context
	}
	seed := promptSeed(g.prompt)
	natural, limit := naturalLength(g.userText, seed), g.limit
	if s.cfg.NaturalStop && limit > natural {
		limit = 0
	}
	j := newJob(ids, limit, natural, newTextGen(seed, s.prof.VocabSize))
	if err := s.eng.submit(j); err != nil {
		s.failRun(rs, g, err)
		return
	}
	var text, thinking strings.Builder
	var out []int
	for {
		select {
		case <-ctx.Done():
			s.eng.cancel(j)
			return
		case <-j.box.signal:
		}
		for _, ev := range j.box.take() {
			switch {
			case ev.err != nil:
				if len(out) == 0 || !g.stream {
					s.failRun(rs, g, ev.err)
				}
				return
			case ev.done != nil:
				s.finish(rs, g, ev.done, ids, out, text.String(), thinking.String(), loaded.Sub(g.start))
				return
			default:
				out = append(out, int(tokenID(ev.text, s.prof.VocabSize)))
				tw, reasoning := g.wire.(thinkingWire)
				reasoning = reasoning && len(out) <= s.cfg.ThinkingTokens
				if !g.stream {
					if reasoning {
						thinking.WriteString(ev.text)
					} else {
						text.WriteString(ev.text)
					}
					continue
				}
				if len(out) == 1 {
					rs.w.Header().Set("Content-Type", g.wire.contentType(true))
				}
				var data []byte
				if reasoning {
					data = tw.thinkingToken(g.model, ev.text)
				} else {
					data = g.wire.token(g.model, ev.text) // wires keep state: call only one
				}
				if err := rs.send(false, chunk{data: data, tokens: 1}); err != nil {
					s.eng.cancel(j)
					return
				}
			}
		}
	}
}

// failRun answers a request that could not run, as Ollama's
// handleScheduleError does.
func (s *Server) failRun(rs *responder, g generation, err error) {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		g.wire.fail(rs, 499, "request canceled")
	case errors.Is(err, errQueueFull):
		g.wire.fail(rs, http.StatusServiceUnavailable, err.Error())
	default:
		g.wire.fail(rs, http.StatusInternalServerError, err.Error())
	}
}

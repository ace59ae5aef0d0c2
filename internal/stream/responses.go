package stream

// The OpenAI Responses API (POST /v1/responses): SSE events named by their
// "type", or one response object when not streamed. docs/METRICS.md says
// which events carry output and where usage comes from.

// Output-carrying events of the Responses API, and whether they are
// reasoning (not yet the visible answer).
var responsesDeltas = map[string]bool{
	"response.output_text.delta":             false,
	"response.refusal.delta":                 false,
	"response.function_call_arguments.delta": false,
	"response.reasoning_text.delta":          true,
	"response.reasoning_summary_text.delta":  true,
}

// respObject is what a response object holds that inspect reads.
type respObject struct {
	model, status, incomplete, errMsg jstr
	hasErr                            bool
	usage                             usageCounts
	output                            textParts // text of the output items
	outputItems                       bool      // an output item with text, a refusal or arguments
}

// inspectResponses reads one Responses event, or a whole response.
func (sc *chunkScanner) inspectResponses(payload []byte, model, finish string, wantText bool) chunkInfo {
	var ci chunkInfo
	var typ, delta, message jstr
	var hasDelta bool
	var r respObject
	r.output = textParts{want: wantText, buf: sc.text[:0]}
	if !sc.begin(payload) {
		return chunkInfo{malformed: true}
	}
	sc.members(func(k []byte) {
		switch string(k) {
		case "type":
			typ = sc.optString()
		case "delta":
			if sc.peek() == '"' {
				delta, hasDelta = sc.str(), true
			} else {
				sc.skipValue()
			}
		case "message": // the error event's
			message = sc.optString()
		case "response": // a streamed event's; its output repeats the deltas
			sc.responseObject(&r)
		default:
			sc.responseMember(k, &r) // a whole (non-streamed) response
		}
	})
	sc.end()
	if sc.bad {
		return chunkInfo{malformed: true}
	}
	ci.model = sc.share(r.model, model)
	t := typ
	switch {
	case t.is("error"):
		ci.isErr = true
		ci.errMsg = sc.stringOf(message)
		if ci.errMsg == "" && r.hasErr {
			ci.errMsg = sc.stringOf(r.errMsg)
		}
		if ci.errMsg == "" {
			ci.errMsg = "error event in stream"
		}
		return ci
	case len(t.raw) == 0: // a whole response
		if r.hasErr || r.status.is("failed") {
			ci.isErr, ci.errMsg = true, sc.stringOf(r.errMsg)
			if ci.errMsg == "" {
				ci.errMsg = "response failed"
			}
			return ci
		}
		ci.output, ci.content = r.outputItems, r.outputItems
		ci.final = true
		sc.responseEnd(&ci, &r, finish)
		if wantText {
			ci.text = r.output.string(sc)
			sc.text = r.output.buf
		}
		return ci
	case t.is("response.completed"), t.is("response.incomplete"):
		ci.final, ci.done = true, true
		sc.responseEnd(&ci, &r, finish)
		return ci
	case t.is("response.failed"):
		ci.isErr = true
		ci.errMsg = sc.stringOf(r.errMsg)
		if ci.errMsg == "" {
			ci.errMsg = "response failed"
		}
		sc.responseEnd(&ci, &r, "")
		ci.final, ci.done = false, false
		return ci
	}
	if !hasDelta || len(delta.raw) == 0 {
		return ci
	}
	name := t.raw
	if t.esc {
		sc.scratch = appendUnquoted(sc.scratch[:0], t.raw)
		name = sc.scratch
	}
	reasoning, ok := responsesDeltas[string(name)]
	if !ok {
		return ci
	}
	ci.output, ci.content = true, !reasoning
	if wantText {
		sc.scratch = delta.appendTo(sc.scratch[:0])
		ci.text = string(sc.scratch)
	}
	return ci
}

// responseEnd takes the finish reason and usage of a finished response.
func (sc *chunkScanner) responseEnd(ci *chunkInfo, r *respObject, finish string) {
	reason := r.status
	if len(r.incomplete.raw) > 0 {
		reason = r.incomplete
	}
	ci.finishReason = sc.share(reason, finish)
	r.usage.take(ci)
}

// responseObject reads a response object.
func (sc *chunkScanner) responseObject(r *respObject) {
	sc.members(func(k []byte) { sc.responseMember(k, r) })
}

// responseMember reads one member of a response object.
func (sc *chunkScanner) responseMember(k []byte, r *respObject) {
	switch string(k) {
	case "model":
		r.model = sc.optString()
	case "status":
		r.status = sc.optString()
	case "incomplete_details":
		sc.members(func(k []byte) {
			if string(k) == "reason" {
				r.incomplete = sc.optString()
			} else {
				sc.skipValue()
			}
		})
	case "error":
		if sc.peek() == 'n' {
			sc.literal("null")
			return
		}
		r.hasErr = true
		sc.members(func(k []byte) {
			if string(k) == "message" {
				r.errMsg = sc.optString()
			} else {
				sc.skipValue()
			}
		})
	case "usage":
		sc.respUsage(&r.usage)
	case "output":
		sc.elements(func() { sc.outputItem(r) })
	default:
		sc.skipValue()
	}
}

func (sc *chunkScanner) respUsage(u *usageCounts) {
	if sc.peek() == 'n' {
		sc.literal("null")
		return
	}
	sc.members(func(k []byte) {
		switch string(k) {
		case "input_tokens":
			u.in, u.hasIn = sc.optInt()
		case "output_tokens":
			u.out, u.hasOut = sc.optInt()
		case "output_tokens_details":
			sc.members(func(k []byte) {
				if string(k) == "reasoning_tokens" {
					u.reasoning, u.hasReasoning = sc.optInt()
				} else {
					sc.skipValue()
				}
			})
		case "input_tokens_details":
			sc.members(func(k []byte) {
				if string(k) == "cached_tokens" {
					u.cached, u.hasCached = sc.optInt()
				} else {
					sc.skipValue()
				}
			})
		default:
			sc.skipValue()
		}
	})
}

// outputItem reads one item of a response's output: a message's text and
// refusals, a reasoning item's summary and content, a function call's
// arguments.
func (sc *chunkScanner) outputItem(r *respObject) {
	add := func(s jstr) {
		if len(s.raw) > 0 {
			r.outputItems = true
			r.output.add(s)
		}
	}
	parts := func() {
		sc.elements(func() {
			sc.members(func(k []byte) {
				switch string(k) {
				case "text", "refusal":
					add(sc.optString())
				default:
					sc.skipValue()
				}
			})
		})
	}
	sc.members(func(k []byte) {
		switch string(k) {
		case "content", "summary":
			parts()
		case "arguments":
			add(sc.optString())
		default:
			sc.skipValue()
		}
	})
}

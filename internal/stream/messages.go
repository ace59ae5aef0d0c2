package stream

// The Anthropic Messages API (POST /v1/messages): SSE events named by their
// "type", or one message object when not streamed. docs/METRICS.md says
// which events carry output and where usage comes from.

// usageCounts are the token counts a Messages or Responses usage object
// gave (Messages has no reasoning count).
type usageCounts struct {
	in, out, reasoning, cached  int64
	hasIn, hasOut, hasReasoning bool
	hasCached                   bool
}

// inspectMessages reads one Messages event, or a whole message.
func (sc *chunkScanner) inspectMessages(payload []byte, model, finish string, wantText bool) chunkInfo {
	var ci chunkInfo
	var typ, msgModel, stopReason, errMsg jstr
	var deltaType, deltaText jstr
	var hasErr bool
	var u usageCounts
	t := textParts{want: wantText, buf: sc.text[:0]}
	var content bool // a whole message's content blocks hold text, thinking or a tool call
	var visible bool // and some of it is not thinking
	if !sc.begin(payload) {
		return chunkInfo{malformed: true}
	}
	sc.members(func(k []byte) {
		switch string(k) {
		case "type":
			typ = sc.optString()
		case "model":
			msgModel = sc.optString()
		case "stop_reason": // a whole message's
			stopReason = sc.optString()
		case "usage":
			sc.msgUsage(&u)
		case "message": // message_start's
			sc.members(func(k []byte) {
				switch string(k) {
				case "model":
					msgModel = sc.optString()
				case "usage":
					sc.msgUsage(&u)
				default:
					sc.skipValue()
				}
			})
		case "delta":
			sc.members(func(k []byte) {
				switch string(k) {
				case "type":
					deltaType = sc.optString()
				case "text", "thinking", "partial_json":
					if s := sc.optString(); len(s.raw) > 0 {
						deltaText = s
					}
				case "stop_reason": // message_delta's
					stopReason = sc.optString()
				default:
					sc.skipValue()
				}
			})
		case "content": // a whole message's blocks
			sc.elements(func() {
				var blockType, text jstr
				var input bool
				sc.members(func(k []byte) {
					switch string(k) {
					case "type":
						blockType = sc.optString()
					case "text", "thinking":
						text = sc.optString()
					case "input":
						v := sc.skipValue()
						input = len(v) > 0 && string(v) != "null"
					default:
						sc.skipValue()
					}
				})
				if len(text.raw) > 0 || input {
					content = true
					visible = visible || !blockType.is("thinking")
					t.add(text)
				}
			})
		case "error":
			if sc.peek() == 'n' {
				sc.literal("null")
				return
			}
			hasErr = true
			sc.members(func(k []byte) {
				if string(k) == "message" {
					errMsg = sc.optString()
				} else {
					sc.skipValue()
				}
			})
		default:
			sc.skipValue()
		}
	})
	sc.end()
	if sc.bad {
		return chunkInfo{malformed: true}
	}
	ci.model = sc.share(msgModel, model)
	switch {
	case typ.is("error") || hasErr:
		ci.isErr = true
		ci.errMsg = sc.stringOf(errMsg)
		if ci.errMsg == "" {
			ci.errMsg = "error event in stream"
		}
		return ci
	case typ.is("message"): // a whole message
		ci.output, ci.content, ci.final = content, visible, true
		ci.finishReason = sc.share(stopReason, finish)
		u.take(&ci)
		if wantText {
			ci.text = t.string(sc)
			sc.text = t.buf
		}
		return ci
	case typ.is("message_start"):
		if u.hasIn {
			ci.inputTokens, ci.hasInput = int(u.in), true
		}
		if u.hasCached {
			ci.cachedTokens, ci.hasCachedTokens = int(u.cached), true
		}
		return ci
	case typ.is("message_delta"):
		if len(stopReason.raw) > 0 {
			ci.final = true
			ci.finishReason = sc.share(stopReason, finish)
		}
		u.take(&ci)
		return ci
	case typ.is("message_stop"):
		ci.final, ci.done = true, true
		return ci
	case typ.is("content_block_delta"):
	default:
		return ci
	}
	if len(deltaText.raw) == 0 {
		return ci
	}
	switch {
	case deltaType.is("text_delta"), deltaType.is("input_json_delta"):
		ci.output, ci.content = true, true
	case deltaType.is("thinking_delta"):
		ci.output = true
	default: // signature_delta and any delta not known to carry output
		return ci
	}
	sc.only = deltaText
	if wantText {
		sc.scratch = deltaText.appendTo(sc.scratch[:0])
		ci.text = string(sc.scratch)
	}
	return ci
}

// take puts the counts a usage object gave into ci.
func (u usageCounts) take(ci *chunkInfo) {
	if u.hasIn {
		ci.inputTokens, ci.hasInput = int(u.in), true
	}
	if u.hasOut {
		ci.outputTokens, ci.hasOutput = int(u.out), true
	}
	if u.hasReasoning {
		ci.reasoningTokens, ci.hasReasoningTokens = int(u.reasoning), true
	}
	if u.hasCached {
		ci.cachedTokens, ci.hasCachedTokens = int(u.cached), true
	}
}

func (sc *chunkScanner) msgUsage(u *usageCounts) {
	sc.members(func(k []byte) {
		switch string(k) {
		case "input_tokens":
			u.in, u.hasIn = sc.optInt()
		case "output_tokens":
			u.out, u.hasOut = sc.optInt()
		case "cache_read_input_tokens":
			u.cached, u.hasCached = sc.optInt()
		default:
			sc.skipValue()
		}
	})
}

package stream

import (
	"strconv"
	"unicode/utf8"
)

// field names a member of a chunk that inspect reads.
type field uint8

const (
	fUnknown field = iota
	fModel
	fMessage
	fContent
	fThinking
	fToolCalls
	fResponse
	fDone
	fDoneReason
	fTotalDuration
	fLoadDuration
	fPromptEvalCount
	fPromptEvalDuration
	fEvalCount
	fEvalDuration
	fChoices
	fDelta
	fReasoningContent
	fReasoning
	fText
	fFinishReason
	fUsage
	fPromptTokens
	fCompletionTokens
	fError
	fCompletionTokensDetails
	fPromptTokensDetails
	fReasoningTokens
	fCachedTokens
)

// maxFieldName is the longest name above, "completion_tokens_details".
const maxFieldName = 25

// fieldOf names a key as encoding/json matches it to a struct field of a
// chunk (see matchKey).
func (sc *chunkScanner) fieldOf(k jstr) field {
	return matchKey(k, &sc.scratch, exactField, fUnknown)
}

// matchKey names a key as encoding/json matches it to a struct field: an
// exact match first, else a case-insensitive one under Unicode simple
// folding. Every name exact knows is lower-case ASCII of at most
// maxFieldName bytes, so a key matches when it is the name with any letter
// in either case, s also as U+017F (ſ) and k also as U+212A (Kelvin sign):
// no other non-ASCII rune folds to ASCII. scratch holds an escaped key's
// value.
func matchKey[F comparable](k jstr, scratch *[]byte, exact func([]byte) F, unknown F) F {
	raw := k.raw
	if !k.esc {
		if f := exact(raw); f != unknown || !mayFold(raw) {
			return f
		}
	} else {
		*scratch = appendUnquoted((*scratch)[:0], raw)
		raw = *scratch
	}
	var buf [maxFieldName]byte
	n := 0
	for j := 0; j < len(raw); {
		c := raw[j]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[j:])
			switch r {
			case '\u017f':
				c = 's'
			case '\u212a':
				c = 'k'
			default:
				return unknown
			}
			j += size
		} else {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			j++
		}
		if n == len(buf) {
			return unknown
		}
		buf[n] = c
		n++
	}
	return exact(buf[:n])
}

// mayFold reports whether a key that matches no name exactly may match one
// folded: only if it holds an upper-case letter or a non-ASCII rune.
func mayFold(raw []byte) bool {
	for _, c := range raw {
		if 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// exactField names a key that is exactly a field's name.
func exactField(key []byte) field {
	switch string(key) {
	case "model":
		return fModel
	case "message":
		return fMessage
	case "content":
		return fContent
	case "thinking":
		return fThinking
	case "tool_calls":
		return fToolCalls
	case "response":
		return fResponse
	case "done":
		return fDone
	case "done_reason":
		return fDoneReason
	case "total_duration":
		return fTotalDuration
	case "load_duration":
		return fLoadDuration
	case "prompt_eval_count":
		return fPromptEvalCount
	case "prompt_eval_duration":
		return fPromptEvalDuration
	case "eval_count":
		return fEvalCount
	case "eval_duration":
		return fEvalDuration
	case "choices":
		return fChoices
	case "delta":
		return fDelta
	case "reasoning_content":
		return fReasoningContent
	case "reasoning":
		return fReasoning
	case "text":
		return fText
	case "finish_reason":
		return fFinishReason
	case "usage":
		return fUsage
	case "prompt_tokens":
		return fPromptTokens
	case "completion_tokens":
		return fCompletionTokens
	case "error":
		return fError
	case "completion_tokens_details":
		return fCompletionTokensDetails
	case "prompt_tokens_details":
		return fPromptTokensDetails
	case "reasoning_tokens":
		return fReasoningTokens
	case "cached_tokens":
		return fCachedTokens
	}
	return fUnknown
}

// The decoders below give each value the treatment encoding/json gives it
// for the Go type the reference struct (chunk_reference_test.go) declares.
// A value of the wrong type is an error there, so here it fails the chunk.

// stringInto reads a value for a string field: null leaves it as it was.
func (l *lexer) stringInto(dst *jstr) {
	switch l.peek() {
	case '"':
		*dst = l.str()
	case 'n':
		l.literal("null")
	default:
		l.fail()
	}
}

// stringPtrInto reads a value for a *string field: null makes it nil, which
// inspect reads as "".
func (l *lexer) stringPtrInto(dst *jstr) {
	switch l.peek() {
	case '"':
		*dst = l.str()
	case 'n':
		l.literal("null")
		*dst = jstr{}
	default:
		l.fail()
	}
}

// boolInto reads a value for a bool field: null leaves it as it was.
func (l *lexer) boolInto(dst *bool) {
	switch l.peek() {
	case 't':
		l.literal("true")
		*dst = true
	case 'f':
		l.literal("false")
		*dst = false
	case 'n':
		l.literal("null")
	default:
		l.fail()
	}
}

// intInto reads a value for an int or int64 field: null leaves it as it was.
func (l *lexer) intInto(dst *int64, bits int) {
	switch c := l.peek(); {
	case c == 'n':
		l.literal("null")
	case c == '-' || isDigit(c):
		*dst = l.int(bits)
	default:
		l.fail()
	}
}

// intPtrInto reads a value for an *int field: null makes it nil.
func (l *lexer) intPtrInto(dst *int64, set *bool) {
	if l.peek() == 'n' {
		l.literal("null")
		*dst, *set = 0, false
		return
	}
	l.intInto(dst, strconv.IntSize)
	*set = true
}

// object reports whether a value for a pointer-to-struct field is an object
// to merge into it; null resets it (*set = false) and reports false.
func (l *lexer) object(set *bool) bool {
	switch l.peek() {
	case '{':
		return true
	case 'n':
		l.literal("null")
		*set = false
	default:
		l.fail()
	}
	return false
}

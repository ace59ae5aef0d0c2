package stream

// The readers of the event APIs (Responses, Messages) walk a chunk with the
// same lexer as the union scanner, matching keys exactly as these APIs
// write them: their events carry a "type" that names what they hold, so
// nothing has to be read the way encoding/json would read it into a struct.

// eventScan is what an event reader keeps between chunks: nothing but the
// scanner's buffers; the chunk's own fields live in the reader's frame.
type eventScan struct {
	// keyBuf holds an escaped key's value while it is compared.
	keyBuf []byte
}

// begin starts reading payload; false when it is not a JSON object.
func (sc *chunkScanner) begin(payload []byte) bool {
	sc.lexer = lexer{data: payload, deep: sc.deep[:0]}
	if sc.peek() != '{' {
		sc.fail()
		return false
	}
	return true
}

// end checks that nothing but white space follows the chunk's object.
func (sc *chunkScanner) end() {
	sc.ws()
	if sc.i != len(sc.data) {
		sc.fail()
	}
}

// members reads the object at the lexer's position, calling member with
// every key (valid only during the call); member must read (or skip) the
// value. Any other value is skipped: a field of an unexpected type reads as
// absent, so only bytes that are not JSON make a chunk malformed.
func (sc *chunkScanner) members(member func(key []byte)) {
	if sc.peek() != '{' {
		sc.skipValue()
		return
	}
	if !sc.beginObject() {
		return
	}
	for {
		k := sc.key()
		if sc.bad {
			return
		}
		raw := k.raw
		if k.esc {
			sc.ev.keyBuf = appendUnquoted(sc.ev.keyBuf[:0], raw)
			raw = sc.ev.keyBuf
		}
		member(raw)
		if !sc.more('}') {
			return
		}
	}
}

// elements reads the array at the lexer's position, calling element for
// every element; any other value is skipped.
func (sc *chunkScanner) elements(element func()) {
	if sc.peek() != '[' {
		sc.skipValue()
		return
	}
	if !sc.beginArray() {
		return
	}
	for {
		element()
		if !sc.more(']') {
			return
		}
	}
}

// optString reads a string value, or null as the empty string; any other
// value is skipped and reads as empty, as these APIs' own clients read it.
func (sc *chunkScanner) optString() jstr {
	switch sc.peek() {
	case '"':
		return sc.str()
	default:
		sc.skipValue()
		return jstr{}
	}
}

// optInt reads an integer count; false for null or anything else.
func (sc *chunkScanner) optInt() (int64, bool) {
	c := sc.peek()
	if c == '-' || isDigit(c) {
		b := sc.num()
		if sc.bad {
			return 0, false
		}
		var n int64
		for _, d := range b {
			if !isDigit(d) || n > 1<<40 {
				return 0, false // negative, fractional, exponent or absurd: not a count
			}
			n = n*10 + int64(d-'0')
		}
		return n, true
	}
	sc.skipValue()
	return 0, false
}

// is reports whether a string value equals s.
func (s jstr) is(v string) bool {
	if !s.esc {
		return string(s.raw) == v
	}
	var buf [64]byte
	return string(appendUnquoted(buf[:0], s.raw)) == v
}

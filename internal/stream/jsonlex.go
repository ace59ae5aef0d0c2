package stream

// The chunk scanner's lexer. It accepts exactly the JSON that encoding/json
// accepts (RFC 8259, nesting up to encoding/json's 10000 levels) and reads
// values in place, without allocating. chunk_reference_test.go checks it
// against encoding/json.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// lexer reads one JSON text. After the first error, bad is set and every
// method returns at once; the caller treats the chunk as malformed.
type lexer struct {
	data  []byte
	i     int
	bad   bool
	depth int       // containers open around the current position
	objs  [2]uint64 // skipValue's containers by depth: 1 = object, 0 = array
	deep  []uint64  // the same beyond 128 levels
}

func (l *lexer) fail() { l.bad = true }

func (l *lexer) ws() {
	for l.i < len(l.data) {
		switch l.data[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end.
func (l *lexer) peek() byte {
	l.ws()
	if l.i < len(l.data) {
		return l.data[l.i]
	}
	return 0
}

// num reads the number starting at l.i and returns its bytes.
func (l *lexer) num() []byte {
	d, start, i := l.data, l.i, l.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i = digits(d, i)
	default:
		l.fail()
		return nil
	}
	if i < len(d) && d[i] == '.' {
		if i+1 >= len(d) || !isDigit(d[i+1]) {
			l.fail()
			return nil
		}
		i = digits(d, i+1)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			l.fail()
			return nil
		}
		i = digits(d, i)
	}
	l.i = i
	return d[start:i]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

// literal reads true, false or null starting at l.i.
func (l *lexer) literal(word string) {
	if len(l.data)-l.i < len(word) || string(l.data[l.i:l.i+len(word)]) != word {
		l.fail()
		return
	}
	l.i += len(word)
}

// int reads a number into an int field as encoding/json does: an integer in
// range, else (1.5, 1e3, too big) a type error.
func (l *lexer) int(bits int) int64 {
	b := l.num()
	if l.bad {
		return 0
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var n uint64
	for _, c := range b {
		if !isDigit(c) || n > (1<<63)/10 {
			l.fail()
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	limit := uint64(1) << (bits - 1)
	if neg && n > limit || !neg && n >= limit {
		l.fail()
		return 0
	}
	if neg {
		return -int64(n)
	}
	return int64(n)
}

// beginObject consumes '{' at l.i and reports whether a member follows.
func (l *lexer) beginObject() bool {
	l.i++
	l.depth++
	if l.depth > maxDepth {
		l.fail()
		return false
	}
	if l.peek() == '}' {
		l.i++
		l.depth--
		return false
	}
	return !l.bad
}

// key reads a member's key and its ':' and returns the key.
func (l *lexer) key() jstr {
	if l.peek() != '"' {
		l.fail()
		return jstr{}
	}
	k := l.str()
	if l.peek() != ':' {
		l.fail()
		return jstr{}
	}
	l.i++
	return k
}

// more consumes the ',' or the closing byte after a member or element and
// reports whether another follows.
func (l *lexer) more(closing byte) bool {
	if l.bad {
		return false
	}
	switch l.peek() {
	case ',':
		l.i++
		return true
	case closing:
		l.i++
		l.depth--
		return false
	}
	l.fail()
	return false
}

// beginArray consumes '[' at l.i and reports whether an element follows.
func (l *lexer) beginArray() bool {
	l.i++
	l.depth++
	if l.depth > maxDepth {
		l.fail()
		return false
	}
	if l.peek() == ']' {
		l.i++
		l.depth--
		return false
	}
	return !l.bad
}

// skipValue reads over one value of any type, checking its syntax, and
// returns its bytes. It keeps its own stack, so deep nesting costs no
// recursion.
func (l *lexer) skipValue() []byte {
	c := l.peek()
	start, base := l.i, l.depth
	for !l.bad {
		switch {
		case c == '{' || c == '[':
			l.i++
			l.depth++
			if l.depth > maxDepth {
				l.fail()
				return nil
			}
			l.setObj(l.depth, c == '{')
			if c == '{' && l.peek() != '}' {
				l.key()
				c = l.peek()
				continue
			}
			if c == '[' && l.peek() != ']' {
				c = l.peek()
				continue
			}
			l.i++
			l.depth--
		case c == '"':
			l.str()
		case c == 't':
			l.literal("true")
		case c == 'f':
			l.literal("false")
		case c == 'n':
			l.literal("null")
		default:
			l.num()
		}
		// A value ended: close the containers it ends.
		for !l.bad && l.depth > base {
			obj := l.isObj(l.depth)
			closing := byte(']')
			if obj {
				closing = '}'
			}
			if l.more(closing) {
				if obj {
					l.key()
				}
				break
			}
		}
		if l.depth == base {
			break
		}
		c = l.peek()
	}
	if l.bad {
		return nil
	}
	return l.data[start:l.i]
}

func (l *lexer) setObj(depth int, obj bool) {
	word, bit := depth/64, uint64(1)<<(depth%64)
	var w *uint64
	if word < len(l.objs) {
		w = &l.objs[word]
	} else {
		for len(l.deep) <= word-len(l.objs) {
			l.deep = append(l.deep, 0)
		}
		w = &l.deep[word-len(l.objs)]
	}
	if obj {
		*w |= bit
	} else {
		*w &^= bit
	}
}

func (l *lexer) isObj(depth int) bool {
	word, bit := depth/64, uint64(1)<<(depth%64)
	if word < len(l.objs) {
		return l.objs[word]&bit != 0
	}
	return l.deep[word-len(l.objs)]&bit != 0
}

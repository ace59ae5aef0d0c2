package stream

import (
	"encoding/binary"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The chunk scanner's lexer. It accepts exactly the JSON that encoding/json
// accepts (RFC 8259, nesting up to encoding/json's 10000 levels) and reads
// values in place, without allocating. chunk_reference_test.go checks it
// against encoding/json.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// jstr is a JSON string as it appears: the bytes between its quotes.
type jstr struct {
	raw []byte
	// esc: raw holds an escape or bytes that are not UTF-8, so its value
	// differs from raw. Either way the value is empty only when raw is.
	esc bool
}

// appendTo appends the string's value, decoded as encoding/json decodes it.
func (s jstr) appendTo(dst []byte) []byte {
	if !s.esc {
		return append(dst, s.raw...)
	}
	return appendUnquoted(dst, s.raw)
}

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

// str reads the string starting at l.i (a '"').
func (l *lexer) str() jstr {
	d := l.data
	start := l.i + 1
	esc, high := false, false
	for i := start; i < len(d); {
		for i+8 <= len(d) && !special8(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i == len(d) {
			break
		}
		c := d[i]
		switch {
		case c == '"':
			l.i = i + 1
			s := jstr{raw: d[start:i], esc: esc}
			if high && !esc {
				s.esc = !utf8.Valid(s.raw)
			}
			return s
		case c == '\\':
			esc = true
			if i+1 >= len(d) {
				l.fail()
				return jstr{}
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					l.fail()
					return jstr{}
				}
				i += 6
			default:
				l.fail()
				return jstr{}
			}
		case c < ' ':
			l.fail()
			return jstr{}
		default:
			high = high || c >= utf8.RuneSelf
			i++
		}
	}
	l.fail()
	return jstr{}
}

// plain marks the bytes a string holds as they are: not '"', '\\', a
// control character or part of a multi-byte sequence.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// special8 reports whether any of 8 bytes is not plain (SWAR: a byte of
// b - ones*n borrows into its top bit only when it is below n).
func special8(b uint64) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) &^ v }
	return (zero(b^(ones*'"'))|zero(b^(ones*'\\'))|(b-ones*' ')&^b|b)&tops != 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
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

// appendUnquoted appends the value of a JSON string's raw bytes, whose syntax
// is known to be valid, exactly as encoding/json decodes it: escapes
// resolved, lone surrogates and bytes that are not UTF-8 as U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	for r := 0; r < len(raw); {
		c := raw[r]
		switch {
		case c == '\\':
			switch e := raw[r+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(raw[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := rune(-1)
					if r+6 <= len(raw) && raw[r] == '\\' && raw[r+1] == 'u' {
						rr1 = hex4(raw[r+2:])
					}
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						dst = utf8.AppendRune(dst, dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			r += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(raw[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}

// hex4 reads four hex digits, known to be there.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r*16 + rune(c)
	}
	return r
}

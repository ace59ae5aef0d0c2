package stream

import (
	"encoding/binary"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

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

package simulator

import (
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The tokenizer is deterministic and cheap, and cuts English text about as
// often as a BPE vocabulary does (~1.3 tokens a word):
//   - a special token "<|…|>" is one token;
//   - a run of letters, with the one space before it, is one token per 8
//     letters (rounded up);
//   - every digit is a token (as in Qwen's vocabulary);
//   - any other character, with the one space before it, is a token;
//   - a run of other white space (newlines, extra spaces) is one token.
//
// A token's id is a hash of its text, so equal texts have equal tokens and
// prefix caching works on ids.

const maxLettersPerToken = 8

// tokenize returns the token ids of text.
func tokenize(text string, vocab int) []uint32 {
	var ids []uint32
	forEachPiece(text, func(piece string) { ids = append(ids, tokenID(piece, vocab)) })
	return ids
}

// countTokens is len(tokenize(text)) without the slice.
func countTokens(text string) int {
	n := 0
	forEachPiece(text, func(string) { n++ })
	return n
}

func tokenID(piece string, vocab int) uint32 {
	h := fnv.New32a()
	h.Write([]byte(piece))
	return h.Sum32() % uint32(vocab)
}

func forEachPiece(s string, emit func(string)) {
	for len(s) > 0 {
		if strings.HasPrefix(s, "<|") {
			if end := strings.Index(s[2:], "|>"); end >= 0 && end < 32 {
				emit(s[:end+4])
				s = s[end+4:]
				continue
			}
		}
		start := 0
		if s[0] == ' ' && len(s) > 1 {
			if r, _ := utf8.DecodeRuneInString(s[1:]); !unicode.IsSpace(r) {
				start = 1 // the space joins the token after it
			}
		}
		r, size := utf8.DecodeRuneInString(s[start:])
		switch {
		case start == 0 && unicode.IsSpace(r):
			end := size
			for end < len(s) {
				r2, sz := utf8.DecodeRuneInString(s[end:])
				if !unicode.IsSpace(r2) || (r2 == ' ' && end+sz < len(s) && !isSpaceAt(s, end+sz)) {
					break
				}
				end += sz
			}
			emit(s[:end])
			s = s[end:]
		case unicode.IsLetter(r):
			end, letters := start, 0
			for end < len(s) {
				r2, sz := utf8.DecodeRuneInString(s[end:])
				if !unicode.IsLetter(r2) || letters == maxLettersPerToken {
					break
				}
				end += sz
				letters++
			}
			emit(s[:end])
			s = s[end:]
		default:
			emit(s[:start+size])
			s = s[start+size:]
		}
	}
}

func isSpaceAt(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsSpace(r)
}

// outputWords are what the simulated model says; each, with its leading
// space, is exactly one token.
var outputWords = strings.Fields(`the a system request server model token stream queue slot cache
latency time each when which that with from into over under after before data load user
client proxy trace metric span batch decode prefill memory design service layer store index
write read fast slow first last small large many some every other more less about because
then while where there here this these those will can should would could must may might is
are was were be been has have had do does did not also only just very well good best`)

// textGen yields a deterministic reply, one token at a time.
type textGen struct {
	state uint64
	n     int
	vocab int
}

func newTextGen(seed uint64, vocab int) *textGen {
	return &textGen{state: seed | 1, vocab: vocab}
}

// next returns the next token's text and id.
func (g *textGen) next() (string, uint32) {
	// xorshift64*: fast, deterministic, good enough to pick words.
	g.state ^= g.state >> 12
	g.state ^= g.state << 25
	g.state ^= g.state >> 27
	r := g.state * 2685821657736338717
	g.n++
	var piece string
	switch {
	case g.n > 1 && r%11 == 0:
		piece = "."
	case g.n == 1:
		w := outputWords[r%uint64(len(outputWords))]
		piece = strings.ToUpper(w[:1]) + w[1:]
	default:
		piece = " " + outputWords[r%uint64(len(outputWords))]
	}
	return piece, tokenID(piece, g.vocab)
}

// promptSeed is a hash of the prompt that seeds the reply and its length.
func promptSeed(prompt string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(prompt))
	return h.Sum64()
}

// Output length when the request sets no limit (num_predict, max_tokens),
// decided by the last user message:
//  1. "N words" / "N-word" asks for N tokens, "N sentences" for 25 each,
//     "N paragraphs" for 73 each (N in digits or one…twelve);
//  2. else "comprehensive", "detailed", "in depth" or "in-depth" ask for 520;
//  3. else 64 to 255 tokens, picked by the prompt's hash.
//
// The result varies by up to ±5% with the prompt's hash, so the same prompt
// always gets the same length.
var lengthCue = regexp.MustCompile(`\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)[- ](words?|sentences?|paragraphs?)\b`)

var numberWords = map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
	"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}

const (
	tokensPerSentence  = 25
	tokensPerParagraph = 73
	tokensDetailed     = 520
)

func naturalLength(userText string, seed uint64) int {
	text := strings.ToLower(userText)
	base := 0
	if m := lengthCue.FindStringSubmatch(text); m != nil {
		n, ok := numberWords[m[1]]
		if !ok {
			n, _ = strconv.Atoi(m[1])
		}
		switch {
		case strings.HasPrefix(m[2], "word"):
			base = n
		case strings.HasPrefix(m[2], "sentence"):
			base = n * tokensPerSentence
		default:
			base = n * tokensPerParagraph
		}
	}
	if base == 0 {
		for _, cue := range []string{"comprehensive", "detailed", "in depth", "in-depth"} {
			if strings.Contains(text, cue) {
				base = tokensDetailed
				break
			}
		}
	}
	if base == 0 {
		base = 64 + int(seed%192)
	}
	jitter := int((seed>>8)%11) - 5 // -5 … +5 percent
	n := base + base*jitter/100
	return max(n, 1)
}

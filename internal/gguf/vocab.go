package gguf

import "fmt"

// Token types of a SentencePiece vocabulary (tokenizer.ggml.token_type).
const (
	TokenNormal  int32 = 1
	TokenUnknown int32 = 2
	TokenControl int32 = 3
	TokenByte    int32 = 6
)

// Special token ids.
const (
	UnknownID = 0
	BOSID     = 1
	EOSID     = 2
)

// MinVocab is the smallest vocabulary: <unk>, <s>, </s> and the 256 byte tokens.
const MinVocab = 3 + 256

// wordPieces fill the vocabulary after the byte tokens, most common first;
// "▁" marks a word start as in SentencePiece. Past them come "▁w<n>" fillers.
var wordPieces = []string{
	"▁", "e", "t", "a", "o", "i", "n", "s", "r", "h", "l", "d", "c", "u", "m",
	"▁the", "▁a", "▁to", "▁of", "▁and", "▁in", "▁is", "▁it", "▁you", "▁that",
	"▁for", "▁on", "▁with", "▁as", "▁are", "▁this", "▁be", "▁at", "▁or", "▁was",
	"▁hello", "▁world", "▁token", "▁model", "▁time", "▁first", "▁why", "▁sky",
	"▁blue", "▁what", "▁how", "er", "in", "on", "an", "re", "ed", "ing", "ly",
}

// Vocabulary is a SentencePiece-style vocabulary.
type Vocabulary struct {
	Tokens []string
	Scores []float32
	Types  []int32
}

// NewVocabulary returns a vocabulary of n tokens (n ≥ MinVocab): <unk>,
// <s>, </s>, the byte tokens <0x00>…<0xFF>, then word pieces.
func NewVocabulary(n int) Vocabulary {
	v := Vocabulary{
		Tokens: make([]string, 0, n),
		Scores: make([]float32, 0, n),
		Types:  make([]int32, 0, n),
	}
	add := func(tok string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, tok)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, TokenUnknown)
	add("<s>", 0, TokenControl)
	add("</s>", 0, TokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, TokenByte)
	}
	// Higher scores merge first in SentencePiece's BPE-style tokenizer.
	for i := 0; len(v.Tokens) < n; i++ {
		tok := fmt.Sprintf("▁w%d", i-len(wordPieces))
		if i < len(wordPieces) {
			tok = wordPieces[i]
		}
		add(tok, -float32(i+1), TokenNormal)
	}
	return v
}

package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// Message is one chat message.
type Message = stream.Message

// Prompt is what one request asks: a list of chat messages. Endpoints that
// take a plain prompt (generate, completions) get the messages' contents
// joined by blank lines.
type Prompt struct {
	Messages []Message
}

// Text is the prompt as one string.
func (p Prompt) Text() string {
	parts := make([]string, len(p.Messages))
	for i, m := range p.Messages {
		parts[i] = m.Content
	}
	return strings.Join(parts, "\n\n")
}

func (p Prompt) validate() error {
	if len(p.Messages) == 0 {
		return errors.New("no messages")
	}
	for i, m := range p.Messages {
		if m.Role == "" {
			return fmt.Errorf("message %d: no role", i)
		}
	}
	return nil
}

// UserPrompt is a prompt of one user message.
func UserPrompt(text string) Prompt {
	return Prompt{Messages: []Message{{Role: "user", Content: text}}}
}

// PromptSizes lists the built-in prompt sizes, smallest first.
func PromptSizes() []string {
	s := make([]string, 0, len(builtinPrompts))
	for k := range builtinPrompts {
		s = append(s, k)
	}
	sort.Slice(s, func(i, j int) bool { return len(builtinPrompts[s[i]]) < len(builtinPrompts[s[j]]) })
	return s
}

// BuiltinPrompt returns the built-in prompt of a size (see PromptSizes).
func BuiltinPrompt(size string) (Prompt, bool) {
	text, ok := builtinPrompts[size]
	if !ok {
		return Prompt{}, false
	}
	return UserPrompt(text), true
}

// maxPromptLine bounds one line of a prompts file.
const maxPromptLine = 16 << 20

// ReadPrompts reads a JSONL file of prompts: each non-blank line is a JSON
// string, an object {"prompt": "…"}, or an object {"messages": [{"role":
// "…", "content": "…"}, …]}. Errors name the line.
func ReadPrompts(r io.Reader) ([]Prompt, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxPromptLine)
	var out []Prompt
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		p, err := parsePromptLine(line)
		if err != nil {
			return nil, fmt.Errorf("prompts line %d: %w", n, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read prompts: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("read prompts: no prompt in the file")
	}
	return out, nil
}

func parsePromptLine(line []byte) (Prompt, error) {
	if line[0] == '"' {
		var s string
		if err := json.Unmarshal(line, &s); err != nil {
			return Prompt{}, fmt.Errorf("not a JSON string: %w", err)
		}
		if s == "" {
			return Prompt{}, errors.New("empty prompt")
		}
		return UserPrompt(s), nil
	}
	var w struct {
		Prompt   *string   `json:"prompt"`
		Messages []Message `json:"messages"`
	}
	if err := json.Unmarshal(line, &w); err != nil {
		return Prompt{}, fmt.Errorf("not a JSON object with prompt or messages: %w", err)
	}
	switch {
	case w.Prompt != nil && len(w.Messages) > 0:
		return Prompt{}, errors.New("both prompt and messages")
	case w.Prompt != nil:
		if *w.Prompt == "" {
			return Prompt{}, errors.New("empty prompt")
		}
		return UserPrompt(*w.Prompt), nil
	case len(w.Messages) > 0:
		p := Prompt{Messages: w.Messages}
		return p, p.validate()
	}
	return Prompt{}, errors.New("neither prompt nor messages")
}

package dashboards

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/scanner"
)

// traceQLStrings returns the string literals of a TraceQL query as Tempo's lexer reads them
// (pkg/traceql/lexer.go: Go's text/scanner, each String or RawString token through strconv.Unquote), or
// the first error either reports.
func traceQLStrings(query string) ([]string, error) {
	var s scanner.Scanner
	s.Init(strings.NewReader(query))
	var scanErr error
	s.Error = func(_ *scanner.Scanner, msg string) {
		if scanErr == nil {
			scanErr = fmt.Errorf("%s: %s", s.Position, msg)
		}
	}
	var strs []string
	for tok := s.Scan(); tok != scanner.EOF; tok = s.Scan() {
		if tok != scanner.String && tok != scanner.RawString {
			continue
		}
		v, err := strconv.Unquote(s.TokenText())
		if err != nil {
			return nil, fmt.Errorf("string %s: %w", s.TokenText(), err)
		}
		strs = append(strs, v)
	}
	if scanErr != nil {
		return nil, scanErr
	}
	return strs, nil
}

// TestTraceSearchModelFilter renders the requests table's TraceQL as Grafana would for model selections
// whose names hold "." and ":", and checks Tempo's lexer accepts the string and the regex inside selects
// exactly the chosen models (grafana/tempo#3086: the double-quoted form is rejected).
func TestTraceSearchModelFilter(t *testing.T) {
	tests := []struct {
		name     string
		selected []string // nil: "All"
		match    []string
		noMatch  []string
	}{
		{"one model with . and :", []string{"qwen2.5:7b-instruct"},
			[]string{"qwen2.5:7b-instruct"}, []string{"qwen2x5:7b-instruct", "qwen2.5:7b-instruct-q4", "xqwen2.5:7b-instruct"}},
		{"two models", []string{"qwen2.5:7b-instruct", "llama3.1:8b"},
			[]string{"qwen2.5:7b-instruct", "llama3.1:8b"}, []string{"llama3x1:8b", "gemma3:4b"}},
		{"a name with regex characters", []string{"org/model+v(2)"},
			[]string{"org/model+v(2)"}, []string{"org/modelv2"}},
		{"all", nil, []string{"anything"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := ".*" // the variable's allValue
			if tt.selected != nil {
				value = GrafanaRegexFormat(tt.selected)
			}
			q, err := Expand(strings.ReplaceAll(TraceSearchQuery(), "${model:regex}", value), map[string]string{varMinDuration: "250ms"})
			if err != nil {
				t.Fatal(err)
			}
			strs, err := traceQLStrings(q)
			if err != nil {
				t.Fatalf("Tempo's lexer rejects %s: %v", q, err)
			}
			if len(strs) != 1 {
				t.Fatalf("string literals %q in %s, want the model regex only", strs, q)
			}
			// TraceQL's =~ matches the whole value (Tempo anchors the pattern).
			re, err := regexp.Compile("^(?:" + strs[0] + ")$")
			if err != nil {
				t.Fatalf("model regex %q: %v", strs[0], err)
			}
			for _, m := range tt.match {
				if !re.MatchString(m) {
					t.Errorf("%q does not match %s", m, strs[0])
				}
			}
			for _, m := range tt.noMatch {
				if re.MatchString(m) {
					t.Errorf("%q matches %s", m, strs[0])
				}
			}
		})
	}
}

// TestDoubleQuotedRegexIsRejected shows the lexer check bites: the old form, "${model:regex}", fails for
// a model name with a ".".
func TestDoubleQuotedRegexIsRejected(t *testing.T) {
	q := `{ span.gen_ai.request.model =~ "` + GrafanaRegexFormat([]string{"qwen2.5:7b-instruct"}) + `" }`
	if _, err := traceQLStrings(q); err == nil {
		t.Fatalf("%s accepted; Tempo rejects \\. in a double-quoted string", q)
	}
}

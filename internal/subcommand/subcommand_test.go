package subcommand

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestMainExitStatus(t *testing.T) {
	commands := map[string]Command{
		"ok":   {"succeeds", func([]string) error { return nil }},
		"bad":  {"bad input", func(args []string) error { return Usagef("bad flag %q", args[0]) }},
		"fail": {"fails", func([]string) error { return errors.New("disk full") }},
		"help": {"", func([]string) error { return flag.ErrHelp }},
		"flags": {"parses flags", func(args []string) error {
			fs := flag.NewFlagSet("flags", flag.ContinueOnError)
			fs.SetOutput(new(bytes.Buffer))
			fs.Int("n", 0, "")
			return ParseFlags(fs, args)
		}},
	}
	tests := []struct {
		args   []string
		status int
		stderr string
	}{
		{nil, 2, "Usage: prog <command>"},
		{[]string{"-h"}, 0, "flags  parses flags"},
		{[]string{"nope"}, 2, `prog: unknown command "nope"`},
		{[]string{"ok"}, 0, ""},
		{[]string{"bad", "-x"}, 2, `prog bad: bad flag "-x"`},
		{[]string{"fail"}, 1, "prog fail: disk full"},
		{[]string{"flags", "-n", "x"}, 2, "prog flags: invalid value"},
		{[]string{"flags", "-h"}, 0, ""},
		{[]string{"flags", "-n", "3"}, 0, ""},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if got := Main("prog", commands, "Footer.", &stderr, tt.args); got != tt.status {
			t.Errorf("Main(%q) = %d, want %d (stderr %q)", tt.args, got, tt.status, stderr.String())
		}
		if !strings.Contains(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() > 0) {
			t.Errorf("Main(%q) printed %q, want %q", tt.args, stderr.String(), tt.stderr)
		}
	}
}

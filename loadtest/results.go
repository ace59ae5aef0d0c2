package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// encodings are the -encoding values of attack: vegeta's result encoders.
var encodings = map[string]func(io.Writer) vegeta.Encoder{
	"gob":  vegeta.NewEncoder,
	"json": vegeta.NewJSONEncoder,
	"csv":  vegeta.NewCSVEncoder,
}

// readResults decodes every result of files ("stdin" or "-" for stdin; none
// means stdin), as vegeta report does, and calls fn with each.
func readResults(env *environment, files []string, fn func(*vegeta.Result) error) error {
	if len(files) == 0 {
		files = []string{"stdin"}
	}
	files, err := expandDirs(files)
	if err != nil {
		return err
	}
	var decs []vegeta.Decoder
	for _, name := range files {
		var r io.Reader
		if name == "stdin" || name == "-" {
			r = env.stdin
		} else {
			f, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("open results: %w", err)
			}
			defer f.Close()
			r = f
		}
		dec := vegeta.DecoderFor(bufio.NewReader(r))
		if dec == nil {
			return fmt.Errorf("read results from %s: empty, or not vegeta's gob, JSON or CSV", name)
		}
		decs = append(decs, dec)
	}
	// Each file is read to its end in turn: results stay in file order.
	for i, dec := range decs {
		for n := 0; ; n++ {
			var r vegeta.Result
			err := dec.Decode(&r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read results from %s, record %d: %w", files[i], n+1, err)
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

// expandDirs replaces a folder by the files in it, in name order (the results of a distributed attack's pods on
// a shared volume), so that a shell-less container can read them all.
func expandDirs(names []string) ([]string, error) {
	var out []string
	for _, name := range names {
		st, err := os.Stat(name)
		if err != nil || !st.IsDir() {
			out = append(out, name) // stdin, a file, or an error os.Open reports
			continue
		}
		entries, err := os.ReadDir(name)
		if err != nil {
			return nil, fmt.Errorf("read results folder: %w", err)
		}
		n := len(out)
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, filepath.Join(name, e.Name()))
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("read results folder %s: no files in it", name)
		}
	}
	return out, nil
}

// createOutput opens -output: "stdout" or "-" for stdout, else a file.
func createOutput(env *environment, name string) (io.Writer, func() error, error) {
	if name == "" || name == "stdout" || name == "-" {
		return env.stdout, func() error { return nil }, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, nil, fmt.Errorf("create output: %w", err)
	}
	return f, f.Close, nil
}

// headerFlag collects repeated -header "Name: value" flags.
type headerFlag []string

func (h *headerFlag) String() string { return strings.Join(*h, ", ") }

func (h *headerFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	*h = append(*h, strings.TrimSpace(k)+":"+strings.TrimSpace(val))
	return nil
}

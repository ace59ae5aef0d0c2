package matrix

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Files of a run folder.
const (
	HeaderFile   = "header.json"
	RequestsFile = "requests.jsonl"
	ResultsFile  = "results.jsonl"
	ResultsCSV   = "results.csv"
)

// Store appends a run's results to its folder. Each scenario's requests
// are written before its result line, so a result line means the scenario
// is complete on disk; requests of an attempt without a result line (an
// interrupted scenario) are ignored by Load.
type Store struct {
	dir  string
	mu   sync.Mutex
	done map[string]bool
}

// Create starts a new run folder and writes its header. The folder may
// exist but must not hold a run.
func Create(dir string, h Header) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output folder: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, HeaderFile)); err == nil {
		return nil, fmt.Errorf("output folder %s already holds a run: use --resume %s, or another --out", dir, dir)
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, HeaderFile), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write run header: %w", err)
	}
	return &Store{dir: dir, done: map[string]bool{}}, nil
}

// CheckWritable fails when dir cannot be created or written to.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// Resume opens an existing run folder; Done tells which scenarios it has.
// With retryFailed, scenarios and searches recorded as oom, crash, failed
// or skipped are not done: they run again, and their new result replaces
// the old one.
func Resume(dir string, retryFailed bool) (*Store, Header, error) {
	h, results, _, err := Load(dir)
	if err != nil {
		return nil, Header{}, err
	}
	for _, name := range []string{RequestsFile, ResultsFile, ResultsCSV, ProbesFile, CapacityFile, CapacityCSV} {
		if err := repairTail(filepath.Join(dir, name)); err != nil {
			return nil, Header{}, fmt.Errorf("resume %s: %w", dir, err)
		}
	}
	s := &Store{dir: dir, done: map[string]bool{}}
	for _, r := range results {
		s.done[r.Name] = !retryFailed || r.Status == StatusOK
	}
	caps, _, err := LoadCapacity(dir)
	if err != nil {
		return nil, Header{}, fmt.Errorf("resume %s: %w", dir, err)
	}
	for _, c := range caps {
		s.done[c.Name] = !retryFailed || c.Status == StatusOK
	}
	return s, h, nil
}

// Dir is the run folder.
func (s *Store) Dir() string { return s.dir }

// Done reports whether the scenario already has a result.
func (s *Store) Done(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[name]
}

// Append writes a scenario's requests and then its result.
func (s *Store) Append(res Result, reqs []Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if err := appendFile(filepath.Join(s.dir, RequestsFile), buf.Bytes()); err != nil {
		return fmt.Errorf("write requests of %s: %w", res.Name, err)
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := appendFile(filepath.Join(s.dir, ResultsFile), append(line, '\n')); err != nil {
		return fmt.Errorf("write result of %s: %w", res.Name, err)
	}
	if err := s.appendCSV(res); err != nil {
		return fmt.Errorf("write result of %s: %w", res.Name, err)
	}
	s.done[res.Name] = true
	return nil
}

func (s *Store) appendCSV(res Result) error {
	path := filepath.Join(s.dir, ResultsCSV)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		w.Write(resultColumns.header())
	}
	w.Write(resultColumns.row(res))
	w.Flush()
	return appendFile(path, buf.Bytes())
}

// appendFile appends b in one write and syncs, so a killed supervisor
// leaves whole lines.
func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Load reads a run folder: its header, its scenario results (the last one
// of each scenario) and the requests of those results' attempts. A torn
// last line (a killed writer) is skipped.
func Load(dir string) (Header, []Result, []Request, error) {
	var h Header
	b, err := os.ReadFile(filepath.Join(dir, HeaderFile))
	if err != nil {
		return h, nil, nil, fmt.Errorf("read run header: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, nil, nil, fmt.Errorf("read run header %s: %w", filepath.Join(dir, HeaderFile), err)
	}
	results, err := readLastOfEach(filepath.Join(dir, ResultsFile), func(r Result) string { return r.Name })
	if err != nil {
		return h, nil, nil, err
	}
	attempts := map[string]bool{}
	for _, r := range results {
		attempts[r.Attempt] = true
	}
	var reqs []Request
	err = readJSONL(filepath.Join(dir, RequestsFile), func(line []byte) error {
		var r Request
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if attempts[r.Attempt] {
			reqs = append(reqs, r)
		}
		return nil
	})
	return h, results, reqs, err
}

// readLastOfEach reads the JSON lines of path, keeping the last record of
// each name in the order names first appear: a scenario or a search written
// again (resumed, retried) replaces its earlier record in place.
func readLastOfEach[T any](path string, name func(T) string) ([]T, error) {
	var out []T
	index := map[string]int{}
	err := readJSONL(path, func(line []byte) error {
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return err
		}
		if i, ok := index[name(v)]; ok {
			out[i] = v
		} else {
			index[name(v)] = len(out)
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

func readJSONL(path string, each func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var pending error
	n := 0
	for sc.Scan() {
		n++
		if pending != nil { // a bad line that is not the last one
			return pending
		}
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := each(sc.Bytes()); err != nil {
			pending = fmt.Errorf("%s line %d: %w", path, n, err)
		}
	}
	return sc.Err()
}

// repairTail cuts a torn last line (no newline: the writer was killed) so
// that appended lines start on a line of their own.
func repairTail(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || len(b) == 0 || b[len(b)-1] == '\n' {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1))
}

// WriteHeader replaces the run header (written again once the engine has
// told its version and the model's details).
func (s *Store) WriteHeader(h Header) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, HeaderFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write run header: %w", err)
	}
	return os.Rename(tmp, filepath.Join(s.dir, HeaderFile))
}

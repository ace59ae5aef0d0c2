package backend

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// RunnerArgs is what the engine's runner was started with, read from the log
// line Ollama writes (`starting llama server cmd=… --ctx-size N … --parallel P`).
type RunnerArgs struct {
	Parallel int
	CtxSize  int    // the runner's whole context: num_ctx × parallel on Ollama
	Line     string // the log line
}

var (
	runnerLine  = regexp.MustCompile(`starting llama server`)
	parallelArg = regexp.MustCompile(`(?:--parallel[ =]|\bparallel=)(\d+)`)
	ctxArg      = regexp.MustCompile(`(?:--ctx-size[ =]|\bctx-size=)(\d+)`)
	// Words with which Ollama, llama.cpp and the simulator say that memory
	// ran out, or that the runner died (the kernel's OOM killer).
	memoryWords = regexp.MustCompile(`(?i)out of memory|requires more system memory|cannot allocate memory|` +
		`failed to allocate|insufficient memory|exceeds? (the )?memory limit|\boom\b|signal: killed|runner process has terminated`)
)

const tailLines = 20

// LogWatch copies the engine's output to its log file and watches each line.
type LogWatch struct {
	out     io.Writer
	mu      sync.Mutex
	partial []byte
	tail    []string
	runner  *RunnerArgs
	memory  []string // lines that speak of memory, bounded
	nMemory int
}

func newLogWatch(out io.Writer) *LogWatch { return &LogWatch{out: out} }

// Write writes p to the log file and scans its complete lines.
func (w *LogWatch) Write(p []byte) (int, error) {
	n, err := w.out.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 64<<10 { // a line this long is not one we look for
		w.partial = w.partial[:0]
	}
	if err != nil {
		// Losing the log file must not stop the engine.
		return len(p), nil
	}
	return n, nil
}

func (w *LogWatch) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
}

func (w *LogWatch) line(s string) {
	s = strings.TrimRight(s, "\r")
	w.tail = append(w.tail, s)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
	if runnerLine.MatchString(s) {
		ra := &RunnerArgs{Line: s}
		if m := parallelArg.FindStringSubmatch(s); m != nil {
			ra.Parallel, _ = strconv.Atoi(m[1])
		}
		if m := ctxArg.FindStringSubmatch(s); m != nil {
			ra.CtxSize, _ = strconv.Atoi(m[1])
		}
		w.runner = ra
	}
	if memoryWords.MatchString(s) {
		w.nMemory++
		if len(w.memory) < 50 {
			w.memory = append(w.memory, s)
		}
	}
}

// Runner returns the arguments of the last runner started; false before one.
func (w *LogWatch) Runner() (RunnerArgs, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.runner == nil {
		return RunnerArgs{}, false
	}
	return *w.runner, true
}

// MemoryErrors returns how many log lines spoke of memory so far and the
// last such line; compare counts before and after a scenario.
func (w *LogWatch) MemoryErrors() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.memory) == 0 {
		return w.nMemory, ""
	}
	return w.nMemory, w.memory[len(w.memory)-1]
}

// Tail returns the last lines of the log.
func (w *LogWatch) Tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}

// SaysMemory reports whether a message speaks of memory running out, in the
// words Ollama, llama.cpp, the simulator or the kernel use.
func SaysMemory(s string) bool { return memoryWords.MatchString(s) }

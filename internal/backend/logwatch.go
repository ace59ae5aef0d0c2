package backend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

var (
	// Words with which Ollama, llama.cpp and the simulator say that memory
	// ran out, or that the runner died (the kernel's OOM killer).
	memoryWords = regexp.MustCompile(`(?i)out of memory|requires more system memory|cannot allocate memory|` +
		`failed to allocate|insufficient memory|exceeds? (the )?memory limit|\boom\b|signal: killed|runner process has terminated`)
)

// tailLines is how many log lines a LogWatch keeps for error messages.
const tailLines = 40

// LogWatch copies the engine's output to its log file and watches each line.
type LogWatch struct {
	out     io.Writer
	mu      sync.Mutex
	partial []byte
	tail    []string
	runners []RunnerArgs
	changed chan struct{} // closed and replaced when a runner starts
	ended   chan struct{} // closed when the engine's output has ended
	memory  []string      // lines that speak of memory, bounded
	nMemory int
}

func newLogWatch(out io.Writer) *LogWatch {
	return &LogWatch{out: out, changed: make(chan struct{}), ended: make(chan struct{})}
}

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

// end scans the last, unterminated line once the output has ended.
func (w *LogWatch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
	close(w.ended)
}

func (w *LogWatch) line(s string) {
	s = strings.TrimRight(s, "\r")
	w.tail = append(w.tail, s)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
	if ra, ok := ParseRunnerLine(s); ok {
		w.runners = append(w.runners, ra)
		close(w.changed)
		w.changed = make(chan struct{})
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
	if len(w.runners) == 0 {
		return RunnerArgs{}, false
	}
	return w.runners[len(w.runners)-1], true
}

// Runners lists the runners started so far, oldest first.
func (w *LogWatch) Runners() []RunnerArgs {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]RunnerArgs(nil), w.runners...)
}

// WaitRunner waits until at least n runners have started and returns the
// n-th (from 1). It fails when ctx ends or the engine's output ends first.
func (w *LogWatch) WaitRunner(ctx context.Context, n int) (RunnerArgs, error) {
	for {
		w.mu.Lock()
		if len(w.runners) >= n {
			r := w.runners[n-1]
			w.mu.Unlock()
			return r, nil
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-w.ended:
			return RunnerArgs{}, fmt.Errorf("the engine's output ended before runner %d started", n)
		case <-ctx.Done():
			return RunnerArgs{}, fmt.Errorf("wait for runner %d: %w", n, ctx.Err())
		}
	}
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

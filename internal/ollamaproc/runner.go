package ollamaproc

import (
	"strconv"
	"strings"
)

// RunnerArgs are the arguments Ollama started its inference runner with, as
// its log line `msg="starting llama server" cmd="… runner --parallel N …"`
// shows them. They are what the server really used, whatever was asked.
type RunnerArgs struct {
	Parallel  int    // --parallel: slots that decode at once
	CtxSize   int    // --ctx-size: num_ctx × parallel
	BatchSize int    // --batch-size
	Threads   int    // --threads
	Port      int    // --port: where the runner listens
	Model     string // --model: the GGUF blob
	Cmd       string // the whole command line
}

// runnerMarker is in the log line that starts a runner.
const runnerMarker = `msg="starting llama server"`

// ParseRunnerLine reads the runner's arguments from one line of Ollama's log;
// false when the line is not the one that starts a runner or has no --parallel.
func ParseRunnerLine(line string) (RunnerArgs, bool) {
	if !strings.Contains(line, runnerMarker) {
		return RunnerArgs{}, false
	}
	i := strings.Index(line, ` cmd="`)
	if i < 0 {
		return RunnerArgs{}, false
	}
	quoted, err := strconv.QuotedPrefix(line[i+len(" cmd="):])
	if err != nil {
		return RunnerArgs{}, false
	}
	cmd, err := strconv.Unquote(quoted)
	if err != nil {
		return RunnerArgs{}, false
	}
	a := RunnerArgs{Cmd: cmd, Parallel: -1}
	fields := strings.Fields(cmd)
	for j := 0; j+1 < len(fields); j++ {
		val := fields[j+1]
		var dst *int
		switch fields[j] {
		case "--parallel":
			dst = &a.Parallel
		case "--ctx-size":
			dst = &a.CtxSize
		case "--batch-size":
			dst = &a.BatchSize
		case "--threads":
			dst = &a.Threads
		case "--port":
			dst = &a.Port
		case "--model":
			a.Model = val
			continue
		default:
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return RunnerArgs{}, false
		}
		*dst = n
	}
	if a.Parallel < 0 {
		return RunnerArgs{}, false
	}
	return a, true
}

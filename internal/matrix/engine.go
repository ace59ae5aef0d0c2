package matrix

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/memsample"
)

// ProcessEngine is an engine the supervisor starts itself: `ollama serve`,
// the simulator (the supervisor's own `simulate` subcommand) or another
// engine's command line. Every setting restarts it on the same port.
type ProcessEngine struct {
	// Name is the engine's name in messages and log file names.
	Name string
	// Path is the program; Args and Env its arguments and whole environment
	// for a setting.
	Path string
	Args func(s Setting) []string
	Env  func(s Setting) []string
	// URL is where it listens (the same for every setting).
	URL string
	// OllamaAPI: the engine speaks Ollama's API (/api/tags, /api/show,
	// /api/ps), so the model is checked, loaded, warmed and the runner's
	// parallelism verified.
	OllamaAPI bool
	Model     string
	// ReadyPath is polled until it answers 200.
	ReadyPath string
	// ReadyTimeout bounds the start, LoadTimeout the model's first load.
	ReadyTimeout time.Duration
	LoadTimeout  time.Duration
	StopTimeout  time.Duration
	// LogDir receives one log file per setting.
	LogDir string
	// Guard is backend.Config.Guard.
	Guard []string
	// Cold leaves the model unloaded after the start (for a cache test's
	// cold start): no load, no warm-up, no verification.
	Cold bool

	// Version and ModelInfo are filled by the first successful Start.
	Version   string
	ModelInfo backend.ModelInfo

	proc *backend.Process
}

// Restartable is true: the supervisor owns the process.
func (e *ProcessEngine) Restartable() bool { return true }

// Pid is the engine's process id; 0 when it does not run.
func (e *ProcessEngine) Pid() int {
	if e.proc == nil {
		return 0
	}
	return e.proc.Pid()
}

// Health implements Engine.
func (e *ProcessEngine) Health() (bool, string, int, string) {
	if e.proc == nil {
		return false, "", 0, ""
	}
	n, last := e.proc.Log().MemoryErrors()
	exited, err := e.proc.Exited()
	how := ""
	if exited {
		how = fmt.Sprint(err)
		if err == nil {
			how = "exit status 0"
		}
	}
	return exited, how, n, last
}

// PS implements Engine.
func (e *ProcessEngine) PS(ctx context.Context) PSSize {
	if !e.OllamaAPI || e.proc == nil {
		return PSSize{}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return psSize(ctx, e.URL)
}

// PSSize is what /api/ps says the loaded models take: in all, and of that
// on the GPU.
type PSSize struct {
	Bytes, VRAMBytes int64
}

// psSize sums every model /api/ps lists as loaded; zero when the engine
// does not answer.
func psSize(ctx context.Context, url string) PSSize {
	ps, err := (&backend.Ollama{BaseURL: url}).PS(ctx)
	if err != nil {
		return PSSize{}
	}
	var n PSSize
	for _, m := range ps {
		n.Bytes += m.Size
		n.VRAMBytes += m.SizeVRAM
	}
	return n
}

// Stop implements Engine.
func (e *ProcessEngine) Stop(ctx context.Context) error {
	if e.proc == nil {
		return nil
	}
	err := e.proc.Stop(ctx)
	e.proc = nil
	return err
}

// Start implements Engine.
func (e *ProcessEngine) Start(ctx context.Context, s Setting) (SettingFacts, error) {
	var facts SettingFacts
	if err := e.Stop(ctx); err != nil {
		return facts, fmt.Errorf("stop %s: %w", e.Name, err)
	}
	proc, err := backend.Start(backend.Config{Name: e.Name, Path: e.Path, Args: e.Args(s), Env: e.Env(s),
		LogPath: filepath.Join(e.LogDir, fmt.Sprintf("%s-%s.log", e.Name, s)), BaseURL: e.URL,
		ReadyPath: e.ReadyPath, StopTimeout: e.StopTimeout, Guard: e.Guard})
	if err != nil {
		return facts, err
	}
	e.proc = proc
	ready, err := proc.WaitReady(ctx, e.ReadyTimeout)
	if err != nil {
		return facts, e.settingError(err)
	}
	facts.TimeToReadyS = ready.Seconds()
	if !e.OllamaAPI {
		facts.Verified = "unknown: this engine has no runner log line or /api/ps to tell"
		facts.ColdLoadS = facts.TimeToReadyS
		facts.IdleMemBytes, _, _ = memsample.TreeRSS(ctx, proc.Pid())
		return facts, nil
	}
	client := &backend.Ollama{BaseURL: e.URL}
	if v, err := client.Version(ctx); err == nil {
		e.Version = v
	}
	info, err := client.Model(ctx, e.Model)
	var missing *backend.ErrModelMissing
	if errors.As(err, &missing) {
		return facts, err // no setting can run: end the run
	}
	if err != nil {
		return facts, &SettingError{Status: StatusFailed, Err: err}
	}
	e.ModelInfo = info
	if e.Cold {
		facts.Verified = "not loaded yet"
		return facts, nil
	}
	lctx, cancel := context.WithTimeout(ctx, e.LoadTimeout)
	defer cancel()
	server, wall, err := client.Load(lctx, e.Model)
	facts.ColdLoadS, facts.ServerLoadS = wall.Seconds(), server.Seconds()
	if err == nil {
		err = client.Warm(lctx, e.Model)
	}
	if err != nil {
		return facts, e.settingError(err)
	}
	facts.RunnerParallel, facts.RunnerCtx, facts.Verified, facts.RunnerLog = e.verify(ctx, client, s)
	facts.IdleMemBytes, _, _ = memsample.TreeRSS(ctx, proc.Pid())
	ps := e.PS(ctx)
	facts.PSSizeBytes, facts.PSVRAMBytes = ps.Bytes, ps.VRAMBytes
	return facts, nil
}

// settingError decides whether a failed start is an OOM (the engine or its
// log said memory, or it was killed) or another failure of this setting.
func (e *ProcessEngine) settingError(err error) error {
	exited, how, memLines, last := e.Health()
	msg := err.Error()
	if exited {
		msg += " (" + e.Name + " exited: " + how + ")"
	}
	if memLines > 0 || backend.SaysMemory(msg) {
		if last != "" && !backend.SaysMemory(err.Error()) {
			msg += "; log: " + last
		}
		return &SettingError{Status: StatusOOM, Err: errors.New(msg)}
	}
	return &SettingError{Status: StatusFailed, Err: errors.New(msg)}
}

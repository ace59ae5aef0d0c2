package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tokentrace/tokentrace/internal/backend"
)

// ExternalEngine is an engine the supervisor did not start and cannot
// restart: only concurrency × prompt size runs against it, its memory is
// not sampled, and its parallelism is whatever it runs with.
type ExternalEngine struct {
	URL       string
	Model     string
	OllamaAPI bool
	ReadyPath string

	Version   string
	ModelInfo backend.ModelInfo
}

// Restartable is false.
func (e *ExternalEngine) Restartable() bool { return false }

// Pid is 0: its processes are not the supervisor's.
func (e *ExternalEngine) Pid() int { return 0 }

// Health never reports an exit: a dead external engine shows as errors.
func (e *ExternalEngine) Health() (bool, string, int, string) { return false, "", 0, "" }

// PS implements Engine.
func (e *ExternalEngine) PS(ctx context.Context) PSSize {
	if !e.OllamaAPI {
		return PSSize{}
	}
	return psSize(ctx, e.URL)
}

// Stop does nothing: the engine is not the supervisor's.
func (e *ExternalEngine) Stop(context.Context) error { return nil }

// Start checks that the engine answers and has the model, and warms it.
func (e *ExternalEngine) Start(ctx context.Context, s Setting) (SettingFacts, error) {
	facts := SettingFacts{Verified: "unknown: external engine, not restarted"}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+e.ReadyPath, nil)
	if err != nil {
		return facts, fmt.Errorf("external engine URL %q: %w", e.URL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return facts, fmt.Errorf("external engine at %s does not answer: %w", e.URL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return facts, fmt.Errorf("external engine at %s: GET %s: status %d", e.URL, e.ReadyPath, resp.StatusCode)
	}
	if !e.OllamaAPI {
		return facts, nil
	}
	client := &backend.Ollama{BaseURL: e.URL}
	e.Version, _ = client.Version(ctx)
	info, err := client.Model(ctx, e.Model)
	if err != nil {
		var missing *backend.ErrModelMissing
		if errors.As(err, &missing) {
			return facts, err
		}
		return facts, fmt.Errorf("external engine: %w", err)
	}
	e.ModelInfo = info
	return facts, client.Warm(ctx, e.Model)
}

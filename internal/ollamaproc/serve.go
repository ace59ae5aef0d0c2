package ollamaproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Serve is `make ollama-serve`: it starts the server, creates model name from
// the GGUF file, tells out where to reach it, and keeps it running until ctx
// ends (Ctrl-C) or the server exits; then it stops the whole process group.
// An exit of the server on its own is an error with its last log lines.
func Serve(ctx context.Context, cfg Config, name, gguf string, startTimeout time.Duration, out io.Writer) error {
	return withModel(ctx, cfg, name, gguf, startTimeout, func(s *Server) error {
		fmt.Fprintf(out, `ollama serves model %[2]q at %[1]s
  models: %[3]s
  log:    %[4]s
try:
  curl -s %[1]s/api/chat -d '{"model":"%[2]s","messages":[{"role":"user","content":"Hello"}],"options":{"num_predict":16}}'
  curl -sN %[1]s/v1/chat/completions -d '{"model":"%[2]s","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"Hello"}]}'
Ctrl-C stops it.
`, s.URL(), name, s.ModelsDir(), s.LogPath())
		select {
		case <-ctx.Done():
			return nil
		case <-s.Exited():
			return fmt.Errorf("ollama exited on its own; last log lines:\n%s", s.LogTail())
		}
	})
}

// Create starts the server, creates model name from the GGUF file in its
// store (cfg.Dir/models) and stops it. Any Ollama of the same version then
// serves the model with OLLAMA_MODELS set to that store.
func Create(ctx context.Context, cfg Config, name, gguf string, startTimeout time.Duration) error {
	return withModel(ctx, cfg, name, gguf, startTimeout, func(*Server) error { return nil })
}

// withModel starts the server, creates model name from the GGUF file, runs
// then, and stops the whole process group.
func withModel(ctx context.Context, cfg Config, name, gguf string, startTimeout time.Duration, then func(*Server) error) (err error) {
	s, err := Start(cfg)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.StopGrace+5*time.Second)
		defer cancel()
		if serr := s.Stop(sctx); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := s.WaitReady(sctx); err != nil {
		return err
	}
	if err := s.CreateFromGGUF(sctx, name, gguf); err != nil {
		return err
	}
	return then(s)
}

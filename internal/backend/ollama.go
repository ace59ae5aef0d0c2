package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Ollama is a client of the few Ollama endpoints the supervisor needs; the
// simulator serves them too.
type Ollama struct {
	BaseURL string
	Client  *http.Client
}

// ModelInfo is what a run header records about the model.
type ModelInfo struct {
	Name    string         `json:"name"`
	Digest  string         `json:"digest,omitempty"`
	Size    int64          `json:"size,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	// ModelInfo is /api/show's model_info (architecture, block_count, …).
	ModelInfo map[string]any `json:"model_info,omitempty"`
}

// PSModel is one loaded model in /api/ps.
type PSModel struct {
	Name     string `json:"name"`
	Model    string `json:"model"`
	Size     int64  `json:"size"`
	SizeVRAM int64  `json:"size_vram"`
	Digest   string `json:"digest"`
	// ContextLength is sent by newer Ollama versions only.
	ContextLength int `json:"context_length"`
}

// ErrModelMissing is returned by Model when the engine does not have it.
type ErrModelMissing struct {
	Model     string
	Available []string
}

func (e *ErrModelMissing) Error() string {
	avail := "none"
	if len(e.Available) > 0 {
		avail = strings.Join(e.Available, ", ")
	}
	return fmt.Sprintf("model %q is not in this Ollama's models (available: %s); get it with `ollama pull %s`, "+
		"or create it from a GGUF file with `ollama create %s -f Modelfile` (Modelfile: `FROM /path/model.gguf`) "+
		"using the same OLLAMA_MODELS folder", e.Model, avail, e.Model, e.Model)
}

func (o *Ollama) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return http.DefaultClient
}

func (o *Ollama) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.client().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// StatusError is a non-200 answer.
type StatusError struct {
	Path   string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: status %d: %s", e.Path, e.Status, e.Body)
}

// Version returns /api/version's version.
func (o *Ollama) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	err := o.do(ctx, http.MethodGet, "/api/version", nil, &v)
	return v.Version, err
}

// Model checks that the model exists and returns what the engine says of it
// (/api/tags for the digest and size, /api/show for details and
// model_info). A missing model is an *ErrModelMissing.
func (o *Ollama) Model(ctx context.Context, name string) (ModelInfo, error) {
	var tags struct {
		Models []struct {
			Name   string `json:"name"`
			Model  string `json:"model"`
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"models"`
	}
	if err := o.do(ctx, http.MethodGet, "/api/tags", nil, &tags); err != nil {
		return ModelInfo{}, fmt.Errorf("list models: %w", err)
	}
	info := ModelInfo{Name: name}
	var avail []string
	found := false
	for _, m := range tags.Models {
		avail = append(avail, m.Name)
		if m.Name == name || m.Model == name || m.Name == name+":latest" {
			info.Digest, info.Size, found = m.Digest, m.Size, true
		}
	}
	if !found {
		return ModelInfo{}, &ErrModelMissing{Model: name, Available: avail}
	}
	var show struct {
		Details   map[string]any `json:"details"`
		ModelInfo map[string]any `json:"model_info"`
	}
	if err := o.do(ctx, http.MethodPost, "/api/show", map[string]any{"model": name}, &show); err != nil {
		return info, fmt.Errorf("show model %s: %w", name, err)
	}
	info.Details, info.ModelInfo = show.Details, show.ModelInfo
	return info, nil
}

// Load loads the model (an empty generate request) and keeps it loaded; it
// returns the load time as the engine measured it (load_duration) and as
// the supervisor saw it.
func (o *Ollama) Load(ctx context.Context, model string) (server, wall time.Duration, err error) {
	req := map[string]any{"model": model, "keep_alive": -1, "stream": false}
	var out struct {
		LoadDuration int64 `json:"load_duration"`
	}
	start := time.Now()
	if err := o.do(ctx, http.MethodPost, "/api/generate", req, &out); err != nil {
		return 0, time.Since(start), fmt.Errorf("load model %s: %w", model, err)
	}
	return time.Duration(out.LoadDuration), time.Since(start), nil
}

// PS returns the loaded models.
func (o *Ollama) PS(ctx context.Context) ([]PSModel, error) {
	var ps struct {
		Models []PSModel `json:"models"`
	}
	err := o.do(ctx, http.MethodGet, "/api/ps", nil, &ps)
	return ps.Models, err
}

// KVCacheBytesPerSlot estimates one slot's KV cache from /api/show's
// model_info: 2 (K and V) × layers × KV heads × head dimension × context ×
// 2 bytes (f16). false when model_info lacks a figure.
func KVCacheBytesPerSlot(modelInfo map[string]any, numCtx int) (int64, bool) {
	arch, _ := modelInfo["general.architecture"].(string)
	num := func(key string) (int64, bool) {
		f, ok := modelInfo[arch+"."+key].(float64)
		return int64(f), ok && f > 0
	}
	layers, ok1 := num("block_count")
	width, ok2 := num("embedding_length")
	heads, ok3 := num("attention.head_count")
	kvHeads, ok4 := num("attention.head_count_kv")
	if !ok4 {
		kvHeads, ok4 = heads, ok3
	}
	if !(ok1 && ok2 && ok3 && ok4) || numCtx <= 0 {
		return 0, false
	}
	headDim := width / heads
	if kd, ok := num("attention.key_length"); ok {
		headDim = kd
	}
	return 2 * layers * kvHeads * headDim * int64(numCtx) * 2, true
}

// Warm sends one short generation so that the first measured request does
// not pay for anything the engine does once.
func (o *Ollama) Warm(ctx context.Context, model string) error {
	req := map[string]any{"model": model, "prompt": "Say hello.", "stream": false,
		"options": map[string]any{"num_predict": 4}}
	if err := o.do(ctx, http.MethodPost, "/api/generate", req, nil); err != nil {
		return fmt.Errorf("warm model %s: %w", model, err)
	}
	return nil
}

package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RequestIDHeader carries the simulator's id of a response, the RequestID
// of its ChunkSent records.
const RequestIDHeader = "X-Simulator-Request-Id"

// Server is a simulated Ollama server. It is an http.Handler; Close stops it.
type Server struct {
	cfg     Config
	prof    Profile
	mem     Memory
	eng     *engine
	started time.Time // the model's modified_at

	nextID atomic.Uint64
	gtMu   sync.Mutex

	loadMu      sync.Mutex // guards the fields below
	loaded      bool
	attempt     *loadAttempt // the load in progress, nil when none
	alloc       *allocation
	active      int           // requests using the loaded model
	keepAlive   time.Duration // how long an idle model stays loaded (< 0: forever)
	expires     time.Time     // when an idle model unloads
	unloadTimer *time.Timer

	closeOnce sync.Once
	closing   chan struct{}
	loads     sync.WaitGroup
}

// New validates cfg and starts a server. The model loads on the first
// request, as Ollama's does.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg, prof := cfg.withDefaults()
	if err := prof.validate(); err != nil {
		return nil, fmt.Errorf("simulator: profile %q: %w", prof.Name, err)
	}
	s := &Server{cfg: cfg, prof: prof, started: time.Now().UTC(), closing: make(chan struct{}), keepAlive: cfg.KeepAlive}
	s.mem = Memory{Weights: prof.WeightsBytes, KVPerSlot: prof.KVBytesPerSlot(cfg.ContextLength), Slots: cfg.Parallel}
	s.mem.Resident = int64(float64(s.mem.Weights)*cfg.WeightsScale) + int64(s.mem.Slots)*s.mem.KVPerSlot
	s.eng = newEngine(prof, cfg.Parallel, cfg.MaxQueue, cfg.ContextLength, cfg.TimeScale)
	return s, nil
}

// Profile is the profile the server runs, with Config.Model applied.
func (s *Server) Profile() Profile { return s.prof }

// Config is the server's configuration with every default filled in.
func (s *Server) Config() Config { return s.cfg }

// Memory is what the model takes when loaded.
func (s *Server) Memory() Memory { return s.mem }

// Load returns how many requests wait for a slot and how many slots are busy.
func (s *Server) Load() (waiting, busy int) { return s.eng.load() }

// Close stops the server: requests still waiting or generating end at once
// (streams are cut, waiting requests get a 500, as do later ones) and the
// memory is released. It is idempotent; every goroutine the server started
// is gone when it returns.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.eng.close()
		s.loads.Wait()
		s.loadMu.Lock()
		s.stopUnloadLocked()
		s.alloc, s.loaded = nil, false
		s.loadMu.Unlock()
	})
	return nil
}

// ServeHTTP routes as Ollama's gin router does: unknown paths and methods
// get gin's plain-text 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs := &responder{s: s, w: w, id: "sim-" + strconv.FormatUint(s.nextID.Add(1), 10), path: r.URL.Path}
	w.Header().Set(RequestIDHeader, rs.id)
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	post := r.Method == http.MethodPost
	switch path := r.URL.Path; {
	case path == "/" && get:
		rs.text(http.StatusOK, "Ollama is running")
	case path == "/api/version" && get:
		rs.ollamaJSON(http.StatusOK, map[string]string{"version": s.cfg.Version})
	case path == "/api/tags" && get:
		s.handleTags(rs)
	case path == "/api/ps" && r.Method == http.MethodGet:
		s.handlePs(rs)
	case path == "/api/show" && post:
		s.handleShow(rs, r)
	case path == "/api/chat" && post:
		s.handleOllamaChat(rs, r)
	case path == "/api/generate" && post:
		s.handleOllamaGenerate(rs, r)
	case path == "/v1/chat/completions" && post:
		s.handleOpenAIChat(rs, r)
	case path == "/v1/completions" && post:
		s.handleOpenAICompletion(rs, r)
	case path == "/v1/responses" && post:
		s.handleResponses(rs, r)
	case path == "/v1/messages" && post:
		s.handleMessages(rs, r)
	case path == "/v1/models" && r.Method == http.MethodGet:
		s.handleOpenAIModels(rs)
	case strings.HasPrefix(path, "/v1/models/") && r.Method == http.MethodGet:
		s.handleOpenAIModel(rs, strings.TrimPrefix(path, "/v1/models/"))
	case routeMethods(path) != nil && !slices.Contains(routeMethods(path), r.Method):
		// v0.17's router sets HandleMethodNotAllowed: a route of Ollama's
		// with another method gets gin's plain-text 405.
		rs.whole(http.StatusMethodNotAllowed, "text/plain", []byte("405 method not allowed"), 0)
	default:
		rs.whole(http.StatusNotFound, "text/plain", []byte("404 page not found"), 0) // gin's own 404
	}
}

// ollamaRoutes are Ollama v0.17.4's routes (server/routes.go) and their
// methods, the simulated and the others alike.
var ollamaRoutes = map[string][]string{
	"/": {"GET", "HEAD"}, "/api/version": {"GET", "HEAD"}, "/api/status": {"GET"},
	"/api/pull": {"POST"}, "/api/push": {"POST"}, "/api/tags": {"GET", "HEAD"}, "/api/show": {"POST"},
	"/api/delete": {"DELETE"}, "/api/me": {"POST"}, "/api/signout": {"POST"}, "/api/create": {"POST"},
	"/api/copy": {"POST"}, "/api/experimental/aliases": {"GET", "POST", "DELETE"}, "/api/ps": {"GET"},
	"/api/generate": {"POST"}, "/api/chat": {"POST"}, "/api/embed": {"POST"}, "/api/embeddings": {"POST"},
	"/v1/chat/completions": {"POST"}, "/v1/completions": {"POST"}, "/v1/embeddings": {"POST"},
	"/v1/models": {"GET"}, "/v1/responses": {"POST"}, "/v1/images/generations": {"POST"},
	"/v1/images/edits": {"POST"}, "/v1/messages": {"POST"},
}

// routeMethods returns the methods of the route a path belongs to; nil
// when it is none of Ollama's.
func routeMethods(path string) []string {
	if m, ok := ollamaRoutes[path]; ok {
		return m
	}
	for prefix, m := range map[string][]string{"/api/blobs/": {"POST", "HEAD"}, "/api/user/keys/": {"DELETE"}, "/v1/models/": {"GET"}} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "" && !strings.Contains(rest, "/") {
			return m
		}
	}
	return nil
}

// knows reports whether name is the served model, matched as Ollama
// matches names: case-insensitive, default host, namespace and tag filled.
func (s *Server) knows(name string) bool {
	return name != "" && normalizeName(name) == normalizeName(s.prof.Model)
}

func normalizeName(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "registry.ollama.ai/")
	n = strings.TrimPrefix(n, "library/")
	if strings.LastIndex(n, ":") <= strings.LastIndex(n, "/") {
		n += ":latest"
	}
	return n
}

func (s *Server) log(level slog.Level, msg string, args ...any) {
	if s.cfg.Logger != nil {
		s.cfg.Logger.Log(context.Background(), level, msg, args...)
	}
}

// sleep waits d (scaled) unless the request or the server ends first.
func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	d = time.Duration(float64(d) * s.cfg.TimeScale)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errClosed
	}
}

// responder writes one response and reports every chunk it sends.
type responder struct {
	s     *Server
	w     http.ResponseWriter
	id    string
	path  string
	index int
}

// chunk is one piece of a response: an NDJSON line, an SSE event, a body.
type chunk struct {
	data   []byte
	tokens int
}

// send writes chunks, flushes once, and reports each with the moment the
// flush returned. The status and headers go out with the first send.
func (rs *responder) send(final bool, chunks ...chunk) error {
	writeAt := time.Now()
	for _, c := range chunks {
		if _, err := rs.w.Write(c.data); err != nil {
			return err
		}
	}
	if f, ok := rs.w.(http.Flusher); ok {
		f.Flush()
	}
	sent := time.Now()
	for i, c := range chunks {
		rs.s.groundTruth(ChunkSent{RequestID: rs.id, Path: rs.path, Index: rs.index, WriteAt: writeAt, SentAt: sent,
			Tokens: c.tokens, Final: final && i == len(chunks)-1, Bytes: len(c.data)})
		rs.index++
	}
	return nil
}

func (s *Server) groundTruth(c ChunkSent) {
	if s.cfg.OnChunkSent != nil {
		s.cfg.OnChunkSent(c)
	}
	if s.cfg.GroundTruth != nil {
		line, _ := json.Marshal(c)
		s.gtMu.Lock()
		s.cfg.GroundTruth.Write(append(line, '\n'))
		s.gtMu.Unlock()
	}
}

// whole sends a complete body of the given type and status.
func (rs *responder) whole(status int, contentType string, body []byte, tokens int) {
	rs.w.Header().Set("Content-Type", contentType)
	rs.w.Header().Set("Content-Length", strconv.Itoa(len(body))) // as gin's unflushed bodies have
	rs.w.WriteHeader(status)
	rs.send(true, chunk{data: body, tokens: tokens}) //nolint:errcheck // the client went away
}

func (rs *responder) text(status int, body string) {
	rs.whole(status, "text/plain; charset=utf-8", []byte(body), 0)
}

// ollamaJSON writes v as gin's c.JSON does.
func (rs *responder) ollamaJSON(status int, v any) {
	b, _ := json.Marshal(v)
	rs.whole(status, "application/json; charset=utf-8", b, 0)
}

// ollamaError writes Ollama's {"error": msg}.
func (rs *responder) ollamaError(status int, msg string) {
	rs.ollamaJSON(status, map[string]string{"error": msg})
}

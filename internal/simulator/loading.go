package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Loading and unloading the model, as Ollama's scheduler does: the first
// request loads it (Profile.LoadTime, the memory check, the allocation), and
// it unloads when it has been idle for its keep-alive.

type loadAttempt struct {
	done    chan struct{}
	err     error
	waiters int // requests waiting for this load, under loadMu
}

// forever is Ollama's keep-alive for a negative value.
const forever = time.Duration(math.MaxInt64)

// acquire waits until the model is loaded, loading it when it is not, and
// counts the request as using it until release. A load that fails (the
// memory limit) fails every request waiting for it; the next request tries
// again, as Ollama's scheduler does.
func (s *Server) acquire(ctx context.Context) error {
	for {
		s.loadMu.Lock()
		if s.loaded {
			s.active++
			s.stopUnloadLocked()
			s.loadMu.Unlock()
			return nil
		}
		a := s.attempt
		if a == nil {
			a = &loadAttempt{done: make(chan struct{})}
			s.attempt = a
			s.loads.Add(1)
			go s.load(a)
		}
		// Ollama's scheduler works on the first request while the others
		// wait in its pending queue, which holds OLLAMA_MAX_QUEUE.
		if a.waiters > s.cfg.MaxQueue {
			s.loadMu.Unlock()
			return errQueueFull
		}
		a.waiters++
		s.loadMu.Unlock()
		select {
		case <-a.done:
			if a.err != nil {
				return a.err
			}
			// Loaded: count this request in (an unload may come between).
		case <-ctx.Done():
			s.loadMu.Lock()
			a.waiters--
			s.loadMu.Unlock()
			return ctx.Err()
		case <-s.closing:
			return errClosed
		}
	}
}

// release ends a request's use of the model. keepAlive is the request's
// keep_alive, nil when it gave none (the last one given stays in force, as
// Ollama keeps a runner's session duration).
func (s *Server) release(keepAlive *time.Duration) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.active--
	if keepAlive != nil {
		s.keepAlive = *keepAlive
	}
	if s.active > 0 || !s.loaded {
		return
	}
	switch ka := s.keepAlive; {
	case ka == 0:
		s.unloadLocked()
	case ka < 0 || ka == forever:
		s.expires = time.Now().Add(forever)
	default:
		s.expires = time.Now().Add(ka)
		s.unloadTimer = time.AfterFunc(ka, s.expire)
	}
}

// unloadIdle answers a request with keep_alive 0 and nothing to generate:
// the model unloads as soon as no request uses it.
func (s *Server) unloadIdle() {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.keepAlive = 0
	if s.active == 0 && s.loaded {
		s.unloadLocked()
	}
}

func (s *Server) expire() {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	select {
	case <-s.closing:
		return
	default:
	}
	if s.active == 0 && s.loaded && !time.Now().Before(s.expires) {
		s.unloadLocked()
	}
}

func (s *Server) stopUnloadLocked() {
	if s.unloadTimer != nil {
		s.unloadTimer.Stop()
		s.unloadTimer = nil
	}
}

func (s *Server) unloadLocked() {
	s.stopUnloadLocked()
	s.loaded, s.alloc = false, nil
	s.log(slog.LevelInfo, "model unloaded", "model", s.prof.Model)
}

// expiresAt is /api/ps expires_at: when the idle model unloads, or, while
// requests use it, the keep-alive from now.
func (s *Server) expiresAtLocked() time.Time {
	if s.active == 0 && !s.expires.IsZero() {
		return s.expires
	}
	ka := s.keepAlive
	if ka < 0 {
		ka = forever
	}
	return time.Now().Add(ka)
}

func (s *Server) load(a *loadAttempt) {
	defer s.loads.Done()
	var alloc *allocation
	err := s.checkMemory()
	if err == nil {
		s.log(slog.LevelInfo, "starting llama server", "model", s.prof.Model, "parallel", s.cfg.Parallel,
			"ctx-size", s.cfg.ContextLength*s.cfg.Parallel, "size", humanBytes2(s.mem.Total()))
		t := time.NewTimer(time.Duration(float64(s.prof.LoadTime) * s.cfg.TimeScale))
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			err = errClosed
		}
	}
	if err == nil && s.cfg.Allocate {
		alloc, err = allocate(s.mem, s.cfg.WeightsScale)
		if err != nil {
			err = fmt.Errorf("load %s: %w", s.prof.Model, err)
		}
	}
	if err != nil {
		// Logged and reported before the waiting requests hear of it.
		s.log(slog.LevelError, "error loading llama server", "error", err)
		if s.cfg.OnLoadFailure != nil && err != errClosed {
			s.cfg.OnLoadFailure(err)
		}
	}
	s.loadMu.Lock()
	s.attempt = nil
	if err == nil {
		s.loaded, s.alloc, s.expires = true, alloc, time.Time{}
	}
	a.err = err
	close(a.done)
	s.loadMu.Unlock()
	if err != nil {
		return
	}
	resident := int64(0)
	if alloc != nil {
		resident = alloc.bytes()
	}
	s.log(slog.LevelInfo, "llama runner started", "model", s.prof.Model, "resident", humanBytes2(resident))
}

func (s *Server) checkMemory() error {
	if s.cfg.MemoryLimit <= 0 || s.mem.Total() <= s.cfg.MemoryLimit {
		return nil
	}
	s.log(slog.LevelWarn, "model request too large for system", "requested", humanBytes2(s.mem.Total()),
		"available", s.cfg.MemoryLimit, "parallel", s.cfg.Parallel, "ctx", s.cfg.ContextLength)
	return errMemory(s.mem.Total(), s.cfg.MemoryLimit)
}

// parseKeepAlive reads a request's keep_alive as Ollama's api.Duration
// does: a number of seconds or a duration string; negative means forever.
// nil when absent.
func parseKeepAlive(raw json.RawMessage) (*time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var d time.Duration
	switch t := v.(type) {
	case float64:
		d = time.Duration(int(t) * int(time.Second))
		if t < 0 {
			d = forever
		}
	case string:
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return nil, err
		}
		if d < 0 {
			d = forever
		}
	default:
		return nil, fmt.Errorf("Unsupported type: '%T'", v)
	}
	return &d, nil
}

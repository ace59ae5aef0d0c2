package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// AdminHandler serves the admin listener: /metrics (when metrics is not
// nil), /healthz (the process is up) and /readyz (every upstream pool has
// an upstream that accepts connections, and the proxy is not draining).
func (g *Gateway) AdminHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("/metrics", metrics)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := g.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, err)
			return
		}
		_, _ = fmt.Fprintln(w, "ready")
	})
	return mux
}

// Ready reports whether the proxy can serve: not draining, and in every
// pool at least one upstream accepts a TCP connection (each tried for at
// most a second).
func (g *Gateway) Ready(ctx context.Context) error {
	if g.draining.Load() {
		return fmt.Errorf("not ready: draining")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		bad  []string
		wg   sync.WaitGroup
		dial net.Dialer
	)
	for _, p := range g.pools {
		wg.Go(func() {
			var errs []string
			for _, s := range p.urls {
				u, _ := parseUpstream(s)
				host, port := splitHostPort(u)
				c, err := dial.DialContext(ctx, "tcp", net.JoinHostPort(host, fmt.Sprint(port)))
				if err == nil {
					_ = c.Close()
					return
				}
				errs = append(errs, err.Error())
			}
			name := "default pool"
			if p.name != "" {
				name = fmt.Sprintf("pool of model %q", p.name)
			}
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s: no upstream reachable (%s)", name, strings.Join(errs, "; ")))
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		return fmt.Errorf("not ready: %s", strings.Join(bad, "; "))
	}
	return nil
}

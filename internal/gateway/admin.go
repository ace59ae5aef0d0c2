package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/tokentrace/tokentrace/internal/telemetry"
)

// attrPool names an upstream's pool on the per-upstream gauges: the model
// routed to it, or "default".
const attrPool = attribute.Key("tokentrace.pool")

// AdminHandler serves the admin listener: /metrics (when metrics is not
// nil), /healthz (the process is up) and /readyz (every upstream pool has
// an upstream that is not ejected and accepts connections, and the proxy
// is not draining; the body lists each upstream's state).
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
		err := g.Ready(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, err)
		} else {
			_, _ = fmt.Fprintln(w, "ready")
		}
		for _, line := range g.upstreamStates() {
			_, _ = fmt.Fprintln(w, line)
		}
	})
	return mux
}

// upstreamStates is one line per upstream: pool, address, in-flight
// requests, and whether it is ejected.
func (g *Gateway) upstreamStates() []string {
	now := time.Now()
	var out []string
	for _, p := range g.pools {
		for _, u := range p.ups {
			state := "up"
			if u.ejected(now) {
				state = "ejected"
			}
			out = append(out, fmt.Sprintf("%s %s %s in_flight=%d", poolName(p), u.url.Host, state, u.inflight.Load()))
		}
	}
	return out
}

func poolName(p *pool) string {
	if p.name == "" {
		return "default"
	}
	return clipText(p.name, MaxAttributeLen)
}

// Ready reports whether the proxy can serve: not draining, and in every
// pool at least one upstream that is not ejected accepts a TCP connection
// (each tried for at most a second).
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
	now := time.Now()
	for _, p := range g.pools {
		wg.Go(func() {
			var errs []string
			for _, u := range p.ups {
				if u.ejected(now) {
					errs = append(errs, u.url.Host+" is ejected (refused connections)")
					continue
				}
				c, err := dial.DialContext(ctx, "tcp", net.JoinHostPort(u.host, fmt.Sprint(u.port)))
				if err == nil {
					_ = c.Close()
					return
				}
				errs = append(errs, err.Error())
			}
			name := "default pool"
			if p.name != "" {
				name = fmt.Sprintf("pool of model %q", clipText(p.name, MaxAttributeLen))
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

// observeUpstreams reports, per upstream, whether it takes requests (1) or
// is ejected (0), and its requests in flight. The returned function
// unregisters the callback.
func (g *Gateway) observeUpstreams(mp metric.MeterProvider) (func() error, error) {
	m := mp.Meter(telemetry.ScopeName)
	up, err := m.Int64ObservableGauge(telemetry.MetricUpstreamUp, metric.WithUnit("1"),
		metric.WithDescription("1 when the upstream takes new requests, 0 while it is ejected for refusing connections."))
	if err != nil {
		return nil, fmt.Errorf("make upstream health gauge: %w", err)
	}
	inflight, err := m.Int64ObservableGauge(telemetry.MetricUpstreamInFlight, metric.WithUnit("{request}"),
		metric.WithDescription("Requests sent to the upstream whose responses are not finished."))
	if err != nil {
		return nil, fmt.Errorf("make upstream in-flight gauge: %w", err)
	}
	type series struct {
		u    *upstream
		opts metric.ObserveOption
	}
	var all []series
	for _, p := range g.pools {
		for _, u := range p.ups {
			all = append(all, series{u, metric.WithAttributeSet(attribute.NewSet(
				semconv.ServerAddressKey.String(u.host), semconv.ServerPortKey.Int(u.port), attrPool.String(poolName(p))))})
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		for _, s := range all {
			v := int64(1)
			if s.u.ejected(now) {
				v = 0
			}
			o.ObserveInt64(up, v, s.opts)
			o.ObserveInt64(inflight, s.u.inflight.Load(), s.opts)
		}
		return nil
	}, up, inflight)
	if err != nil {
		return nil, fmt.Errorf("register upstream gauges: %w", err)
	}
	return reg.Unregister, nil
}

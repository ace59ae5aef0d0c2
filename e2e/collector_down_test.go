//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/tokentrace/tokentrace/internal/stats"
)

// TestCollectorDownDoesNotSlowTheProxy runs two proxies in front of one simulator: one exporting spans
// to a running collector, one to an address where nothing listens for the whole run. Requests alternate
// between them; the proxy without a collector must answer every request, as fast within noise.
func TestCollectorDownDoesNotSlowTheProxy(t *testing.T) {
	sim := startSimulator(t, "0.2")
	adminUp := hostPort(freePort(t))
	// The collector's own exports go to dead addresses too: only the proxy → collector hop is measured.
	collectorOTLP, _ := startCollector(t, adminUp, hostPort(freePort(t)), "http://"+hostPort(freePort(t)), "")
	up := startProxy(t, "proxy-collector-up", sim, adminUp, collectorOTLP)
	adminDown := hostPort(freePort(t))
	down := startProxy(t, "proxy-collector-down", sim, adminDown, hostPort(freePort(t)))

	const rounds = 40
	var upSecs, downSecs []float64
	for i := range rounds {
		pair := []struct {
			base string
			dst  *[]float64
		}{{up, &upSecs}, {down, &downSecs}}
		if i%2 == 1 { // alternate who goes first, so drift on a busy machine hits both alike
			pair[0], pair[1] = pair[1], pair[0]
		}
		for _, p := range pair {
			code, d := chat(t, p.base, simModel)
			if code != http.StatusOK {
				t.Fatalf("round %d via %s: status %d", i, p.base, code)
			}
			*p.dst = append(*p.dst, d.Seconds())
		}
	}
	su, sd := stats.Summarize(upSecs), stats.Summarize(downSecs)
	t.Logf("request duration, collector up:   p50 %.1f ms  p95 %.1f ms", su.P50*1e3, su.P95*1e3)
	t.Logf("request duration, collector down: p50 %.1f ms  p95 %.1f ms", sd.P50*1e3, sd.P95*1e3)
	// A proxy that waited for the collector would add its connect or export timeouts (seconds). The
	// tolerance is wide because two cores are shared with everything else the CI runs.
	if limit := su.P50*1.5 + 0.05; sd.P50 > limit {
		t.Errorf("collector down: p50 %.1f ms > %.1f ms (1.5 × %.1f ms + 50 ms)", sd.P50*1e3, limit*1e3, su.P50*1e3)
	}

	// The baseline really exported, and the other proxy's spans were not silently lost: it counts them
	// as dropped.
	for _, c := range []struct{ admin, metric string }{
		{adminUp, "tokentrace_telemetry_spans_exported_total"},
		{adminDown, "tokentrace_telemetry_spans_dropped_total"},
	} {
		eventually(t, 60*time.Second, time.Second, c.metric+" on "+c.admin, func() error {
			n, err := counter("http://"+c.admin+"/metrics", c.metric)
			if err != nil {
				return err
			}
			if n < 1 {
				return fmt.Errorf("%s = %v", c.metric, n)
			}
			return nil
		})
	}
}

var counterLine = regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+)`)

// counter sums a metric's samples on a Prometheus text endpoint.
func counter(u, name string) (float64, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	found := false
	for _, m := range counterLine.FindAllStringSubmatch(string(body), -1) {
		if m[1] != name {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no %s on %s", name, u)
	}
	return sum, nil
}

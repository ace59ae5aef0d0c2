package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a gateway under test, served on loopback, with in-memory telemetry.
type rig struct {
	gw     *Gateway
	url    string
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	client *http.Client
}

// newRig serves a Gateway in front of upstreams. cfg's Upstreams default
// to upstreams; its providers are replaced by in-memory ones.
func newRig(t *testing.T, cfg Config, upstreams ...string) *rig {
	t.Helper()
	if len(cfg.Upstreams) == 0 {
		cfg.Upstreams = upstreams
	}
	rg := &rig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rg.spans),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{AttributeValueLengthLimit: -1, AttributeCountLimit: 128,
			EventCountLimit: 2000, LinkCountLimit: 128, AttributePerEventCountLimit: 128, AttributePerLinkCountLimit: 128}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rg.reader))
	cfg.TracerProvider, cfg.MeterProvider = tp, mp
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rg.gw = gw
	srv := httptest.NewServer(gw)
	rg.url = srv.URL
	tr := &http.Transport{DisableCompression: true}
	rg.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		tr.CloseIdleConnections()
		srv.Close()
		_ = tp.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	})
	return rg
}

// fakeUpstream serves h on loopback for the test's duration.
func fakeUpstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// post sends a request through the rig and returns the response body.
func (rg *rig) do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, rg.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	before := rg.gw.Active()
	resp, err := rg.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	rg.settle(t, before)
	return resp, b
}

// settle waits until the gateway serves no more requests than n again: a
// client can hold a whole response before the handler has ended its span
// and recorded its metrics.
func (rg *rig) settle(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for rg.gw.Active() > n {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still serves %d requests, want %d", rg.gw.Active(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// span returns the one ended span of the given kind whose name starts with prefix.
func (rg *rig) span(t *testing.T, prefix string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range rg.spans.Ended() {
		if strings.HasPrefix(s.Name(), prefix) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d ended spans named %q*, want 1 (all: %v)", len(found), prefix, spanNames(rg.spans.Ended()))
	}
	return found[0]
}

func spanNames(ss []sdktrace.ReadOnlySpan) []string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name())
	}
	return n
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// metrics collects the rig's metrics by name.
func (rg *rig) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rg.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// histPoints returns the data points of a float histogram.
func histPoints(t *testing.T, ms map[string]metricdata.Metrics, name string) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Fatalf("metric %s not recorded", name)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("metric %s is %T, not a float histogram", name, m.Data)
	}
	return h.DataPoints
}

func within(t *testing.T, what string, got, want, tolBelow, tolAbove float64) {
	t.Helper()
	if got < want-tolBelow || got > want+tolAbove {
		t.Errorf("%s = %.4f, want %.4f (-%.3f/+%.3f)", what, got, want, tolBelow, tolAbove)
	}
}

// chunked writes chunks with a flush after each, pausing before each as told.
func chunked(w http.ResponseWriter, contentType string, chunks []string, pause time.Duration, first time.Duration) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	f.Flush()
	for i, c := range chunks {
		d := pause
		if i == 0 {
			d = first
		}
		if d > 0 {
			time.Sleep(d)
		}
		_, _ = io.WriteString(w, c)
		f.Flush()
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

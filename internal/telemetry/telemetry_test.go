package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stuckExporter blocks every export until released, like a collector that hangs.
type stuckExporter struct {
	release chan struct{}
	mu      sync.Mutex
	got     int
}

func (e *stuckExporter) ExportSpans(ctx context.Context, s []sdktrace.ReadOnlySpan) error {
	select {
	case <-e.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	e.got += len(s)
	e.mu.Unlock()
	return nil
}
func (e *stuckExporter) Shutdown(context.Context) error { return nil }

func TestBatchProcessorNeverBlocksAndCountsDrops(t *testing.T) {
	exp := &stuckExporter{release: make(chan struct{})}
	p := NewBatchProcessor(exp, BatchConfig{QueueSize: 4, BatchSize: 1, BatchTimeout: time.Hour, ExportTimeout: time.Hour})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := tp.Tracer("t")
	const n = 50
	start := time.Now()
	for range n {
		_, s := tr.Start(context.Background(), "x")
		s.End()
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("ending %d spans with a stuck exporter took %v", n, el)
	}
	// One span is held by the stuck export, 4 wait in the queue: the rest are dropped.
	if d := p.Dropped(); d < n-6 || d > n-4 {
		t.Fatalf("dropped %d of %d spans, want %d..%d", d, n, n-6, n-4)
	}
	close(exp.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := int(p.Exported()) + int(p.Dropped()); got != n {
		t.Fatalf("exported %d + dropped %d = %d, want %d", p.Exported(), p.Dropped(), got, n)
	}
}

// batchRecorder records the size of every batch exported.
type batchRecorder struct {
	batches chan int
}

func (e *batchRecorder) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	e.batches <- len(s)
	return nil
}
func (e *batchRecorder) Shutdown(context.Context) error { return nil }

// The processor exports a batch as soon as it is queued, and a partial one
// only at the batch timeout, a flush or the shutdown.
func TestBatchProcessorSendsFullBatchesAtOnce(t *testing.T) {
	exp := &batchRecorder{batches: make(chan int, 10)}
	p := NewBatchProcessor(exp, BatchConfig{QueueSize: 8, BatchSize: 3, BatchTimeout: time.Hour, ExportTimeout: time.Hour})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	defer func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	end := func(n int) {
		for range n {
			_, s := tp.Tracer("t").Start(context.Background(), "x")
			s.End()
		}
	}
	end(7)
	for want := range 2 {
		select {
		case n := <-exp.batches:
			if n != 3 {
				t.Fatalf("batch %d has %d spans, want 3", want, n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d of 3 spans not exported within 10 s", want)
		}
	}
	select {
	case n := <-exp.batches:
		t.Fatalf("a partial batch of %d spans was exported before the timeout or a flush", n)
	case <-time.After(50 * time.Millisecond):
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := <-exp.batches; n != 1 {
		t.Fatalf("the flush exported %d spans, want the 1 left", n)
	}
}

func TestTraceConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(TraceConfig) bool
		wantErr string
	}{
		{"defaults", nil, func(c TraceConfig) bool {
			return c.ServiceName == "svc" && !c.Disabled && c.Sampler == nil && c.FromEnv && c.Protocol == ""
		}, ""},
		{"endpoint and headers", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=a%20b,x=y",
			"OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_SERVICE_NAME": "named",
		}, func(c TraceConfig) bool {
			return c.Endpoint == "http://collector:4317" && c.Headers["api-key"] == "a b" && c.Headers["x"] == "y" && c.Insecure && c.ServiceName == "named"
		}, ""},
		{"traces endpoint wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "a:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "b:2"},
			func(c TraceConfig) bool { return c.Endpoint == "b:2" }, ""},
		{"disabled", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, func(c TraceConfig) bool { return c.Disabled }, ""},
		{"http protocol", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			func(c TraceConfig) bool { return c.Protocol == ProtocolHTTP }, ""},
		{"bad protocol", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, nil, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"bsp", map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_BSP_EXPORT_TIMEOUT": "3000"},
			func(c TraceConfig) bool {
				return c.Batch.QueueSize == 10 && c.Batch.BatchTimeout == 250*time.Millisecond && c.Batch.ExportTimeout == 3*time.Second
			}, ""},
		{"bad ratio", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, nil, "OTEL_TRACES_SAMPLER_ARG"},
		{"bad exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, nil, "OTEL_TRACES_EXPORTER"},
		{"bad insecure", map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "maybe"}, nil, "OTEL_EXPORTER_OTLP_INSECURE"},
		{"bad headers", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, nil, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"bad queue", map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, nil, "OTEL_BSP_MAX_QUEUE_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := TraceConfigFromEnv(func(k string) string { return tt.env[k] }, "svc")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("config %+v is not what the environment says", c)
			}
		})
	}
}

// TestSamplerKeepsTheSpecMeanings: each OTEL_TRACES_SAMPLER value makes
// the SDK sampler the specification names (traceidratio ignores the parent).
func TestSamplerKeepsTheSpecMeanings(t *testing.T) {
	for value, want := range map[string]sdktrace.Sampler{
		"always_on":                sdktrace.AlwaysSample(),
		"always_off":               sdktrace.NeverSample(),
		"traceidratio":             sdktrace.TraceIDRatioBased(0.25),
		"parentbased_always_on":    sdktrace.ParentBased(sdktrace.AlwaysSample()),
		"parentbased_always_off":   sdktrace.ParentBased(sdktrace.NeverSample()),
		"parentbased_traceidratio": sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.25)),
	} {
		env := map[string]string{"OTEL_TRACES_SAMPLER": value, "OTEL_TRACES_SAMPLER_ARG": "0.25"}
		c, err := TraceConfigFromEnv(func(k string) string { return env[k] }, "svc")
		if err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		if c.Sampler == nil || c.Sampler.Description() != want.Description() {
			t.Errorf("OTEL_TRACES_SAMPLER=%s made %v, want %s", value, c.Sampler, want.Description())
		}
	}
	// A sampled parent does not force traceidratio's decision.
	c, _ := TraceConfigFromEnv(func(k string) string {
		return map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}[k]
	}, "svc")
	tr, err := NewTracing(context.Background(), TraceConfig{ServiceName: "t", Disabled: true, Sampler: c.Sampler})
	if err != nil {
		t.Fatal(err)
	}
	parent := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	if _, s := tr.Provider.Tracer("t").Start(parent, "x"); s.SpanContext().IsSampled() {
		t.Error("traceidratio 0 sampled a span because its parent was sampled")
	}
	_ = tr.Shutdown(context.Background())
}

// TestOTLPOverHTTPProtobuf: with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
// the spans arrive as an OTLP/HTTP POST to /v1/traces of the endpoint.
func TestOTLPOverHTTPProtobuf(t *testing.T) {
	got := make(chan string, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")
	}))
	t.Cleanup(collector.Close)
	env := map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}
	for k, v := range env {
		t.Setenv(k, v) // the exporter reads its own settings, as the SDK defines them
	}
	c, err := TraceConfigFromEnv(func(k string) string { return env[k] }, "svc")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTracing(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	_, s := tr.Provider.Tracer("t").Start(context.Background(), "x")
	s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if req != "POST /v1/traces application/x-protobuf" {
			t.Errorf("collector got %q", req)
		}
	default:
		t.Fatal("no export reached the OTLP/HTTP collector")
	}
}

// TestMetricsCarryTheResourceAndProcessSeries: /metrics names the service
// (target_info) and has the process and Go runtime series.
func TestMetricsCarryTheResourceAndProcessSeries(t *testing.T) {
	tr, err := NewTracing(context.Background(), TraceConfig{ServiceName: "tokentrace-test", Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	ms, err := NewMetrics(tr.Resource)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Provider.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	ms.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`target_info{`, `service_name="tokentrace-test"`, "process_resident_memory_bytes ",
		"process_open_fds ", "go_goroutines "} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestNewTracingWithUnreachableCollectorDoesNotDelay(t *testing.T) {
	// Nothing listens on port 1 of loopback: export fails, spans are counted as dropped.
	tr, err := NewTracing(context.Background(), TraceConfig{ServiceName: "t", Endpoint: "127.0.0.1:1", Insecure: true,
		Batch: BatchConfig{BatchTimeout: 10 * time.Millisecond, ExportTimeout: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 100 {
		_, s := tr.Provider.Tracer("t").Start(context.Background(), "x")
		s.End()
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("100 spans took %v with the collector down", el)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.Provider.ForceFlush(ctx)
	if tr.Processor.Dropped() == 0 {
		t.Fatal("no span counted as dropped with the collector down")
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestInstrumentBucketsReachSeedLatencies(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	in, err := NewInstruments(mp)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in.TTFT.Record(ctx, 27)
	in.Duration.Record(ctx, 250)
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"gen_ai.client.operation.time_to_first_chunk": 120, "gen_ai.client.operation.duration": 300}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			top, ok := want[m.Name]
			if !ok {
				continue
			}
			h := m.Data.(metricdata.Histogram[float64])
			b := h.DataPoints[0].Bounds
			if b[len(b)-1] < top {
				t.Errorf("%s: last bucket %v < %v", m.Name, b[len(b)-1], top)
			}
			delete(want, m.Name)
		}
	}
	if len(want) > 0 {
		t.Fatalf("instruments not collected: %v", want)
	}
}

// prometheusInstruments makes the instruments on a NewMetrics provider.
func prometheusInstruments(tb testing.TB) (*Metrics, *Instruments) {
	tb.Helper()
	ms, err := NewMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	in, err := NewInstruments(ms.Provider)
	if err != nil {
		tb.Fatal(err)
	}
	return ms, in
}

func TestMetricsHandlerServesOpenMetricsExemplars(t *testing.T) {
	ms, in := prometheusInstruments(t)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	in.TTFT.Record(ctx, 0.3)
	span.End()
	srv := httptest.NewServer(ms.Handler)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	tid := span.SpanContext().TraceID().String()
	if !strings.Contains(text, "gen_ai_client_operation_time_to_first_chunk_seconds_bucket") || !strings.Contains(text, `trace_id="`+tid+`"`) {
		t.Fatalf("no TTFT exemplar with trace id %s in:\n%s", tid, text)
	}
	if err := ms.Provider.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TraceConfig.Exporter takes the batches in place of OTLP, through the
// same batch processor.
func TestTracingHandsBatchesToTheConfiguredExporter(t *testing.T) {
	exp := &batchRecorder{batches: make(chan int, 1)}
	tr, err := NewTracing(context.Background(), TraceConfig{ServiceName: "t", Exporter: exp, Endpoint: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, s := tr.Provider.Tracer("t").Start(context.Background(), "x")
		s.End()
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-exp.batches; got != 2 || tr.Processor.Exported() != 2 {
		t.Fatalf("the exporter got a batch of %d, the processor counts %d exported; want 2 and 2", got, tr.Processor.Exported())
	}
}

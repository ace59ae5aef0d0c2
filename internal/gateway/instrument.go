package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/stream"
)

type exchangeKey struct{}

// exchangeFrom returns the measured exchange a request belongs to, or nil
// when the request is not an inference.
func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// instrument measures an inference request around the rest of the chain,
// and passes any other request straight on, with ctx (the request's, made
// cancellable by ServeHTTP) as the request's context.
func (g *Gateway) instrument(ctx context.Context, w http.ResponseWriter, r *http.Request, scenario string) {
	ep, ok := stream.EndpointOf(r.URL.Path)
	if !ok || r.Method != http.MethodPost {
		g.handler.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	start := time.Now()
	ctx = g.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	ex := &exchange{g: g, start: start, ep: ep, scenario: scenario, provider: g.cfg.ProviderName}
	ctx, ex.span = g.tracer.Start(ctx, ep.Operation, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start))
	ex.recording = ex.span.IsRecording()

	body, err := readBody(r.Body, r.ContentLength, g.cfg.MaxBodyBytes)
	if err != nil {
		ex.meter.Init(stream.Config{API: ep.API, Start: start})
		if errors.Is(err, errBodyTooLarge) {
			ex.meter.Response(http.StatusRequestEntityTooLarge, "")
			writeAPIError(w, r.URL.Path, http.StatusRequestEntityTooLarge, err.Error())
			ex.finish(ctx, nil)
			return
		}
		ex.finish(ctx, err)
		writeAPIError(w, r.URL.Path, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	// The body is forwarded exactly as read; a body that is not JSON is the
	// upstream's to refuse.
	ex.req, _ = stream.ParseRequest(ep, body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	ex.model = g.models.value(boundModel(ex.req.Model))
	ex.initMeter()
	if ex.recording {
		model := clipText(ex.req.Model, MaxAttributeLen)
		name := ep.Operation
		if model != "" {
			name += " " + model
		}
		ex.span.SetName(name)
		attrs := []attribute.KeyValue{
			semconv.GenAIOperationNameKey.String(ep.Operation),
			semconv.GenAIRequestModelKey.String(model),
			semconv.GenAIRequestStreamKey.Bool(ex.req.Stream),
		}
		if ex.req.MaxTokens > 0 {
			attrs = append(attrs, semconv.GenAIRequestMaxTokensKey.Int(ex.req.MaxTokens))
		}
		if scenario != "" {
			attrs = append(attrs, attrScenario.String(scenario))
		}
		if g.cfg.CaptureContent {
			attrs = append(attrs, attrPrompt.String(clip(string(body), maxContent)))
		}
		ex.span.SetAttributes(attrs...)
	}
	ex.activeAttrs = g.labelSets.get(labelKey{kind: setActive, operation: ep.Operation, model: ex.model})
	g.inst.Active.Add(ctx, 1, ex.activeAttrs)
	defer g.inst.Active.Add(context.WithoutCancel(ctx), -1, ex.activeAttrs)

	ctx = context.WithValue(ctx, exchangeKey{}, ex)
	r = r.WithContext(ctx)
	defer func() {
		p := recover()
		ex.finish(ctx, ex.endError(r.Context(), p))
		if p != nil {
			panic(p) // http.ErrAbortHandler: the client must see the stream cut, as the upstream cut it
		}
	}()
	g.handler.ServeHTTP(w, r)
}

// endError is how the exchange ended: the upstream's read or transport
// error, else the client's cancellation, else a clean end.
func (ex *exchange) endError(ctx context.Context, panicked any) error {
	switch {
	case ex.upstreamErr != nil:
		return ex.upstreamErr
	case ex.readErr != nil:
		return ex.readErr
	case !ex.sawEOF && ctx.Err() != nil:
		return ctx.Err()
	case !ex.sawEOF && panicked != nil:
		return errClientWrite
	}
	return nil
}

var errClientWrite = errors.New("write to client failed")

// initMeter sets up the meter of the exchange's response; chunk text is
// read only when the completion is recorded.
func (ex *exchange) initMeter() {
	ex.meter.Init(stream.Config{API: ex.ep.API, Start: ex.start, OnChunk: ex.onChunk, NoChunkText: !ex.g.cfg.CaptureContent})
}

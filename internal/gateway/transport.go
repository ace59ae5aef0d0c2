package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// clientTracing makes the upstream call of an inference request a CLIENT
// span, child of the request's span, and injects its trace context into the
// upstream request. Other requests pass untouched, trace headers and all.
type clientTracing struct {
	base   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func (t *clientTracing) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchangeFrom(req.Context())
	if ex == nil {
		return t.base.RoundTrip(req)
	}
	host, port := splitHostPort(req.URL)
	ctx, span := t.tracer.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(req.Method),
			semconv.ServerAddressKey.String(host),
			semconv.ServerPortKey.Int(port),
			semconv.URLFullKey.String(req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)))
	// The request is the forwarder's own outgoing copy (the forwarder clones
	// the client's request, headers included, before its transport sees it;
	// the pool copies it shallowly per attempt), so the trace context is
	// written into its headers without cloning them again; a second attempt
	// overwrites it with its own span's. The transport below needs nothing
	// of the span's context, so the request keeps its own.
	t.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(stream.ClassifyError(err)))
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCodeKey.Int(resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	resp.Body = &endSpanOnClose{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// endSpanOnClose ends the client span when the body is done with, so the
// span covers the whole streamed response.
type endSpanOnClose struct {
	io.ReadCloser
	span trace.Span
	done bool
}

func (b *endSpanOnClose) underBody() io.ReadCloser { return b.ReadCloser }

func (b *endSpanOnClose) Close() error {
	if !b.done {
		b.done = true
		b.span.End()
	}
	return b.ReadCloser.Close()
}

func splitHostPort(u *url.URL) (string, int) {
	port := u.Port()
	if port == "" {
		if u.Scheme == "https" {
			return u.Hostname(), 443
		}
		return u.Hostname(), 80
	}
	p, _ := strconv.Atoi(port)
	return u.Hostname(), p
}

package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// StatusClientClosedRequest is the status logged when the client left
// before the upstream answered (nginx's 499; the client never sees it).
const StatusClientClosedRequest = 499

// errorHandlerFunc adapts a function to oxy's utils.ErrorHandler.
type errorHandlerFunc func(http.ResponseWriter, *http.Request, error)

func (f errorHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request, err error) { f(w, r, err) }

// handleUpstreamError answers a request the upstream did not: 502 when it
// could not be reached, 504 when it did not answer in time, 499 when the
// client went away first; in the API's own error shape. The answer does not
// name the upstream (clients need not learn the network behind the proxy);
// the log does.
func (g *Gateway) handleUpstreamError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := upstreamErrorStatus(r.Context(), err)
	if ex := exchangeFrom(r.Context()); ex != nil && ex.upstreamErr == nil {
		ex.upstreamErr, ex.proxyStatus = err, status
	}
	if status != StatusClientClosedRequest {
		g.errorLog.Printf("%s %s: answered %d: %v", r.Method, r.URL.Path, status, err)
	}
	writeAPIError(w, r.URL.Path, status, msg)
}

func upstreamErrorStatus(ctx context.Context, err error) (int, string) {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return StatusClientClosedRequest, "the client closed the request"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, "the upstream did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return http.StatusBadGateway, "the upstream refused the connection"
	default:
		return http.StatusBadGateway, "the upstream could not be reached"
	}
}

// writeAPIError answers in the error shape of the API the path belongs
// to (internal/stream's wire table): Ollama's {"error":"…"}, OpenAI's
// {"error":{"message","type","code"}}.
func writeAPIError(w http.ResponseWriter, path string, status int, msg string) {
	body := stream.APIOf(path).Wire().ErrorBody(stream.APIError{Status: status, Code: openAICode(status), Message: msg})
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func openAICode(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusGatewayTimeout:
		return "upstream_timeout"
	case http.StatusServiceUnavailable:
		return "proxy_shutting_down"
	case StatusClientClosedRequest:
		return "client_closed_request"
	case http.StatusBadGateway:
		return "upstream_unreachable"
	}
	return strconv.Itoa(status)
}

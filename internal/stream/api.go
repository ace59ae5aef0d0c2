package stream

import "strings"

// API is the wire protocol of a request and its response. Everything
// tokentrace knows about one is its Wire, registered in the wires table
// below: the proxy, the load tester and the simulator all derive from it.
type API int

const (
	// APIOllama is Ollama's native API (/api/*).
	APIOllama API = iota
	// APIOpenAI is the OpenAI-compatible API (/v1/*).
	APIOpenAI
	// APIResponses is OpenAI's Responses API (/v1/responses).
	APIResponses
	// APIAnthropic is Anthropic's Messages API (/v1/messages).
	APIAnthropic
)

// Wire is one wire API: its endpoints, how to read its chunks, how it
// shapes errors, and how to build a request in it.
type Wire struct {
	API API
	// Name is the API's name in flags, records and labels ("ollama").
	Name string
	// Prefix is the path prefix of the API's requests; APIOf picks the wire
	// with the longest prefix a path has.
	Prefix string
	// Endpoints are its inference endpoints.
	Endpoints []Endpoint
	// StreamType is the Content-Type of its streamed responses, which a
	// streaming client names in Accept.
	StreamType string
	// endMarker, when set, is a chunk that ends a stream and carries nothing
	// else (OpenAI's [DONE]).
	endMarker []byte
	// reader is how chunkScanner.inspect reads its chunks.
	reader chunkReader
	// errorBody is the API's error object for a status, a code and a message.
	errorBody func(e APIError) any
}

// Endpoint is an inference endpoint of a Wire.
type Endpoint struct {
	API       API
	Operation string // gen_ai.operation.name
	// StreamsByDefault: Ollama's chat and generate stream unless told not to;
	// OpenAI's endpoints stream only when asked.
	StreamsByDefault bool
	// Path is the request path.
	Path string
	// Name is what the load tester's -endpoint flag calls it ("chat").
	Name string
	// body builds a request of this endpoint; nil for endpoints the load
	// tester does not send (embeddings).
	body func(r GenRequest) any
}

// wires is the table of every wire API, indexed by API.
var wires = [...]*Wire{
	APIOllama:    &ollamaWire,
	APIOpenAI:    &openAIWire,
	APIResponses: &responsesWire,
	APIAnthropic: &anthropicWire,
}

// Wire is the API's entry in the table.
func (a API) Wire() *Wire {
	if a < 0 || int(a) >= len(wires) {
		return wires[APIOllama]
	}
	return wires[a]
}

func (a API) String() string { return a.Wire().Name }

// Wires lists every wire API, in API order.
func Wires() []*Wire { return wires[:] }

// WireNamed finds a wire API by its Name.
func WireNamed(name string) (*Wire, bool) {
	for _, w := range wires {
		if w.Name == name {
			return w, true
		}
	}
	return nil, false
}

// WireNames lists the Names of every wire API.
func WireNames() []string {
	names := make([]string, len(wires))
	for i, w := range wires {
		names[i] = w.Name
	}
	return names
}

// EndpointNamed finds one of the wire's endpoints by Name.
func (w *Wire) EndpointNamed(name string) (Endpoint, bool) {
	for _, e := range w.Endpoints {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

// endpoints maps every inference path to its endpoint.
var endpoints = func() map[string]Endpoint {
	m := map[string]Endpoint{}
	for _, w := range wires {
		for _, e := range w.Endpoints {
			m[e.Path] = e
		}
	}
	return m
}()

// EndpointOf recognises an inference endpoint; false for any other path
// (model lists, pulls, versions), which are forwarded but not measured.
func EndpointOf(path string) (Endpoint, bool) {
	e, ok := endpoints[strings.TrimSuffix(path, "/")]
	return e, ok
}

// APIOf tells the API family of any path: the wire whose prefix is the
// longest the path has; Ollama's for a path no prefix matches.
func APIOf(path string) API {
	best, n := APIOllama, -1
	for _, w := range wires {
		if len(w.Prefix) > n && strings.HasPrefix(path, w.Prefix) {
			best, n = w.API, len(w.Prefix)
		}
	}
	return best
}

// APIError is an error the proxy answers itself.
type APIError struct {
	Status  int
	Code    string // a short code of the proxy's own ("upstream_timeout")
	Message string
}

// ErrorBody is e in the API's error shape, ready for encoding/json.
func (w *Wire) ErrorBody(e APIError) any { return w.errorBody(e) }

//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"strings"
)

// jaegerTrace is a trace as Jaeger's query API (/api/traces) returns it.
type jaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []jaegerSpan `json:"spans"`
	// Processes maps a span's processID to the service that emitted it.
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []jaegerKV `json:"tags"`
	// Logs are the span's events; the event name is the field "event".
	Logs []struct {
		Fields []jaegerKV `json:"fields"`
	} `json:"logs"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func (s jaegerSpan) tag(key string) string {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// events counts the span's events by name.
func (s jaegerSpan) events() map[string]int {
	n := map[string]int{}
	for _, l := range s.Logs {
		for _, f := range l.Fields {
			if f.Key == "event" {
				n[fmt.Sprint(f.Value)]++
			}
		}
	}
	return n
}

func jaegerTraces(base, service string) ([]jaegerTrace, error) {
	var r struct {
		Data []jaegerTrace `json:"data"`
	}
	q := url.Values{"service": {service}, "limit": {"200"}, "lookback": {"1h"}}
	if err := getJSON(base+"/api/traces?"+q.Encode(), &r); err != nil {
		return nil, err
	}
	return r.Data, nil
}

func jaegerTraceByID(base, id string) (jaegerTrace, error) {
	var r struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := getJSON(base+"/api/traces/"+id, &r); err != nil {
		return jaegerTrace{}, err
	}
	if len(r.Data) != 1 {
		return jaegerTrace{}, fmt.Errorf("trace %s: %d traces in the answer", id, len(r.Data))
	}
	return r.Data[0], nil
}

// checkRequestTrace verifies one request's trace: the load tester's client span, the proxy's server span
// under it with a first_token event and token events, and the proxy's upstream client span under that.
func checkRequestTrace(tr jaegerTrace, clientService, proxyService string) error {
	service := func(s jaegerSpan) string { return tr.Processes[s.ProcessID].ServiceName }
	var client, server, upstream *jaegerSpan
	for i := range tr.Spans {
		s := &tr.Spans[i]
		switch {
		case service(*s) == clientService && s.tag("span.kind") == "client":
			client = s
		case service(*s) == proxyService && s.tag("span.kind") == "server":
			server = s
		}
	}
	if client == nil || server == nil {
		return fmt.Errorf("trace %s: client span %v, proxy server span %v (spans: %s)", tr.TraceID, client != nil, server != nil, spanList(tr))
	}
	for i := range tr.Spans {
		s := &tr.Spans[i]
		if service(*s) == proxyService && s.tag("span.kind") == "client" && s.parent() == server.SpanID {
			upstream = s
		}
	}
	switch {
	case server.parent() != client.SpanID:
		return fmt.Errorf("trace %s: proxy span's parent is %q, not the client span %s", tr.TraceID, server.parent(), client.SpanID)
	case upstream == nil:
		return fmt.Errorf("trace %s: no upstream client span under the proxy span (spans: %s)", tr.TraceID, spanList(tr))
	}
	ev := server.events()
	if ev["first_token"] != 1 || ev["token"] < 1 {
		return fmt.Errorf("trace %s: proxy span events %v, want one first_token and token events", tr.TraceID, ev)
	}
	// The proxy packs its token events into one attribute that its exporter
	// writes out as the events: one per output chunk, the attribute gone.
	if chunks := server.tag("tokentrace.output_chunks"); chunks != fmt.Sprint(ev["token"]) {
		return fmt.Errorf("trace %s: %d token events for %s output chunks", tr.TraceID, ev["token"], chunks)
	}
	if packed := server.tag("tokentrace.token_events.packed"); packed != "" {
		return fmt.Errorf("trace %s: the packed token events reached the trace store as an attribute", tr.TraceID)
	}
	if server.tag("gen_ai.request.model") == "" {
		return fmt.Errorf("trace %s: proxy span has no gen_ai.request.model", tr.TraceID)
	}
	return nil
}

func spanList(tr jaegerTrace) string {
	var parts []string
	for _, s := range tr.Spans {
		parts = append(parts, fmt.Sprintf("%s/%s %q", tr.Processes[s.ProcessID].ServiceName, s.tag("span.kind"), s.OperationName))
	}
	return strings.Join(parts, ", ")
}

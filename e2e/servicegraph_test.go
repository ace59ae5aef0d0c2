//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// graphEdge is one edge of Grafana's service map as the collector's servicegraph connector reports it.
// kind is the connection_type label: "" when a client span and the server span under it both arrived,
// "virtual_node" when one side sent no span and the connector named it (the upstream by its
// server.address, a caller without a span "user").
type graphEdge struct {
	client, server, kind string
}

func (e graphEdge) String() string {
	kind := e.kind
	if kind == "" {
		kind = "paired"
	}
	return fmt.Sprintf("%s → %s (%s)", e.client, e.server, kind)
}

// serviceGraphEdges reads traces_service_graph_request_total from Prometheus: requests per edge.
func serviceGraphEdges(promURL string) (map[graphEdge]float64, error) {
	res, err := promQuery(promURL, `sum by (client, server, connection_type) (traces_service_graph_request_total)`)
	if err != nil {
		return nil, err
	}
	edges := make(map[graphEdge]float64, len(res))
	for _, s := range res {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("traces_service_graph_request_total%v: value %q: %w", s.Metric, str, err)
		}
		edges[graphEdge{s.Metric["client"], s.Metric["server"], s.Metric["connection_type"]}] = v
	}
	return edges, nil
}

// checkServiceGraph wants every edge in want to have counted requests, and the latency series Grafana's
// service map draws (the server-side histogram) for the paired ones.
func checkServiceGraph(promURL string, want []graphEdge) error {
	edges, err := serviceGraphEdges(promURL)
	if err != nil {
		return err
	}
	var missing []string
	for _, e := range want {
		if edges[e] <= 0 {
			missing = append(missing, e.String())
		}
	}
	if len(missing) > 0 {
		var seen []string
		for e, n := range edges {
			seen = append(seen, fmt.Sprintf("%s: %.0f", e, n))
		}
		slices.Sort(seen)
		return fmt.Errorf("no requests on %s; edges: [%s]", strings.Join(missing, ", "), strings.Join(seen, "; "))
	}
	for _, e := range want {
		if e.kind != "" {
			continue
		}
		expr := fmt.Sprintf(`traces_service_graph_request_server_seconds_count{client=%q, server=%q}`, e.client, e.server)
		if err := hasFiniteSample(promURL, expr); err != nil {
			return fmt.Errorf("%s: %w", expr, err)
		}
	}
	return nil
}

// hostOf is the host name of a URL, as a client span's server.address carries it.
func hostOf(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", u, err)
	}
	return p.Hostname(), nil
}

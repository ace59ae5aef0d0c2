package stream

import "sort"

// InferencePaths lists every path EndpointOf recognises, sorted, so tools
// that exercise every API (the proxy's soak test) follow this package's
// table instead of keeping their own list.
func InferencePaths() []string {
	paths := make([]string, 0, len(endpoints))
	for p := range endpoints {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

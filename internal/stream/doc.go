// Package stream finds chunks, output and token counts in the response
// streams of Ollama (NDJSON) and OpenAI-compatible servers (SSE), and turns
// the moments they arrive at into the figures of docs/METRICS.md.
//
// It is the one implementation of those definitions: the proxy taps upstream
// bodies through a Meter, and the load tester taps the bodies it reads through
// the same Meter, so both report TTFT, inter-chunk latency, TPOT and token
// usage the same way.
//
// A chunk is what the framing says (an SSE event, an NDJSON line), not a TCP
// read: one Write may hold several chunks and one chunk may span Writes.
package stream

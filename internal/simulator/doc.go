// Package simulator is an Ollama server without a model: it speaks the wire
// formats of Ollama v0.17.4 (/api/* NDJSON and the OpenAI-compatible /v1/*
// SSE) and schedules requests the way Ollama's runner does — N parallel
// slots behind a bounded FIFO queue, prefill time proportional to the prompt
// tokens a slot's prefix cache does not hold, decode steps that slow down as
// more slots share the machine — so that load tests, the proxy and the
// supervisor see the phenomena of a real server under load, in seconds and
// with exact ground truth.
//
// A Server is an http.Handler. Its timings come from a Profile (the default
// one is calibrated to qwen2.5:7b-instruct on an Apple M4 Max) and can be
// compressed with Config.TimeScale. Every chunk it sends is reported with
// the moment it was written and flushed (Config.OnChunkSent and
// Config.GroundTruth), joined to the response by the X-Simulator-Request-Id
// header. See docs/simulator.md.
package simulator

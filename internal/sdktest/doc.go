// Package sdktest drives the proxy with the official OpenAI and Anthropic
// SDKs (Node.js, installed by `make test-sdk`) and holds what the proxy
// measured to the upstreams' ground truth. Its test is built only with the
// sdk tag.
package sdktest

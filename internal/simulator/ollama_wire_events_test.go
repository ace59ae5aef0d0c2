//go:build ollama

package simulator

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestWireMatchesOllamaEvents extends TestWireMatchesOllama to /v1/responses
// and /v1/messages: the same requests to a real Ollama and to the
// simulator give the same status, Content-Type, sequence of event names
// and shape of every kind of event (keys in order, value types); error
// bodies match byte for byte but for their random ids. Run by
// `make test-simulator-ollama`.
func TestWireMatchesOllamaEvents(t *testing.T) {
	real, ts, client := realAndSimulated(t)

	m := real.Model
	msgs := `[{"role":"user","content":"Tell me a story."}]`
	tests := []struct {
		name, path, body string
		exact            bool
	}{
		{"responses stream", "/v1/responses", `{"model":"` + m + `","input":` + msgs + `,"stream":true,"max_output_tokens":4,"temperature":0}`, false},
		{"responses stream string input", "/v1/responses", `{"model":"` + m + `","input":"Tell me a story.","stream":true,"max_output_tokens":4,"temperature":0}`, false},
		{"responses whole", "/v1/responses", `{"model":"` + m + `","input":` + msgs + `,"max_output_tokens":4,"temperature":0}`, false},
		{"messages stream", "/v1/messages", `{"model":"` + m + `","messages":` + msgs + `,"stream":true,"max_tokens":4,"temperature":0}`, false},
		{"messages whole", "/v1/messages", `{"model":"` + m + `","messages":` + msgs + `,"max_tokens":4,"temperature":0}`, false},
		{"responses unknown model", "/v1/responses", `{"model":"nope","input":"hi"}`, true},
		{"responses truncated json", "/v1/responses", `{"model":`, false},
		{"messages unknown model", "/v1/messages", `{"model":"nope","max_tokens":4,"messages":` + msgs + `}`, true},
		{"messages no max_tokens", "/v1/messages", `{"model":"` + m + `","messages":` + msgs + `}`, true},
		{"messages no messages", "/v1/messages", `{"model":"` + m + `","max_tokens":4,"messages":[]}`, true},
		{"messages no model", "/v1/messages", `{"max_tokens":4,"messages":` + msgs + `}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := fetch(t, client, "POST", real.URL()+tc.path, tc.body)
			got := fetch(t, client, "POST", ts.URL+tc.path, tc.body)
			if got.status != want.status || got.contentType != want.contentType {
				t.Errorf("simulator %d %q, ollama %d %q", got.status, got.contentType, want.status, want.contentType)
			}
			if tc.exact {
				if g, w := randomIDs.ReplaceAll(got.body, []byte("_")), randomIDs.ReplaceAll(want.body, []byte("_")); !bytes.Equal(g, w) {
					t.Errorf("simulator body %q\nollama body    %q", got.body, want.body)
				}
				return
			}
			if got.status != http.StatusOK {
				return // a decoder's message differs between encoding/json versions; the status and type are checked
			}
			gs, ws := eventShapes(t, got), eventShapes(t, want)
			if strings.Join(gs, "\n") != strings.Join(ws, "\n") {
				t.Errorf("events and shapes:\nsimulator\n%s\nollama\n%s", strings.Join(gs, "\n"), strings.Join(ws, "\n"))
			}
		})
	}
}

var randomIDs = regexp.MustCompile(`(req|msg)_[0-9a-f]{24}`)

// eventShapes is chunkShapes for streams of named events: "name shape" per
// event, runs of the same folded into one; a whole body is one shape.
func eventShapes(t *testing.T, f fetched) []string {
	t.Helper()
	if !strings.HasPrefix(f.contentType, "text/event-stream") {
		return []string{shapeOf(t, f.body)}
	}
	var shapes []string
	for _, ev := range bytes.Split(bytes.TrimSpace(f.body), []byte("\n\n")) {
		name, data, ok := bytes.Cut(ev, []byte("\ndata: "))
		if !ok || !bytes.HasPrefix(name, []byte("event: ")) {
			t.Fatalf("event %q: not an event: line and a data: line", ev)
		}
		s := string(bytes.TrimPrefix(name, []byte("event: "))) + " " + shapeOf(t, data)
		if len(shapes) == 0 || shapes[len(shapes)-1] != s {
			shapes = append(shapes, s)
		}
	}
	return shapes
}

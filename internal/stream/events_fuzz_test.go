package stream

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// eventSeeds are real events of the Responses and Messages APIs and the
// shapes a hand-made reader most easily gets wrong.
var eventSeeds = []string{
	`{"type":"response.output_text.delta","delta":"Hel","sequence_number":4}`,
	`{"type":"response.reasoning_summary_text.delta","delta":"hmm"}`,
	`{"type":"response.completed","response":{"status":"completed","model":"m","usage":{"input_tokens":12,"output_tokens":40,"input_tokens_details":{"cached_tokens":3},"output_tokens_details":{"reasoning_tokens":25}}}}`,
	`{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}}`,
	`{"type":"response.failed","response":{"error":{"message":"boom"}}}`,
	`{"type":"error","message":"bad"}`,
	`{"object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"a"}]},{"type":"function_call","arguments":"{}"}],"usage":{"input_tokens":1}}`,
	`{"type":"message_start","message":{"model":"m","usage":{"input_tokens":9,"output_tokens":0}}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`,
	`{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"t"}}`,
	`{"type":"content_block_delta","delta":{"type":"signature_delta","signature":"s"}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`,
	`{"type":"message_stop"}`, `{"type":"ping"}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
	`{"type":"message","content":[{"type":"text","text":"x"},{"type":"tool_use","input":{}}],"stop_reason":"end_turn"}`,
	// Escapes, wrong types, duplicates, syntax.
	`{"type":"response.output_text.delt\u0061","delta":"\ud83d\ude00"}`, `{"t\u0079pe":"message_stop"}`,
	`{"type":5,"delta":[1]}`, `{"type":"message_delta","usage":{"output_tokens":1.5}}`, `{"usage":{"output_tokens":-3}}`,
	`{"type":"content_block_delta","delta":null}`, `{"response":null,"response":{"usage":{"input_tokens":1}}}`,
	`{"type":"x","type":"message_stop"}`, `{"error":null}`, `{"error":{}}`,
	`{`, `[]`, `null`, `"x"`, `{"a":}`, `{"a":1}x`, " {} ", "",
}

// FuzzEventReaders: for any input, the Responses and Messages readers never
// panic; they call a chunk malformed exactly when encoding/json finds no
// JSON object in it; what they report holds together; and a reused
// scanner (as a Meter holds one) reads it as a fresh one does.
func FuzzEventReaders(f *testing.F) {
	for _, s := range eventSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, payload []byte, anthropic bool) {
		api := APIResponses
		if anthropic {
			api = APIAnthropic
		}
		got := inspect(api, payload)
		isObject := json.Valid(payload) && bytes.HasPrefix(bytes.TrimLeft(payload, " \t\r\n"), []byte("{"))
		if got.malformed == isObject {
			t.Fatalf("inspect(%s, %q): malformed %v, encoding/json finds an object: %v", api, payload, got.malformed, isObject)
		}
		if got.malformed && !reflect.DeepEqual(got, chunkInfo{malformed: true}) {
			t.Fatalf("a malformed chunk reports more: %+v", got)
		}
		if got.content && !got.output || got.isErr && (got.output || got.final && got.done) || got.text != "" && !got.output {
			t.Fatalf("inspect(%s, %q) does not hold together: %+v", api, payload, got)
		}
		if got.isErr && got.errMsg == "" {
			t.Fatalf("an error without a message: %+v", got)
		}
		var sc chunkScanner
		sc.inspect(APIResponses, []byte(eventSeeds[2]), "", "", true)
		sc.inspect(APIAnthropic, []byte(eventSeeds[15]), "", "", true)
		want := got
		want.text = ""
		for _, known := range []struct{ model, finish string }{{got.model, got.finishReason}, {"prev", "stop"}} {
			if again := sc.inspect(api, payload, known.model, known.finish, false); !reflect.DeepEqual(again, want) {
				t.Fatalf("reused scanner on %q\n got %+v\nwant %+v", payload, again, want)
			}
		}
	})
}

// TestEventReadersNesting: deep nesting is refused where encoding/json
// refuses it, and costs no recursion in skipped members.
func TestEventReadersNesting(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, api := range []API{APIResponses, APIAnthropic} {
		for _, n := range []int{9999, 10000} {
			p := []byte(`{"x":` + nest(n) + `}`)
			if got := inspect(api, p).malformed; got != !json.Valid(p) {
				t.Errorf("%s, nesting %d: malformed %v, json.Valid %v", api, n, got, json.Valid(p))
			}
		}
	}
}

// FuzzMeterEvents: any SSE body of the Responses or Messages API is
// measured without a panic, and the figures hold together.
func FuzzMeterEvents(f *testing.F) {
	f.Add([]byte(strings.Join(responsesStream([]string{"a"}, []string{"b"}, 1, 2, 1), "")), uint8(7), false)
	f.Add([]byte(strings.Join(messagesStream([]string{"a"}, []string{"b"}, 1, 2, 3), "")), uint8(3), true)
	f.Add([]byte("event: error\ndata: {\"type\":\"error\"}\n\n"), uint8(1), true)
	// Deltas alike but for their text (read by their shape), with texts
	// that end the string early or run past it.
	var deltas strings.Builder
	for _, text := range []string{"a", "b", `c\"`, `d"`, `e\`, "", "f", "g"} {
		deltas.WriteString(sse(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + text + `"}}`))
	}
	f.Add([]byte(deltas.String()+sse(`{"type":"message_stop"}`)), uint8(9), true)
	f.Fuzz(func(t *testing.T, body []byte, step uint8, anthropic bool) {
		api := APIResponses
		if anthropic {
			api = APIAnthropic
		}
		got := measureTwice(t, api, "text/event-stream", body, int(step)%16+1)
		if got.OutputChunks > 0 && len(got.Gaps) != got.OutputChunks-1 {
			t.Fatalf("%d output chunks but %d gaps", got.OutputChunks, len(got.Gaps))
		}
		if th, ok := got.ThinkingTime(); ok && (th < 0 || got.FirstContent.Before(got.FirstToken)) {
			t.Fatalf("thinking time %v: first content %v before first token %v", th, got.FirstContent, got.FirstToken)
		}
		if !got.FirstContent.IsZero() && got.FirstToken.IsZero() {
			t.Fatal("visible content without a first token")
		}
		if !got.Complete && got.OK() {
			t.Fatal("a stream without its final marker counted as a success")
		}
	})
}

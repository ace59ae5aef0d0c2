package stream

import (
	"reflect"
	"strings"
	"testing"
)

// inspectSeeds are real chunks of both APIs and the cases where a hand-made
// JSON reader most easily parts from encoding/json.
var inspectSeeds = []string{
	// Ollama, as v0.6.5 writes it.
	`{"model":"qwen2.5:7b-instruct","created_at":"2026-01-01T00:00:00.123456Z","message":{"role":"assistant","content":" tok"},"done":false}`,
	`{"model":"m","message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}`,
	`{"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":[1,2.5e-3,null,true,"x"]}}}]},"done":false}`,
	`{"model":"m","response":" world","thinking":"t","done":false}`,
	ollamaFinal,
	`{"model":"m","done_reason":"stop","done":true}`,
	`{"error":"an error was encountered while running the model"}`,
	// OpenAI-compatible.
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`,
	`{"choices":[{"delta":{"reasoning_content":"a","reasoning":"b","content":"c"}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}`,
	`{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}`,
	`{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":30,"total_tokens":39}}`,
	`{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":30,"completion_tokens_details":{"reasoning_tokens":12},"prompt_tokens_details":{"cached_tokens":4}}}`,
	`{"usage":{"completion_tokens_details":{"reasoning_tokens":1},"completion_tokens_details":null,"prompt_tokens_details":{"cached_tokens":null}}}`,
	`{"usage":{"completion_tokens_details":{"reasoning_tokens":1}},"usage":{"completion_tokens_details":{}},"usage":null,"usage":{"Completion_Tokens_Details":{"REASONING_TOKENS":2}}}`,
	`{"usage":{"completion_tokens_details":{"reasoning_tokens":1.5}}}`, `{"usage":{"prompt_tokens_details":[]}}`,
	`{"choices":[{"text":"abc","index":0,"logprobs":null,"finish_reason":null}]}`,
	`{"choices":[{"message":{"role":"assistant","content":"all","reasoning_content":"r"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":7}}`,
	`{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`,
	`{"error":null,"choices":[{"delta":{"content":"x"}}]}`,
	`[DONE]`, " [DONE]\n", `{"data":[{"embedding":[0.1,-2E+3]}],"usage":{"prompt_tokens":3}}`,
	// Escapes, \u sequences, surrogates, bytes that are not UTF-8.
	`{"message":{"content":"a\"b\\c\/d\b\f\n\r\t"}}`,
	`{"response":"\u00e9\u4e2d\uD83D\uDE00\ud83d\ude00"}`,
	`{"response":"\ud83d"}`, `{"response":"\ude00\ud83d"}`, `{"response":"\ud83d\u0041"}`, `{"response":"\ud83d\n"}`,
	`{"response":"\ud83d\ud83d\ude00"}`, `{"response":"x\ud800"}`,
	"{\"response\":\"\xff\xfe\"}", "{\"response\":\"\xed\xa0\x80\"}", "{\"response\":\"é\xc3\"}", "{\"model\":\"\xef\xbf\xbd\"}",
	"{\"response\":\"\x7f\"}", "{\"response\":\"a\x01\"}",
	// Keys match case-insensitively, after unescaping, under Unicode folding.
	`{"Content":"x","MESSAGE":{"Content":"y","THINKING":"z"}}`,
	`{"message":{"\u0063ontent":"a","thin\u212Aing":"b"}}`,
	"{\"me\u017f\u017fage\":{\"content\":\"a\"},\"thin\u212aing\":\"k\"}",
	`{"Choices":[{"Delta":{"Content":"x","Reasoning_Content":"y"},"Finish_Reason":"stop"}],"Usage":{"Prompt_Tokens":1}}`,
	`{"MODEL":"a","Done":true,"Eval_Count":3,"done_REASON":"stop"}`,
	"{\"response\xff\":\"a\"}", `{"respons\u0065":"a","\u0072esponse\"":"b"}`,
	// Duplicate members: encoding/json takes the last, merging objects and
	// reusing slice elements.
	`{"model":"a","model":"b"}`, `{"model":"a","model":null}`,
	`{"message":{"content":"a"},"message":{"thinking":"b"}}`,
	`{"message":{"content":"a"},"message":null}`, `{"message":{"content":"a"},"message":null,"message":{}}`,
	`{"done":true,"eval_count":5,"eval_count":null}`, `{"done":true,"done":null,"done":false}`,
	`{"choices":[{"text":"a"},{"text":"b"}],"choices":[{"finish_reason":"stop"}],"choices":[{},{},{}]}`,
	`{"choices":[{"text":"a"}],"choices":[],"choices":[{}]}`,
	`{"choices":[{"text":"a"}],"choices":null,"choices":[{}]}`,
	`{"choices":[{"finish_reason":"stop"}],"choices":[{"finish_reason":null}]}`,
	`{"choices":[{"delta":{"content":"a"},"delta":null,"message":{"content":"b"}}]}`,
	`{"error":"x","error":null}`, `{"error":null,"error":"x"}`,
	`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`, `{"usage":{"prompt_tokens":1},"usage":null}`,
	// Numbers and types encoding/json refuses for the field.
	`{"done":true,"eval_count":1.5}`, `{"done":true,"eval_count":1e3}`, `{"done":true,"eval_count":-0}`,
	`{"done":true,"total_duration":9223372036854775807}`, `{"done":true,"total_duration":9223372036854775808}`,
	`{"done":true,"load_duration":-9223372036854775808}`, `{"done":true,"load_duration":-9223372036854775809}`,
	`{"done":true,"eval_count":01}`, `{"usage":{"prompt_tokens":1E2}}`, `{"usage":{"prompt_tokens":null}}`,
	`{"model":5}`, `{"model":true}`, `{"done":"true"}`, `{"done":1}`, `{"message":"x"}`, `{"message":[]}`,
	`{"choices":{}}`, `{"choices":[1]}`, `{"choices":[null]}`, `{"choices":[[]]}`, `{"usage":[]}`, `{"usage":true}`,
	`{"choices":[{"finish_reason":1}]}`, `{"choices":[{"delta":{"tool_calls":5,"content":null}}]}`,
	`{"unknown":1.5e300,"x":-0.0E-0}`,
	// Error values.
	`{"error":{"Message":"m"}}`, `{"error":{"message":5}}`, `{"error":{"message":null}}`, `{"error":[1]}`,
	`{"error":5}`, `{"error":""}`, `{"error":{}}`, `{"error":"\u00e9\ud800"}`, `{"error" : { "message" : "spaced" } }`,
	// Tool calls that count, or not.
	`{"message":{"tool_calls":[]}}`, `{"message":{"tool_calls":[ ]}}`, `{"message":{"tool_calls":null}}`,
	`{"message":{"tool_calls":{}}}`, `{"message":{"tool_calls":""}}`, `{"message":{"tool_calls":0}}`,
	// Unknown values of every type, skipped.
	`{"x":{"a":[1,{"b":"\"}"}],"c":null,"d":[]},"model":"m","y":[[[[]]],{}],"z":"]"}`,
	// Syntax.
	`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`, `[]`, `""`, `null`, " null \r\n", `nul`, `nulls`,
	`{"a":1}x`, "\t{\"a\":1} ", `{"a":tru}`, `{"a":"\u12"}`, `{"a":"\q"}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`,
	`{"a":1e}`, `{"a":+1}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":{"b"}}`, `{"a":{"b":1,}}`, ` { "a" : 1 , "b" : [ 1 , 2 ] } `,
	"\f{}", "{}\v", `1`, `"x"`, `true`, `[1]`, `{"a":"x`, `{"a":"x\`, `{"a":[`, "", " ",
}

// busyChunk leaves a scanner holding state a later chunk must not see,
// nesting past the lexer's inline stack of 128 levels.
var busyChunk = `{"model":"prev","message":{"content":"c","thinking":"t","tool_calls":[1]},"response":"r","done":true,` +
	`"eval_count":1,"prompt_eval_count":2,"choices":[{"delta":{"content":"a"},"finish_reason":"stop"},{"text":"b"},{"message":{"content":"\u00e9"}}],` +
	`"usage":{"prompt_tokens":1},"x":` + strings.Repeat(`[{"a":`, 100) + "{}" + strings.Repeat("}]", 100) + `}`

// FuzzInspectMatchesReference: for any input, inspect says what the
// encoding/json reference says, to the byte; and so does the way a Meter
// calls it (a reused scanner, known strings, no text).
func FuzzInspectMatchesReference(f *testing.F) {
	for _, s := range inspectSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, payload []byte, openAI bool) {
		api := APIOllama
		if openAI {
			api = APIOpenAI
		}
		want := inspectReference(api, payload)
		if got := inspect(api, payload); !reflect.DeepEqual(got, want) {
			t.Fatalf("inspect(%s, %q)\n got %+v\nwant %+v", api, payload, got, want)
		}
		var sc chunkScanner
		if ci := sc.inspect(api, []byte(busyChunk), "", "", true); ci.malformed || ci.model != "prev" {
			t.Fatalf("busy chunk read as %+v", ci)
		}
		want.text = ""
		for _, known := range []struct{ model, finish string }{{want.model, want.finishReason}, {"prev", "stop"}, {"", ""}} {
			if got := sc.inspect(api, payload, known.model, known.finish, false); !reflect.DeepEqual(got, want) {
				t.Fatalf("reused scanner, known %q %q, on %q\n got %+v\nwant %+v", known.model, known.finish, payload, got, want)
			}
		}
	})
}

// TestInspectNestingLimit: nesting is refused where encoding/json refuses it,
// past 10000 levels, in members read and skipped alike. (Not fuzz seeds: the
// fuzzer spends minutes minimizing inputs this large.)
func TestInspectNestingLimit(t *testing.T) {
	nest := func(open, end string, n int) string { return strings.Repeat(open, n) + "1" + strings.Repeat(end, n) }
	for _, tt := range []struct {
		payload   string
		malformed bool
	}{
		{`{"x":` + nest("[", "]", 9999) + `}`, false},
		{`{"x":` + nest("[", "]", 10000) + `}`, true},
		{`{"error":` + nest(`{"a":`, "}", 9999) + `}`, false},
		{`{"error":` + nest(`{"a":`, "}", 10000) + `}`, true},
		{`{"choices":[{"delta":{"tool_calls":` + nest("[", "]", 9996) + `}}]}`, false},
		{`{"choices":[{"delta":{"tool_calls":` + nest("[", "]", 9997) + `}}]}`, true},
	} {
		for _, api := range []API{APIOllama, APIOpenAI} {
			want := inspectReference(api, []byte(tt.payload))
			got := inspect(api, []byte(tt.payload))
			if !reflect.DeepEqual(got, want) || got.malformed != tt.malformed {
				t.Errorf("inspect(%s, %.60q…)\n got %+v\nwant %+v, malformed %v", api, tt.payload, got, want, tt.malformed)
			}
		}
	}
}

// FuzzShapeMatchesInspect: a chunk that has the shape of the chunk before
// it reads as a whole read reads it (encoding/json's, for the
// OpenAI-compatible API). The shape is taken from first; the chunk is
// second, and second's bytes put in the place of first's text.
func FuzzShapeMatchesInspect(f *testing.F) {
	for _, s := range inspectSeeds {
		f.Add([]byte(s), []byte(`x`), false)
	}
	for _, s := range eventSeeds {
		f.Add([]byte(s), []byte(`x`), true)
	}
	for _, text := range []string{"a", `"`, `\`, `a\"`, `\"`, `\\`, `\u00e`, "\x01", "\xff", `a","b`, `a"},"x":{"`, ""} {
		f.Add([]byte(openAIChunk("tok")), []byte(text), false)
		f.Add([]byte(`{"choices":[{"delta":{"reasoning_content":"r"}}],"model":"m"}`), []byte(text), false)
		f.Add([]byte(`{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}],"usage":null}`), []byte(text), false)
		f.Add([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok"}}`), []byte(text), true)
		f.Add([]byte(`{"type":"content_block_delta","delta":{"text":"a","thinking":"","type":"thinking_delta","text":""}}`), []byte(text), true)
	}
	f.Fuzz(func(t *testing.T, first, second []byte, anthropic bool) {
		api, whole := APIOpenAI, func(p []byte) chunkInfo { return inspectReference(APIOpenAI, p) }
		if anthropic {
			api, whole = APIAnthropic, func(p []byte) chunkInfo { return inspect(APIAnthropic, p) }
		}
		var sc chunkScanner
		var s shape
		s.learn(&sc, first, sc.inspect(api, first, "", "", false))
		if !s.ok {
			return
		}
		if want := whole(first); !want.output || want.final || want.hasUsage || want.hasOutput || want.isErr {
			t.Fatalf("shape taken from %q, which reads as %+v", first, want)
		}
		spliced := append(append(append([]byte(nil), s.buf[:s.pre]...), second...), s.buf[s.pre:]...)
		for _, p := range [][]byte{first, second, spliced} {
			try := s
			if !try.match(p) {
				continue
			}
			want := whole(p)
			want.text = ""
			if !reflect.DeepEqual(try.ci, want) {
				t.Fatalf("shape of %q matched %q\n got %+v\nwant %+v", first, p, try.ci, want)
			}
		}
	})
}

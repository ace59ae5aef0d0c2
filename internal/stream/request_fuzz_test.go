package stream

import (
	"testing"
)

// FuzzParseRequestMatchesReference: ParseRequest reads every body as
// parseRequestJSON (encoding/json) does, result and error, and takes its
// own path exactly when encoding/json succeeds.
func FuzzParseRequestMatchesReference(f *testing.F) {
	for _, seed := range []string{
		`{"model":"qwen2.5:7b-instruct","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":32,"stream_options":{"include_usage":true}}`,
		`{"model":"m","messages":[],"options":{"num_predict":64,"temperature":0.5,"seed":1}}`,
		`{"model":"m","input":"x","max_output_tokens":16,"stream":false}`,
		`{"model":"m","max_completion_tokens":8,"max_tokens":4}`,
		`{"MODEL":"a","Stream":true,"MAX_TOKENS":3,"ſtream":false,"max_toKens":5,"Options":{"NUM_PREDICT":2}}`,
		`{"model":"a","model":"b","stream":true,"stream":null}`,
		`{"model":"caf\u00e9 \ud83d\ude00","\u006dodel":"esc","options":null,"max_tokens":null}`,
		"{\"model\":\"bad \xff utf8\"}",
		`{"max_tokens":1.5}`, `{"max_tokens":1e3}`, `{"max_tokens":99999999999999999999}`, `{"max_tokens":-3}`,
		`{"max_tokens":"5"}`, `{"stream":"true"}`, `{"options":[]}`, `{"options":{"num_predict":true}}`,
		`{"model":1}`, `{"model":"x"} trailing`, `{"model":"x",}`, `null`, ` null `, `[]`, `"x"`, `1`, ``, `{`, `{}`,
		`{"a":{"b":[1,2,{"c":null}]},"model":"deep"}`, `{"model":"x","messages":[` + `]}`,
		`{"max_tokens":-9223372036854775808}`, `{"max_tokens":9223372036854775808}`,
	} {
		f.Add(seed)
	}
	endpoints := []Endpoint{{API: APIOpenAI, Operation: OpChat}, {API: APIOllama, Operation: OpChat, StreamsByDefault: true}}
	f.Fuzz(func(t *testing.T, body string) {
		for _, e := range endpoints {
			got, gerr := ParseRequest(e, []byte(body))
			want, werr := parseRequestJSON(e, []byte(body))
			if got != want || (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
				t.Fatalf("body %q: ParseRequest %+v, %v; encoding/json %+v, %v", body, got, gerr, want, werr)
			}
			if _, ok := scanRequest([]byte(body)); ok != (werr == nil) {
				t.Fatalf("body %q: the scanner's own path taken %v, encoding/json's error %v", body, ok, werr)
			}
		}
	})
}

func BenchmarkParseRequest(b *testing.B) {
	body := []byte(`{"model":"qwen2.5:7b-instruct","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about the sea, then explain it in two sentences."}],"max_tokens":256,"temperature":0.7,"stream_options":{"include_usage":true}}`)
	e := Endpoint{API: APIOpenAI, Operation: OpChat}
	b.Run("scanner", func(b *testing.B) {
		for b.Loop() {
			_, _ = ParseRequest(e, body)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = parseRequestJSON(e, body)
		}
	})
}

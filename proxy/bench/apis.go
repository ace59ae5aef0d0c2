package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// benchAPI is one wire API the fake upstream streams, shaped like Ollama
// v0.17.4's answers (internal/stream/testdata): the events before the first
// token, one output event per token, and the events that end the answer
// with its usage.
type benchAPI struct {
	name        string
	api         stream.API
	path        string
	body        string // a streaming request
	contentType string
	head        string
	token       func(buf []byte, i int) []byte
	tail        func(buf []byte, tokens int) []byte
}

// tokenText is the text of output token i.
func tokenText(buf []byte, i int) []byte {
	buf = append(buf, " tok"...)
	return strconv.AppendInt(buf, int64(i), 10)
}

// answerText is the whole answer of n tokens.
func answerText(buf []byte, n int) []byte {
	for i := range n {
		buf = tokenText(buf, i)
	}
	return buf
}

const (
	openAIHead = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1767225600,"model":"bench","choices":[{"index":0,"delta":{"content":"`
	openAITail = `"},"finish_reason":null}]}` + "\n\n"
	openAIStop = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1767225600,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"

	responsesObject = `"background":false,"created_at":1767225600,"error":null,"frequency_penalty":0,"id":"resp_bench","incomplete_details":null,"instructions":null,"max_output_tokens":null,"max_tool_calls":null,"metadata":{},"model":"bench","object":"response",`
	responsesRest   = `"parallel_tool_calls":true,"presence_penalty":0,"previous_response_id":null,"prompt_cache_key":null,"reasoning":null,"safety_identifier":null,"service_tier":"default",`
	responsesConf   = `"store":false,"temperature":0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_logprobs":0,"top_p":1,"truncation":"disabled"`
	responsesHead   = "event: response.created\n" +
		`data: {"response":{` + responsesObject + `"completed_at":null,"output":[],` + responsesRest + `"status":"in_progress",` + responsesConf + `,"usage":null},"sequence_number":0,"type":"response.created"}` + "\n\n" +
		"event: response.in_progress\n" +
		`data: {"response":{` + responsesObject + `"completed_at":null,"output":[],` + responsesRest + `"status":"in_progress",` + responsesConf + `,"usage":null},"sequence_number":1,"type":"response.in_progress"}` + "\n\n" +
		"event: response.output_item.added\n" +
		`data: {"item":{"content":[],"id":"msg_bench","role":"assistant","status":"in_progress","type":"message"},"output_index":0,"sequence_number":2,"type":"response.output_item.added"}` + "\n\n" +
		"event: response.content_part.added\n" +
		`data: {"content_index":0,"item_id":"msg_bench","output_index":0,"part":{"annotations":[],"logprobs":[],"text":"","type":"output_text"},"sequence_number":3,"type":"response.content_part.added"}` + "\n\n"

	messagesHead = "event: message_start\n" +
		`data: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"bench","content":[],"usage":{"input_tokens":8,"output_tokens":0}}}` + "\n\n" +
		"event: content_block_start\n" +
		`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n"
)

// benchAPIs is every API the benchmark can load, by name (the load
// tester's -api words).
var benchAPIs = map[string]*benchAPI{
	"openai": {
		name: "openai", api: stream.APIOpenAI, path: "/v1/chat/completions", contentType: "text/event-stream",
		body: `{"model":"bench","messages":[{"role":"user","content":"hello"}],"stream":true,"stream_options":{"include_usage":true}}`,
		token: func(buf []byte, i int) []byte {
			buf = append(buf, openAIHead...)
			return append(tokenText(buf, i), openAITail...)
		},
		tail: func(buf []byte, n int) []byte {
			buf = append(buf, openAIStop...)
			return fmt.Appendf(buf, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1767225600,"model":"bench","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":%d,"total_tokens":%d}}`+"\n\ndata: [DONE]\n\n", n, n+8)
		},
	},
	"responses": {
		name: "responses", api: stream.APIResponses, path: "/v1/responses", contentType: "text/event-stream",
		body: `{"model":"bench","input":"hello","stream":true}`,
		head: responsesHead,
		token: func(buf []byte, i int) []byte {
			buf = append(buf, "event: response.output_text.delta\n"+`data: {"content_index":0,"delta":"`...)
			buf = tokenText(buf, i)
			buf = append(buf, `","item_id":"msg_bench","logprobs":[],"output_index":0,"sequence_number":`...)
			buf = strconv.AppendInt(buf, int64(i+4), 10)
			return append(buf, `,"type":"response.output_text.delta"}`+"\n\n"...)
		},
		tail: func(buf []byte, n int) []byte {
			text := string(answerText(nil, n))
			seq := n + 4
			part := `{"annotations":[],"logprobs":[],"text":"` + text + `","type":"output_text"}`
			item := `{"content":[` + part + `],"id":"msg_bench","role":"assistant","status":"completed","type":"message"}`
			buf = fmt.Appendf(buf, "event: response.output_text.done\n"+`data: {"content_index":0,"item_id":"msg_bench","logprobs":[],"output_index":0,"sequence_number":%d,"text":"%s","type":"response.output_text.done"}`+"\n\n", seq, text)
			buf = fmt.Appendf(buf, "event: response.content_part.done\n"+`data: {"content_index":0,"item_id":"msg_bench","output_index":0,"part":%s,"sequence_number":%d,"type":"response.content_part.done"}`+"\n\n", part, seq+1)
			buf = fmt.Appendf(buf, "event: response.output_item.done\n"+`data: {"item":%s,"output_index":0,"sequence_number":%d,"type":"response.output_item.done"}`+"\n\n", item, seq+2)
			return fmt.Appendf(buf, "event: response.completed\n"+`data: {"response":{`+responsesObject+`"completed_at":1767225601,"output":[%s],`+responsesRest+`"status":"completed",`+responsesConf+
				`,"usage":{"input_tokens":8,"input_tokens_details":{"cached_tokens":0},"output_tokens":%d,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":%d}},"sequence_number":%d,"type":"response.completed"}`+"\n\n",
				item, n, n+8, seq+3)
		},
	},
	"anthropic": {
		name: "anthropic", api: stream.APIAnthropic, path: "/v1/messages", contentType: "text/event-stream",
		body: `{"model":"bench","max_tokens":4096,"messages":[{"role":"user","content":"hello"}],"stream":true}`,
		head: messagesHead,
		token: func(buf []byte, i int) []byte {
			buf = append(buf, "event: content_block_delta\n"+`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`...)
			return append(tokenText(buf, i), `"}}`+"\n\n"...)
		},
		tail: func(buf []byte, n int) []byte {
			buf = append(buf, "event: content_block_stop\n"+`data: {"type":"content_block_stop","index":0}`+"\n\n"...)
			buf = fmt.Appendf(buf, "event: message_delta\n"+`data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":8,"output_tokens":%d}}`+"\n\n", n)
			return append(buf, "event: message_stop\n"+`data: {"type":"message_stop"}`+"\n\n"...)
		},
	},
	"ollama": {
		name: "ollama", api: stream.APIOllama, path: "/api/chat", contentType: "application/x-ndjson",
		body: `{"model":"bench","messages":[{"role":"user","content":"hello"}],"stream":true}`,
		token: func(buf []byte, i int) []byte {
			buf = append(buf, `{"model":"bench","created_at":"2026-01-01T00:00:00.000000000Z","message":{"role":"assistant","content":"`...)
			return append(tokenText(buf, i), `"},"done":false}`+"\n"...)
		},
		tail: func(buf []byte, n int) []byte {
			return fmt.Appendf(buf, `{"model":"bench","created_at":"2026-01-01T00:00:01.000000000Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":1000000000,"load_duration":1000000,"prompt_eval_count":8,"prompt_eval_duration":1000000,"eval_count":%d,"eval_duration":900000000}`+"\n", n)
		},
	},
}

// apiByPath is the API the fake upstream answers on a path.
var apiByPath = func() map[string]*benchAPI {
	m := map[string]*benchAPI{}
	for _, a := range benchAPIs {
		m[a.path] = a
	}
	return m
}()

// parseAPIs reads the -apis list.
func parseAPIs(list string) ([]*benchAPI, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []*benchAPI
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		a, ok := benchAPIs[s]
		if !ok || seen[s] {
			names := make([]string, 0, len(benchAPIs))
			for n := range benchAPIs {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("-apis %q: %q is unknown or repeated (want some of %s)", list, s, strings.Join(names, ", "))
		}
		seen[s] = true
		out = append(out, a)
	}
	return out, nil
}

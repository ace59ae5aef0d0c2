package stream

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// ev is an SSE event with its event: line, as Ollama, OpenAI and Anthropic
// write them.
func ev(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }

func TestInspectEvents(t *testing.T) {
	tests := []struct {
		name      string
		api       API
		payload   string
		output    bool
		content   bool
		final     bool
		isErr     bool
		bad       bool
		text      string
		finish    string
		errMsg    string
		in, out   int
		hasIn     bool
		hasOut    bool
		reasoning int
		cached    int
	}{
		// Responses, as Ollama v0.17.4 and OpenAI write them.
		{name: "responses created", api: APIResponses, payload: `{"response":{"id":"resp_1","object":"response","status":"in_progress","model":"m","output":[],"usage":null,"error":null},"sequence_number":0,"type":"response.created"}`},
		{name: "responses text delta", api: APIResponses, payload: `{"content_index":0,"delta":"Hel","item_id":"msg_1","logprobs":[],"output_index":0,"sequence_number":4,"type":"response.output_text.delta"}`, output: true, content: true, text: "Hel"},
		{name: "responses empty delta", api: APIResponses, payload: `{"delta":"","type":"response.output_text.delta"}`},
		{name: "responses summary delta", api: APIResponses, payload: `{"delta":"hmm","item_id":"rs_1","output_index":0,"summary_index":0,"type":"response.reasoning_summary_text.delta"}`, output: true, text: "hmm"},
		{name: "responses reasoning delta", api: APIResponses, payload: `{"type":"response.reasoning_text.delta","delta":"\u00e9"}`, output: true, text: "é"},
		{name: "responses refusal delta", api: APIResponses, payload: `{"type":"response.refusal.delta","delta":"no"}`, output: true, content: true, text: "no"},
		{name: "responses arguments delta", api: APIResponses, payload: `{"type":"response.function_call_arguments.delta","delta":"{\"a\":1}"}`, output: true, content: true, text: `{"a":1}`},
		{name: "responses text done carries none", api: APIResponses, payload: `{"type":"response.output_text.done","text":"Hello"}`},
		{name: "responses unknown delta carries none", api: APIResponses, payload: `{"type":"response.audio.delta","delta":"AAAA"}`},
		{name: "responses completed", api: APIResponses, payload: `{"response":{"status":"completed","model":"m","output":[{"type":"message","content":[{"type":"output_text","text":"Hello"}]}],"usage":{"input_tokens":12,"output_tokens":40,"total_tokens":52,"input_tokens_details":{"cached_tokens":3},"output_tokens_details":{"reasoning_tokens":25}}},"sequence_number":9,"type":"response.completed"}`,
			final: true, finish: "completed", in: 12, out: 40, hasIn: true, hasOut: true, reasoning: 25, cached: 3},
		{name: "responses incomplete", api: APIResponses, payload: `{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":5,"output_tokens":8}}}`,
			final: true, finish: "max_output_tokens", in: 5, out: 8, hasIn: true, hasOut: true},
		{name: "responses failed", api: APIResponses, payload: `{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"},"usage":{"input_tokens":5,"output_tokens":1}}}`,
			isErr: true, errMsg: "boom", finish: "failed", in: 5, out: 1, hasIn: true, hasOut: true},
		{name: "responses error event", api: APIResponses, payload: `{"type":"error","code":"ERR","message":"bad thing","param":null,"sequence_number":3}`, isErr: true, errMsg: "bad thing"},
		{name: "responses whole", api: APIResponses, payload: `{"id":"resp_1","object":"response","status":"completed","model":"m","output":[{"type":"reasoning","summary":[{"type":"summary_text","text":"think"}]},{"type":"message","content":[{"type":"output_text","text":"answer"}]}],"error":null,"usage":{"input_tokens":3,"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2}}}`,
			output: true, content: true, final: true, text: "thinkanswer", finish: "completed", in: 3, out: 7, hasIn: true, hasOut: true, reasoning: 2},
		{name: "responses whole failed", api: APIResponses, payload: `{"object":"response","status":"failed","error":{"message":"x"}}`, isErr: true, errMsg: "x"},
		{name: "responses not json", api: APIResponses, payload: `event: x`, bad: true},
		{name: "responses trailing bytes", api: APIResponses, payload: `{"type":"x"}}`, bad: true},

		// OpenAI chat's usage details, as OpenAI writes them.
		{name: "openai usage details", api: APIOpenAI, payload: `{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":30,"completion_tokens_details":{"reasoning_tokens":12},"prompt_tokens_details":{"cached_tokens":4}}}`,
			in: 9, out: 30, reasoning: 12, cached: 4},

		// Messages, as Ollama v0.17.4 and Anthropic write them.
		{name: "messages start", api: APIAnthropic, payload: `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":9,"output_tokens":0}}}`, in: 9, hasIn: true},
		{name: "messages block start", api: APIAnthropic, payload: `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{name: "messages text delta", api: APIAnthropic, payload: `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`, output: true, content: true, text: "Hi"},
		{name: "messages thinking delta", api: APIAnthropic, payload: `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`, output: true, text: "hmm"},
		{name: "messages json delta", api: APIAnthropic, payload: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}`, output: true, content: true, text: `{"a"`},
		{name: "messages empty json delta", api: APIAnthropic, payload: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}`},
		{name: "messages signature delta", api: APIAnthropic, payload: `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}`},
		{name: "messages ping", api: APIAnthropic, payload: `{"type":"ping"}`},
		{name: "messages delta", api: APIAnthropic, payload: `{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":10,"output_tokens":15}}`, final: true, finish: "max_tokens", in: 10, out: 15, hasIn: true, hasOut: true},
		{name: "messages delta output only", api: APIAnthropic, payload: `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`, final: true, finish: "end_turn", out: 15, hasOut: true},
		{name: "messages stop", api: APIAnthropic, payload: `{"type":"message_stop"}`, final: true},
		{name: "messages error", api: APIAnthropic, payload: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, isErr: true, errMsg: "Overloaded"},
		{name: "messages whole", api: APIAnthropic, payload: `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"thinking","thinking":"t"},{"type":"text","text":"all"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":7}}`,
			output: true, content: true, final: true, text: "tall", finish: "end_turn", in: 3, out: 7, hasIn: true, hasOut: true},
		{name: "messages whole tool use", api: APIAnthropic, payload: `{"type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":7}}`,
			output: true, content: true, final: true, finish: "tool_use", in: 3, out: 7, hasIn: true, hasOut: true},
		{name: "messages not json", api: APIAnthropic, payload: `[1]`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := inspect(tt.api, []byte(tt.payload))
			if ci.malformed != tt.bad || ci.isErr != tt.isErr || ci.output != tt.output || ci.content != tt.content || ci.final != tt.final {
				t.Fatalf("got malformed %v err %v output %v content %v final %v; want %v %v %v %v %v",
					ci.malformed, ci.isErr, ci.output, ci.content, ci.final, tt.bad, tt.isErr, tt.output, tt.content, tt.final)
			}
			if ci.text != tt.text || ci.finishReason != tt.finish || ci.errMsg != tt.errMsg {
				t.Errorf("text %q finish %q error %q; want %q %q %q", ci.text, ci.finishReason, ci.errMsg, tt.text, tt.finish, tt.errMsg)
			}
			if ci.inputTokens != tt.in || ci.outputTokens != tt.out || ci.hasInput != tt.hasIn || ci.hasOutput != tt.hasOut ||
				ci.reasoningTokens != tt.reasoning || ci.cachedTokens != tt.cached {
				t.Errorf("usage in %d (%v) out %d (%v) reasoning %d cached %d; want %d (%v) %d (%v) %d %d", ci.inputTokens, ci.hasInput,
					ci.outputTokens, ci.hasOutput, ci.reasoningTokens, ci.cachedTokens, tt.in, tt.hasIn, tt.out, tt.hasOut, tt.reasoning, tt.cached)
			}
		})
	}
}

// responsesStream is a streamed response with reasoning before the answer,
// shaped as Ollama v0.17.4 writes it (sequence numbers from 0, usage only in
// response.completed).
func responsesStream(thinking, answer []string, in, out, reasoning int) []string {
	var evs []string
	seq := 0
	add := func(name, data string) {
		evs = append(evs, ev(name, `{"type":"`+name+`",`+data+`,"sequence_number":`+itoa(seq)+`}`))
		seq++
	}
	add("response.created", `"response":{"status":"in_progress","model":"m","output":[],"usage":null}`)
	add("response.in_progress", `"response":{"status":"in_progress","model":"m","output":[],"usage":null}`)
	for _, th := range thinking {
		add("response.reasoning_summary_text.delta", `"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"`+th+`"`)
	}
	for _, a := range answer {
		add("response.output_text.delta", `"item_id":"msg_1","output_index":1,"content_index":0,"delta":"`+a+`","logprobs":[]`)
	}
	add("response.output_text.done", `"text":"`+strings.Join(answer, "")+`"`)
	add("response.completed", `"response":{"status":"completed","model":"m","output":[],"usage":{"input_tokens":`+itoa(in)+
		`,"output_tokens":`+itoa(out)+`,"total_tokens":0,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":`+itoa(reasoning)+`}}}`)
	return evs
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestMeterResponsesStream(t *testing.T) {
	ms := time.Millisecond
	evs := responsesStream([]string{"a", "b"}, []string{"X", "Y", "Z"}, 12, 5, 2)
	steps := []step{{10 * ms, evs[0] + evs[1]}} // created, in_progress
	for i, e := range evs[2:] {
		steps = append(steps, step{time.Duration(100+10*i) * ms, e})
	}
	m, events := measure(APIResponses, 200, "text/event-stream", steps, 200*ms, nil)
	if !m.OK() {
		t.Fatalf("error %s: %s", m.ErrorType, m.Error)
	}
	if ttft, _ := m.TTFT(); ttft != 100*ms {
		t.Errorf("TTFT = %v, want 100ms (the first reasoning delta)", ttft)
	}
	if th, ok := m.ThinkingTime(); !ok || th != 20*ms {
		t.Errorf("thinking time = %v, %v; want 20ms", th, ok)
	}
	if m.OutputChunks != 5 || len(events) != 5 || !events[0].Reasoning || events[2].Reasoning {
		t.Errorf("output chunks %d, events %+v", m.OutputChunks, events)
	}
	if m.InputTokens != 12 || m.OutputTokens != 5 || m.TokensEstimated || !m.ReasoningTokensReported || m.ReasoningTokens != 2 {
		t.Errorf("tokens in %d out %d estimated %v reasoning %d (%v)", m.InputTokens, m.OutputTokens, m.TokensEstimated, m.ReasoningTokens, m.ReasoningTokensReported)
	}
	if m.FinishReason != "completed" || m.Model != "m" {
		t.Errorf("finish %q model %q", m.FinishReason, m.Model)
	}
}

func TestMeterResponsesEndings(t *testing.T) {
	evs := responsesStream(nil, []string{"X"}, 1, 1, 0)
	tests := []struct {
		name, body string
		errType    string
	}{
		{"complete", strings.Join(evs, ""), ""},
		{"cut before completed", strings.Join(evs[:len(evs)-1], ""), ErrIncomplete},
		{"error event", strings.Join(evs[:3], "") + ev("error", `{"type":"error","message":"oops"}`), ErrInStream},
		{"failed", strings.Join(evs[:3], "") + ev("response.failed", `{"type":"response.failed","response":{"status":"failed","error":{"message":"x"}}}`), ErrInStream},
		{"incomplete", strings.Join(evs[:3], "") + ev("response.incomplete", `{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":1,"output_tokens":1}}}`), ""},
	}
	for _, tt := range tests {
		m, _ := measure(APIResponses, 200, "text/event-stream", []step{{time.Millisecond, tt.body}}, time.Second, nil)
		if m.ErrorType != tt.errType {
			t.Errorf("%s: error type %q (%s), want %q", tt.name, m.ErrorType, m.Error, tt.errType)
		}
	}
}

// messagesStream is a streamed message with thinking before the answer,
// shaped as Ollama v0.17.4 writes it (no ping; message_start's input count
// an estimate that message_delta corrects).
func messagesStream(thinking, answer []string, estimate, in, out int) []string {
	evs := []string{ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":`+itoa(estimate)+`,"output_tokens":0}}}`)}
	idx := 0
	if len(thinking) > 0 {
		evs = append(evs, ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`))
		for _, th := range thinking {
			evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"`+th+`"}}`))
		}
		evs = append(evs, ev("content_block_stop", `{"type":"content_block_stop","index":0}`))
		idx = 1
	}
	evs = append(evs, ev("content_block_start", `{"type":"content_block_start","index":`+itoa(idx)+`,"content_block":{"type":"text","text":""}}`))
	for _, a := range answer {
		evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","index":`+itoa(idx)+`,"delta":{"type":"text_delta","text":"`+a+`"}}`))
	}
	return append(evs,
		ev("content_block_stop", `{"type":"content_block_stop","index":`+itoa(idx)+`}`),
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":`+itoa(in)+`,"output_tokens":`+itoa(out)+`}}`),
		ev("message_stop", `{"type":"message_stop"}`))
}

func TestMeterMessagesStream(t *testing.T) {
	ms := time.Millisecond
	evs := messagesStream([]string{"a"}, []string{"X", "Y"}, 4, 11, 3)
	var steps []step
	for i, e := range evs {
		steps = append(steps, step{time.Duration(50+10*i) * ms, e})
	}
	m, _ := measure(APIAnthropic, 200, "text/event-stream", steps, 200*ms, nil)
	if !m.OK() {
		t.Fatalf("error %s: %s", m.ErrorType, m.Error)
	}
	// evs: 0 start, 1 block start, 2 thinking, 3 block stop, 4 block start, 5 X, 6 Y
	if ttft, _ := m.TTFT(); ttft != 70*ms {
		t.Errorf("TTFT = %v, want 70ms", ttft)
	}
	if th, ok := m.ThinkingTime(); !ok || th != 30*ms {
		t.Errorf("thinking time = %v, %v; want 30ms", th, ok)
	}
	if m.InputTokens != 11 || m.OutputTokens != 3 || m.TokensEstimated || m.ReasoningTokensReported {
		t.Errorf("tokens in %d out %d estimated %v reasoning reported %v; want the corrected 11, 3", m.InputTokens, m.OutputTokens, m.TokensEstimated, m.ReasoningTokensReported)
	}
	if m.FinishReason != "end_turn" || m.OutputChunks != 3 {
		t.Errorf("finish %q, output chunks %d", m.FinishReason, m.OutputChunks)
	}

	// Cut after message_start: the estimate stays, the output is counted
	// from chunks, and the stream is incomplete.
	m, _ = measure(APIAnthropic, 200, "text/event-stream", []step{{ms, strings.Join(evs[:6], "")}}, 10*ms, nil)
	if m.ErrorType != ErrIncomplete || m.InputTokens != 4 || !m.TokensEstimated || m.OutputTokens != 2 {
		t.Errorf("cut stream: error %q in %d out %d estimated %v", m.ErrorType, m.InputTokens, m.OutputTokens, m.TokensEstimated)
	}
	// No thinking: no thinking time.
	m, _ = measure(APIAnthropic, 200, "text/event-stream", []step{{ms, strings.Join(messagesStream(nil, []string{"X"}, 1, 1, 1), "")}}, 10*ms, nil)
	if _, ok := m.ThinkingTime(); ok || !m.OK() {
		t.Errorf("answer without thinking: thinking time defined, or error %q", m.ErrorType)
	}
}

func TestMeterEventAPIsWhole(t *testing.T) {
	for _, tt := range []struct {
		api  API
		body string
	}{
		{APIResponses, `{"object":"response","status":"completed","model":"m","output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":{"input_tokens":3,"output_tokens":1}}` + "\n"},
		{APIAnthropic, `{"type":"message","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}` + "\n"},
	} {
		m, _ := measure(tt.api, 200, "application/json", []step{{time.Millisecond, tt.body}}, 5*time.Millisecond, nil)
		if !m.OK() || m.InputTokens != 3 || m.OutputTokens != 1 || m.OutputChunks != 1 {
			t.Errorf("%s whole: %+v", tt.api, m)
		}
	}
}

func TestEndpointsOfEventAPIs(t *testing.T) {
	for _, tt := range []struct {
		path, body string
		api        API
		want       Request
	}{
		{"/v1/responses", `{"model":"r","input":"hi","stream":true,"max_output_tokens":9}`, APIResponses, Request{Model: "r", Stream: true, MaxTokens: 9}},
		{"/v1/messages", `{"model":"a","max_tokens":5,"messages":[]}`, APIAnthropic, Request{Model: "a", MaxTokens: 5}},
	} {
		e, ok := EndpointOf(tt.path)
		if !ok || e.API != tt.api || e.Operation != OpChat {
			t.Fatalf("EndpointOf(%q) = %+v, %v", tt.path, e, ok)
		}
		if got, err := ParseRequest(e, []byte(tt.body)); err != nil || got != tt.want {
			t.Errorf("ParseRequest(%s) = %+v, %v; want %+v", tt.body, got, err, tt.want)
		}
	}
	for path, want := range map[string]API{"/v1/responses/resp_1": APIResponses, "/v1/messages/count_tokens": APIAnthropic,
		"/v1/models": APIOpenAI, "/api/tags": APIOllama, "/": APIOllama} {
		if got := APIOf(path); got != want {
			t.Errorf("APIOf(%q) = %s, want %s", path, got, want)
		}
	}
	for _, w := range Wires() {
		if got, ok := WireNamed(w.Name); !ok || got != w || w.API.Wire() != w {
			t.Errorf("wire %q is not found by its name and API", w.Name)
		}
	}
}

//go:build sdk

package sdktest

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// The fake upstream's known timing: the first chunk after firstDelay, the
// next ones gap apart; thinking reasoning chunks, then the answer, one
// token each, maxTokens in all.
const (
	firstDelay = 30 * time.Millisecond
	gap        = 10 * time.Millisecond
	fakeInput  = 11
)

// serveFake streams a Responses or Messages answer as OpenAI and Anthropic
// do (OpenAI's reasoning-token count included), calling rec with every
// output chunk's write and flush times.
func serveFake(w http.ResponseWriter, r *http.Request, sdk string, rec func(sent)) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	seq := 0
	write := func(name, data string) {
		if sdk == "openai" {
			data = fmt.Sprintf(`{"type":%q,"sequence_number":%d,%s}`, name, seq, data)
			seq++
		} else {
			data = fmt.Sprintf(`{"type":%q%s}`, name, data)
		}
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
	}
	resp := func(status, usage string) string {
		return fmt.Sprintf(`"response":{"id":"resp_1","object":"response","created_at":1,"status":%q,"model":"tiny","output":[],"usage":%s}`, status, usage)
	}
	if sdk == "openai" {
		write("response.created", resp("in_progress", "null"))
		write("response.in_progress", resp("in_progress", "null"))
		write("response.output_item.added", `"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}`)
	} else {
		write("message_start", `,"message":{"id":"msg_1","type":"message","role":"assistant","model":"tiny","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}`)
		write("content_block_start", `,"index":0,"content_block":{"type":"thinking","thinking":"","signature":""}`)
	}
	f.Flush()
	for i := 0; i < maxTokens; i++ {
		d := gap
		if i == 0 {
			d = firstDelay
		}
		time.Sleep(d)
		reasoning := i < thinking
		if !reasoning && i == thinking { // the answer's item begins with its first token
			if sdk == "openai" {
				write("response.output_item.added", `"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}`)
				write("response.content_part.added", `"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}`)
			} else {
				write("content_block_delta", `,"index":0,"delta":{"type":"signature_delta","signature":"c2lnbmF0dXJl"}`)
				write("content_block_stop", `,"index":0`)
				write("content_block_start", `,"index":1,"content_block":{"type":"text","text":""}`)
			}
		}
		at := time.Now()
		switch {
		case sdk == "openai" && reasoning:
			write("response.reasoning_summary_text.delta", fmt.Sprintf(`"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"r%d "`, i))
		case sdk == "openai":
			write("response.output_text.delta", fmt.Sprintf(`"item_id":"msg_1","output_index":1,"content_index":0,"delta":"t%d "`, i))
		case reasoning:
			write("content_block_delta", fmt.Sprintf(`,"index":0,"delta":{"type":"thinking_delta","thinking":"r%d "}`, i))
		default:
			write("content_block_delta", fmt.Sprintf(`,"index":1,"delta":{"type":"text_delta","text":"t%d "}`, i))
		}
		f.Flush()
		rec(sent{write: at, sent: time.Now(), reasoning: reasoning})
	}
	if sdk == "openai" {
		write("response.completed", resp("completed", fmt.Sprintf(`{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d,`+
			`"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":%d}}`, fakeInput, maxTokens, fakeInput+maxTokens, thinking)))
	} else {
		write("content_block_stop", `,"index":1`)
		write("message_delta", fmt.Sprintf(`,"delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":%d,"output_tokens":%d}`, fakeInput, maxTokens))
		write("message_stop", "")
	}
	f.Flush()
}

package loadgen

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeLLM streams a fixed answer and stamps, per vegeta sequence number, the
// moment every output chunk was written and flushed: the ground truth the
// load tester's figures are checked against.
type fakeLLM struct {
	api      string // "ollama" or "openai"
	chunks   int    // output chunks per answer
	interval time.Duration
	// phase, when set, delays each answer's first chunk by a random part of
	// interval, as streams do that joined a batch at different steps.
	phase bool
	mode  string // "", "garbage", "status500", "instream", "truncated", "nousage"

	mu   sync.Mutex
	sent map[uint64][]sentChunk
	reqs map[uint64]http.Header
	body map[uint64]string
}

func newFakeLLM(t *testing.T, f *fakeLLM) *httptest.Server {
	t.Helper()
	f.sent, f.reqs, f.body = map[uint64][]sentChunk{}, map[uint64]http.Header{}, map[uint64]string{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, _ := strconv.ParseUint(r.Header.Get("X-Vegeta-Seq"), 10, 64)
	var buf [4096]byte
	n, _ := r.Body.Read(buf[:])
	f.mu.Lock()
	f.reqs[seq] = r.Header.Clone()
	f.body[seq] = string(buf[:n])
	f.mu.Unlock()
	fl := w.(http.Flusher)
	switch f.mode {
	case "status500":
		http.Error(w, `{"error":"model exploded"}`, http.StatusInternalServerError)
		return
	case "garbage":
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprint(w, "\x00\xffnot json at all\n<html>oops</html>\n")
		return
	}
	if f.api == "openai" {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	stamps := make([]sentChunk, 0, f.chunks)
	if f.phase {
		time.Sleep(time.Duration(rand.Int64N(int64(f.interval))))
	}
	for i := 0; i < f.chunks; i++ {
		if i > 0 {
			time.Sleep(f.interval)
		}
		writeAt := time.Now()
		if f.api == "openai" {
			fmt.Fprintf(w, "data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"tok%d \"}}]}\n\n", i)
		} else {
			fmt.Fprintf(w, "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"tok%d \"},\"done\":false}\n", i)
		}
		fl.Flush()
		stamps = append(stamps, sentChunk{writeAt, time.Now()})
		if f.mode == "instream" && i == 1 {
			if f.api == "openai" {
				fmt.Fprint(w, "data: {\"error\":{\"message\":\"out of memory\"}}\n\n")
			} else {
				fmt.Fprint(w, "{\"error\":\"out of memory\"}\n")
			}
			break
		}
	}
	f.mu.Lock()
	f.sent[seq] = stamps
	f.mu.Unlock()
	if f.mode == "instream" || f.mode == "truncated" {
		return
	}
	// Output tokens: 2 per chunk, so a chunk count is told from a server count.
	if f.api == "openai" {
		fmt.Fprint(w, "data: {\"model\":\"m\",\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n")
		if f.mode != "nousage" {
			fmt.Fprintf(w, "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":%d}}\n\n", 2*f.chunks)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	} else {
		fmt.Fprintf(w, "{\"model\":\"m\",\"done\":true,\"done_reason\":\"length\",\"total_duration\":9000000,"+
			"\"load_duration\":1000000,\"prompt_eval_count\":17,\"prompt_eval_duration\":2000000,"+
			"\"eval_count\":%d,\"eval_duration\":5000000}\n", 2*f.chunks)
	}
}

// sentChunk is when a chunk left: after write began, before flush returned.
type sentChunk struct{ write, sent time.Time }

// outside is how far x lies outside [lo, hi], in seconds; 0 inside. A
// chunk can be read from the moment its write began until a little after
// the flush returned, so that interval is the ground truth.
func outside(x, lo, hi time.Duration) float64 {
	switch {
	case x < lo:
		return (lo - x).Seconds()
	case x > hi:
		return (x - hi).Seconds()
	}
	return 0
}

// arrivalError is how far each output chunk's arrival, as the figures
// tell it (start + first token + Σ gaps), lies from when it was sent; and
// how far each measured gap lies from the gaps the sends allow.
func arrivalError(f Figures, sent []sentChunk) (ttft float64, chunks, gaps []float64) {
	at := f.Start.Add(f.FirstToken)
	for k := range sent {
		if k > 0 {
			g := f.Gaps[k-1]
			gaps = append(gaps, outside(g, sent[k].write.Sub(sent[k-1].sent), sent[k].sent.Sub(sent[k-1].write)))
			at = at.Add(g)
		}
		chunks = append(chunks, outside(at.Sub(sent[k].write), 0, sent[k].sent.Sub(sent[k].write)))
	}
	return chunks[0], chunks, gaps
}

func (f *fakeLLM) stamps(seq uint64) []sentChunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[seq]
}

func (f *fakeLLM) request(seq uint64) (http.Header, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[seq], f.body[seq]
}

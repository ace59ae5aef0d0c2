//go:build bench

package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The capacity benchmark runs this fake LLM server as a separate process:
// the test binary re-executes itself with fakeServerEnv set and init serves
// instead of testing.
const fakeServerEnv = "TOKENTRACE_BENCH_FAKE_SERVER"

func init() {
	spec := os.Getenv(fakeServerEnv)
	if spec == "" {
		return
	}
	if err := serveFake(spec); err != nil {
		fmt.Fprintln(os.Stderr, "fake server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveFake reads "chunks,interval,groundTruthFile", prints its address,
// streams Ollama NDJSON answers of about that many chunks that far apart (each
// answer starting at a random phase of the interval, as independent
// requests do) and, on SIGTERM, writes every chunk's flush time to the
// ground-truth file as "traceID index writeUnixNanos flushedUnixNanos
// wakeupLatenessNanos" lines: the chunk left between the write's start and
// the flush's return.
func serveFake(spec string) error {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		return fmt.Errorf("spec %q: want chunks,interval,file", spec)
	}
	chunks, err := strconv.Atoi(parts[0])
	if err != nil {
		return err
	}
	interval, err := time.ParseDuration(parts[1])
	if err != nil {
		return err
	}
	// The server must cost little beside the load tester it measures:
	// chunks are prebuilt, stamps kept as numbers and written at the end.
	debug.SetGCPercent(800)
	chunk := []byte("{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"tok \"},\"done\":false}\n")
	type record struct {
		trace              string
		write, sent, lates []int64
	}
	var mu sync.Mutex
	var truth []record
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trace := r.Header.Get("Traceparent")
		if p := strings.Split(trace, "-"); len(p) == 4 {
			trace = p[1]
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		fl := w.(http.Flusher)
		fl.Flush()
		// Answers vary in length (chunks/2 … 3·chunks/2), as real ones do, so
		// a closed loop does not march in lockstep.
		n := chunks/2 + rand.IntN(chunks+1)
		rec := record{trace: trace, write: make([]int64, 0, n), sent: make([]int64, 0, n), lates: make([]int64, 0, n)}
		next := time.Now().Add(time.Duration(rand.Int64N(int64(interval))))
		for i := 0; i < n; i++ {
			time.Sleep(time.Until(next))
			// How late this goroutine woke: the machine's scheduling noise,
			// which the client's reads suffer too.
			writeAt := time.Now()
			late := writeAt.Sub(next)
			next = next.Add(interval)
			w.Write(chunk)
			fl.Flush()
			rec.write = append(rec.write, writeAt.UnixNano())
			rec.sent = append(rec.sent, time.Now().UnixNano())
			rec.lates = append(rec.lates, int64(late))
		}
		fmt.Fprintf(w, "{\"model\":\"m\",\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":12,\"eval_count\":%d}\n", n)
		mu.Lock()
		truth = append(truth, rec)
		mu.Unlock()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	fmt.Println(ln.Addr().String())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go srv.Serve(ln)
	<-sigs
	srv.Close()
	f, err := os.Create(parts[2])
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	mu.Lock()
	for _, rec := range truth {
		for i := range rec.sent {
			fmt.Fprintf(bw, "%s %d %d %d %d\n", rec.trace, i, rec.write[i], rec.sent[i], rec.lates[i])
		}
	}
	mu.Unlock()
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

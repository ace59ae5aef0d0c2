//go:build bench

package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/loadreport"
	"github.com/tokentrace/tokentrace/internal/stats"
)

var (
	benchStreams  = flag.String("streams", "250,500,1000,2000,3000,4000", "concurrent streams to try, in order")
	benchWindow   = flag.Duration("window", 10*time.Second, "measured window per step")
	benchWarmup   = flag.Duration("warmup", 4*time.Second, "warm-up per step (excluded)")
	benchChunks   = flag.Int("chunks", 40, "output chunks per answer")
	benchInterval = flag.Duration("interval", 50*time.Millisecond, "time between chunks of one answer")
	benchOut      = flag.String("bench-out", "", "also write the table to this file")
	benchWhen     = flag.Bool("when", false, "log the 100 ms spans with the most chunks over 1 ms late (are errors bunched?)")
	benchAll      = flag.Bool("all", false, "measure every -streams step, even past the first that misses 1 ms")
	benchPin      = flag.Bool("pin", false, "pin the fake server to CPU 1 and the load generator to CPU 0")
	benchNice     = flag.Int("nice", -10, "run loadtest, vegeta and the fake server at this nice level (0: as is; below 0 needs root)")
)

// niced wraps a command in nice(1) when -nice is set, so that on a shared
// machine other processes' CPU does not show up as timing error, and in
// taskset(1) when cpus is set, so the fake server and the load generator do
// not take time slices from each other.
func niced(cpus, name string, args ...string) *exec.Cmd {
	var pre []string
	if *benchNice != 0 {
		pre = append(pre, "nice", "-n", strconv.Itoa(*benchNice))
	}
	if cpus != "" && *benchPin {
		pre = append(pre, "taskset", "-c", cpus)
	}
	if len(pre) == 0 {
		return exec.Command(name, args...)
	}
	return exec.Command(pre[0], append(append(pre[1:], name), args...)...)
}

// groundTruth is what the fake server recorded.
type groundTruth struct {
	sent map[string][][2]int64 // [write start, flush return] (Unix ns) by trace id, in chunk order
	late []float64             // how late the server's timers woke, ms
}

// fakeServer starts the fake LLM server process; stop ends it and returns
// the ground truth.
func fakeServer(t *testing.T) (addr string, stop func() groundTruth) {
	t.Helper()
	truthFile := filepath.Join(t.TempDir(), "truth.txt")
	cmd := niced("1", os.Args[0])
	cmd.Env = append(os.Environ(), fakeServerEnv+"="+strconv.Itoa(*benchChunks)+","+benchInterval.String()+","+truthFile)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("fake server: %v", err)
	}
	stopped := false
	stopFn := func() groundTruth {
		if stopped {
			return groundTruth{}
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		b, err := os.ReadFile(truthFile)
		if err != nil {
			t.Fatalf("ground truth: %v", err)
		}
		truth := groundTruth{sent: map[string][][2]int64{}}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(l)
			if len(f) != 5 {
				continue
			}
			w, _ := strconv.ParseInt(f[2], 10, 64)
			ns, _ := strconv.ParseInt(f[3], 10, 64)
			late, _ := strconv.ParseInt(f[4], 10, 64)
			truth.sent[f[0]] = append(truth.sent[f[0]], [2]int64{w, ns})
			truth.late = append(truth.late, float64(late)/1e6)
		}
		return truth
	}
	t.Cleanup(func() { stopFn() })
	return strings.TrimSpace(line), stopFn
}

type step struct {
	streams              int
	requests, errors     int
	reqPerSec, tokPerSec float64
	ttftP50, ttftP99     float64 // timing error, ms
	chunkP50, chunkP99   float64
	chunks               int
	loadAvg              string  // the machine's 1-minute load average after the step
	serverLateP99        float64 // the fake server's timer lateness p99, ms: the machine's noise
	cpuPerSec            float64 // CPU seconds per second of run
	vegetaReqPerSec      float64
	vegetaCPUPerSec      float64
	vegetaSuccess        float64
}

// logWorstSeconds logs the 100 ms spans holding the most chunks more than
// 1 ms late: errors bunched in a few spans are stalls of the whole process
// (the machine, a collection); spread thinly they are queueing.
func logWorstSeconds(t *testing.T, lateAt [][2]float64) {
	t.Helper()
	type span struct{ late, all int }
	spans := map[int64]*span{}
	var first float64
	for _, l := range lateAt {
		if first == 0 || l[0] < first {
			first = l[0]
		}
	}
	total := 0
	for _, l := range lateAt {
		k := int64((l[0] - first) / 1e8)
		s := spans[k]
		if s == nil {
			s = &span{}
			spans[k] = s
		}
		s.all++
		if l[1] > 1 {
			s.late++
			total++
		}
	}
	keys := make([]int64, 0, len(spans))
	for k := range spans {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return spans[keys[i]].late > spans[keys[j]].late })
	var b strings.Builder
	for _, k := range keys[:min(8, len(keys))] {
		fmt.Fprintf(&b, " [%.1fs: %d of %d]", float64(k)/10, spans[k].late, spans[k].all)
	}
	t.Logf("%d chunks over 1 ms late in %d spans of 100 ms; worst:%s", total, len(spans), b.String())
}

// outsideMS is how far an arrival lies outside the [write, flushed]
// interval in which its chunk left, in ms; 0 inside.
func outsideMS(at int64, sent [2]int64) float64 {
	switch {
	case at < sent[0]:
		return float64(sent[0]-at) / 1e6
	case at > sent[1]:
		return float64(at-sent[1]) / 1e6
	}
	return 0
}

func cpuSeconds(ps *os.ProcessState) float64 {
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

func TestCapacity(t *testing.T) {
	lt, vg := binaries(t)
	var steps []step
	for _, s := range strings.Split(*benchStreams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("-streams: %v", err)
		}
		st := measureLoadtest(t, lt, n)
		measureVegeta(t, vg, n, &st)
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			st.loadAvg = strings.Fields(string(b))[0]
		}
		t.Logf("streams %d: %d requests (%d errors), %.1f req/s, %.0f tok/s, chunk error p50 %.3f ms p99 %.3f ms, TTFT error p99 %.3f ms, server timer lateness p99 %.3f ms, CPU %.2f cores; vegeta %.1f req/s, CPU %.2f cores",
			st.streams, st.requests, st.errors, st.reqPerSec, st.tokPerSec, st.chunkP50, st.chunkP99, st.ttftP99, st.serverLateP99, st.cpuPerSec, st.vegetaReqPerSec, st.vegetaCPUPerSec)
		steps = append(steps, st)
		if (st.chunkP99 > 1 || st.ttftP99 > 1 || st.errors > 0) && !*benchAll {
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| streams | requests | errors | req/s | output tok/s | chunk error p50 / p99 (ms) | TTFT error p99 (ms) | server timer lateness p99 (ms) | loadtest CPU (cores) | vegeta req/s | vegeta CPU (cores) | load avg |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range steps {
		fmt.Fprintf(&b, "| %d | %d | %d | %.1f | %.0f | %.3f / %.3f | %.3f | %.3f | %.2f | %.1f | %.2f | %s |\n", s.streams, s.requests, s.errors,
			s.reqPerSec, s.tokPerSec, s.chunkP50, s.chunkP99, s.ttftP99, s.serverLateP99, s.cpuPerSec, s.vegetaReqPerSec, s.vegetaCPUPerSec, s.loadAvg)
	}
	t.Logf("\n%s", b.String())
	if *benchOut != "" {
		if err := os.WriteFile(*benchOut, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func measureLoadtest(t *testing.T, lt string, n int) step {
	t.Helper()
	addr, stop := fakeServer(t)
	file := filepath.Join(t.TempDir(), "r.bin")
	cmd := niced("0", lt, "attack", "-url", "http://"+addr, "-model", "m", "-prompt-size", "small",
		"-concurrency", strconv.Itoa(n), "-duration", benchWindow.String(), "-warmup", benchWarmup.String(),
		"-max-tokens", strconv.Itoa(*benchChunks), "-timeout", "60s", "-output", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("loadtest attack at %d streams: %v\n%s", n, err, stderr.String())
	}
	wall := time.Since(start).Seconds()
	truth := stop()

	st := step{streams: n, cpuPerSec: cpuSeconds(cmd.ProcessState) / wall}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(bufio.NewReader(f))
	c := loadreport.NewCollector(loadreport.Options{})
	var ttftErr, chunkErr []float64
	var lateAt [][2]float64 // arrival (Unix ns), error (ms)
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			break
		}
		if err := c.Add(&r); err != nil {
			t.Fatal(err)
		}
		fig, err := loadgen.Decode(&r)
		if err != nil || !fig.OK() {
			continue
		}
		sent := truth.sent[fig.TraceID]
		if len(sent) != fig.OutputChunks || len(sent) == 0 {
			t.Fatalf("request %s: %d chunks measured, %d sent", fig.TraceID, fig.OutputChunks, len(sent))
		}
		at := fig.Start.Add(fig.FirstToken).UnixNano()
		ttftErr = append(ttftErr, outsideMS(at, sent[0]))
		chunkErr = append(chunkErr, outsideMS(at, sent[0]))
		lateAt = append(lateAt, [2]float64{float64(at), outsideMS(at, sent[0])})
		for k, g := range fig.Gaps {
			at += int64(g)
			chunkErr = append(chunkErr, outsideMS(at, sent[k+1]))
			lateAt = append(lateAt, [2]float64{float64(at), outsideMS(at, sent[k+1])})
		}
	}
	if *benchWhen {
		logWorstSeconds(t, lateAt)
	}
	rep := c.Report()
	st.requests, st.errors = rep.Requests, rep.Requests-rep.Succeeded
	st.reqPerSec, st.tokPerSec = rep.RequestThroughput, rep.OutputThroughput
	te, ce := stats.Summarize(ttftErr), stats.Summarize(chunkErr)
	st.ttftP50, st.ttftP99, st.chunkP50, st.chunkP99, st.chunks = te.P50, te.P99, ce.P50, ce.P99, ce.Count
	st.serverLateP99 = stats.Summarize(truth.late).P99
	return st
}

func measureVegeta(t *testing.T, vg string, n int, st *step) {
	t.Helper()
	addr, stop := fakeServer(t)
	defer stop()
	dir := t.TempDir()
	body := fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"options":{"num_predict":%d}}`, *benchChunks)
	if err := os.WriteFile(filepath.Join(dir, "body.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	targets := fmt.Sprintf("POST http://%s/api/chat\nContent-Type: application/json\n@%s\n", addr, filepath.Join(dir, "body.json"))
	total := *benchWindow + *benchWarmup
	cmd := niced("0", vg, "attack", "-rate", "0", "-max-workers", strconv.Itoa(n), "-workers", strconv.Itoa(n),
		"-duration", total.String(), "-max-body", "0", "-timeout", "60s", "-output", filepath.Join(dir, "v.bin"))
	cmd.Stdin = strings.NewReader(targets)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("vegeta attack at %d streams: %v\n%s", n, err, stderr.String())
	}
	wall := time.Since(start).Seconds()
	st.vegetaCPUPerSec = cpuSeconds(cmd.ProcessState) / wall
	// The same estimator as loadtest's, on vegeta's results with the same
	// warm-up dropped.
	f, err := os.Open(filepath.Join(dir, "v.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(bufio.NewReader(f))
	c := loadreport.NewCollector(loadreport.Options{})
	var first time.Time
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			break
		}
		if first.IsZero() {
			first = r.Timestamp
		}
		if r.Timestamp.Sub(first) < *benchWarmup {
			continue
		}
		if err := c.Add(&r); err != nil {
			t.Fatal(err)
		}
	}
	rep := c.Report()
	st.vegetaReqPerSec, st.vegetaSuccess = rep.RequestThroughput, rep.SuccessRatio
}

// Package memsample samples the resident memory of a whole process tree (an
// engine and its runners) at a fixed interval and keeps the peak.
package memsample

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// TreePids returns the process pid and all its descendants.
func TreePids(ctx context.Context, pid int) (map[int]bool, error) {
	procs, err := tree(ctx, pid)
	if err != nil {
		return nil, err
	}
	out := map[int]bool{}
	for _, p := range procs {
		out[int(p.Pid)] = true
	}
	return out, nil
}

// TreeRSS returns the summed resident set size, in bytes, of the process pid
// and all its descendants, and how many processes that was.
func TreeRSS(ctx context.Context, pid int) (uint64, int, error) {
	procs, err := tree(ctx, pid)
	if err != nil {
		return 0, 0, err
	}
	var total uint64
	n := 0
	for _, p := range procs {
		if mi, err := p.MemoryInfoWithContext(ctx); err == nil {
			total += mi.RSS
			n++
		}
	}
	return total, n, nil
}

// tree returns the process pid and its descendants, root first.
func tree(ctx context.Context, pid int) ([]*process.Process, error) {
	procs, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int32][]*process.Process{}
	var root *process.Process
	for _, p := range procs {
		if p.Pid == int32(pid) {
			root = p
			continue
		}
		ppid, err := p.PpidWithContext(ctx)
		if err != nil {
			continue // it exited meanwhile
		}
		children[ppid] = append(children[ppid], p)
	}
	if root == nil {
		return nil, fmt.Errorf("process %d not found", pid)
	}
	var out []*process.Process
	queue := []*process.Process{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, children[p.Pid]...)
	}
	return out, nil
}

// Result summarises the samples of one sampling period.
type Result struct {
	Samples   int
	PeakBytes uint64
	MeanBytes uint64
	LastBytes uint64
	// MaxProcesses is the largest number of processes seen in the tree.
	MaxProcesses int
	// PeakVRAMBytes is the tree's peak GPU memory (NVIDIA), sampled about
	// once a second; 0 without a GPU.
	PeakVRAMBytes uint64
	VRAMSamples   int
}

// Sampler samples a process tree until stopped.
type Sampler struct {
	pid      int
	interval time.Duration
	smi      string // nvidia-smi, or "" for no GPU sampling
	ticks    int
	cancel   context.CancelFunc
	done     chan struct{}

	mu    sync.Mutex
	res   Result
	sum   float64
	onErr error
}

// Start samples pid's tree every interval (at most 250 ms is what the
// supervisor uses) from now until Stop; one sample is taken at once.
func Start(pid int, interval time.Duration) *Sampler { return StartGPU(pid, interval, "") }

// StartGPU is Start that also samples the tree's GPU memory with the
// nvidia-smi at smi (every fourth sample, since each is a process start).
func StartGPU(pid int, interval time.Duration, smi string) *Sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sampler{pid: pid, interval: interval, smi: smi, cancel: cancel, done: make(chan struct{})}
	s.sample(ctx)
	go s.loop(ctx)
	return s
}

func (s *Sampler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample(ctx)
		}
	}
}

func (s *Sampler) sample(ctx context.Context) {
	rss, n, err := TreeRSS(ctx, s.pid)
	var vram uint64
	var vramErr error
	s.mu.Lock()
	gpu := s.smi != "" && s.ticks%4 == 0
	s.ticks++
	s.mu.Unlock()
	if gpu {
		vram, vramErr = TreeVRAM(ctx, s.smi, s.pid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gpu && vramErr == nil {
		s.res.PeakVRAMBytes = max(s.res.PeakVRAMBytes, vram)
		s.res.VRAMSamples++
	}
	if err != nil {
		s.onErr = err
		return
	}
	r := &s.res
	r.Samples++
	r.LastBytes = rss
	r.PeakBytes = max(r.PeakBytes, rss)
	r.MaxProcesses = max(r.MaxProcesses, n)
	s.sum += float64(rss)
	r.MeanBytes = uint64(s.sum / float64(r.Samples))
}

// Restart ends the current sampling period and begins a new one at once,
// on the same tree: the warm-up's period ends where the measured window
// begins, so the window's peak and mean are its own. It returns the period
// that ended.
func (s *Sampler) Restart() Result {
	s.sample(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	ended := s.res
	s.res, s.sum = Result{}, 0
	if ended.Samples > 0 { // the new period starts from the last sample
		s.res = Result{Samples: 1, PeakBytes: ended.LastBytes, MeanBytes: ended.LastBytes, LastBytes: ended.LastBytes,
			MaxProcesses: ended.MaxProcesses}
		s.sum = float64(ended.LastBytes)
	}
	return ended
}

// Peak returns the peak so far.
func (s *Sampler) Peak() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.res.PeakBytes
}

// Stop ends sampling (taking one last sample if the process still runs) and
// returns the result. Err is the last sampling error, if any (the process
// exited).
func (s *Sampler) Stop() (Result, error) {
	s.cancel()
	<-s.done
	s.sample(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.res, s.onErr
}

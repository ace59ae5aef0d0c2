package matrix

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress draws a progress bar with an ETA for the whole matrix. On a
// terminal it redraws one line every second; elsewhere it writes a line per
// scenario.
type Progress struct {
	w        io.Writer
	terminal bool
	perScen  time.Duration // the planned time of one scenario, before any ran

	mu       sync.Mutex
	total    int
	done     int
	ranHere  int
	began    time.Time
	current  string
	curStart time.Time
	stop     chan struct{}
	stopped  chan struct{}
}

// NewProgress returns a progress bar on w; perScenario is the first guess
// of one scenario's time (warm-up + duration).
func NewProgress(w io.Writer, terminal bool, perScenario time.Duration) *Progress {
	return &Progress{w: w, terminal: terminal, perScen: perScenario}
}

// Begin starts the bar: total scenarios, of which done are already on disk.
func (p *Progress) Begin(total, done int) {
	p.mu.Lock()
	p.total, p.done, p.began = total, done, time.Now()
	p.mu.Unlock()
	if p.terminal {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.redraw()
	}
}

func (p *Progress) redraw() {
	defer close(p.stopped)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			fmt.Fprintf(p.w, "\r%s\033[K", p.lineLocked())
			p.mu.Unlock()
		}
	}
}

// Start says a scenario begins.
func (p *Progress) Start(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current, p.curStart = name, time.Now()
	if !p.terminal {
		fmt.Fprintln(p.w, p.lineLocked())
	}
}

// Finish says a scenario ended.
func (p *Progress) Finish(Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.ranHere++
	p.current = ""
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K")
	}
}

// End stops the bar.
func (p *Progress) End() {
	if p.terminal && p.stop != nil {
		close(p.stop)
		<-p.stopped
		p.mu.Lock()
		fmt.Fprintf(p.w, "\r%s\033[K\n", p.lineLocked())
		p.mu.Unlock()
	}
}

// ETA estimates the time left.
func (p *Progress) ETA() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.etaLocked()
}

func (p *Progress) etaLocked() time.Duration {
	per := p.perScen
	if p.ranHere > 0 {
		per = time.Since(p.began) / time.Duration(p.ranHere)
		if p.current != "" {
			per = (time.Since(p.began) - time.Since(p.curStart)) / time.Duration(p.ranHere)
		}
	}
	left := time.Duration(p.total-p.done) * per
	if p.current != "" {
		left -= min(time.Since(p.curStart), per)
	}
	return max(left, 0)
}

func (p *Progress) lineLocked() string {
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = width * p.done / p.total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	cur := ""
	if p.current != "" {
		cur = "  " + p.current
	}
	return fmt.Sprintf("[%s] %d/%d%s  elapsed %s  ETA %s", bar, p.done, p.total, cur,
		time.Since(p.began).Round(time.Second), p.etaLocked().Round(time.Second))
}

// Wrap returns a writer for log lines that go to the same terminal as the
// bar: each write first clears the bar's line, and the bar is redrawn on
// its next tick.
func (p *Progress) Wrap(w io.Writer) io.Writer {
	if !p.terminal {
		return w
	}
	return clearingWriter{p: p, w: w}
}

type clearingWriter struct {
	p *Progress
	w io.Writer
}

func (c clearingWriter) Write(b []byte) (int, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	fmt.Fprint(c.w, "\r\033[K")
	return c.w.Write(b)
}

package loadreport

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
)

// Breakdowns are the -by values of a shard report: one row per pod, or per node.
var Breakdowns = []string{"pod", "node"}

// DefaultLateAfter is how long after the agreed start a shard may begin before the report warns.
const DefaultLateAfter = time.Second

// ShardOptions configure a ShardCollector.
type ShardOptions struct {
	// Report configures every per-pod (or per-node) report.
	Report Options
	// By is "pod" or "node": the rows of the breakdown.
	By string
	// LateAfter is the start lag past which a shard is reported late (DefaultLateAfter when 0).
	LateAfter time.Duration
}

// Validate names the first unusable field.
func (o ShardOptions) Validate() error {
	if o.By != "pod" && o.By != "node" {
		return fmt.Errorf("shard report: By %q: must be one of %s", o.By, strings.Join(Breakdowns, ", "))
	}
	if o.LateAfter < 0 {
		return fmt.Errorf("shard report: LateAfter %v is negative", o.LateAfter)
	}
	return nil
}

// Interval is a bound [Lo, Hi] in seconds.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Mid is the middle of the interval, HalfWidth its uncertainty.
func (i Interval) Mid() float64       { return (i.Lo + i.Hi) / 2 }
func (i Interval) HalfWidth() float64 { return (i.Hi - i.Lo) / 2 }

// Row is one pod (or node) of a distributed attack.
type Row struct {
	Key     string    `json:"key"` // the pod, or the node
	Pods    []string  `json:"pods"`
	Nodes   []string  `json:"nodes"`
	Shards  []int     `json:"shards"` // indexes
	Started time.Time `json:"started"`
	// StartLag is Started − the agreed start, by the pod's own clock, seconds (the latest pod's for a node).
	StartLag float64 `json:"start_lag_seconds"`
	// ClockOffset bounds the server's clock minus this row's clock, seconds, from the responses' Date headers;
	// nil when no response had one or they disagree (servers with different clocks).
	ClockOffset *Interval `json:"clock_offset_seconds,omitempty"`
	// Figures is this row's own report (its own window).
	Figures Report `json:"figures"`
}

// ShardReport is what the shards of a distributed attack say beside the merged report.
type ShardReport struct {
	By string `json:"by"`
	// Count is N of -shard i/N, as the results say.
	Count   int       `json:"shards"`
	StartAt time.Time `json:"start_at"`
	Rows    []Row     `json:"rows"`
	// StartSpread is the latest start minus the earliest, each by its own clock, seconds.
	StartSpread float64 `json:"start_spread_seconds"`
	// ClockSkew bounds the largest difference between two pods' clocks, seconds, measured against the server's
	// Date headers (see Row.ClockOffset); nil when fewer than two pods could be measured.
	ClockSkew *Interval `json:"clock_skew_seconds,omitempty"`
	// Unsharded counts results made without -shard; they are in the merged report, in no row.
	Unsharded int      `json:"unsharded"`
	Warnings  []string `json:"warnings"`
}

// podState is what the collector keeps of one pod.
type podState struct {
	shard            loadgen.Shard
	coll             *Collector
	lastEnd          time.Time
	requests, failed int
	firstError       string
	clock            clockBounds
}

// clockBounds intersects, over a pod's responses, the offsets (server clock − pod clock) each response allows.
type clockBounds struct {
	n, bad int
	lo, hi time.Duration
}

// add narrows the bounds with one response: its Date (whole seconds) was stamped by the server at some instant
// between sending the request (start) and the first body byte (firstByte), by the pod's clock.
func (b *clockBounds) add(date, start, firstByte time.Time) {
	lo, hi := date.Sub(firstByte), date.Add(time.Second).Sub(start)
	if b.n == 0 {
		b.lo, b.hi = lo, hi
	} else {
		b.lo, b.hi = max(b.lo, lo), min(b.hi, hi)
	}
	b.n++
}

func (b *clockBounds) interval() *Interval {
	if b.n == 0 || b.lo > b.hi {
		return nil
	}
	return &Interval{Lo: b.lo.Seconds(), Hi: b.hi.Seconds()}
}

// ShardCollector reads the results of every shard of a distributed attack (in any order, from any number of
// files) and keeps, per pod, a Collector and what the warnings need. Use it beside the Collector of the merged
// report. It is not safe for concurrent use.
type ShardCollector struct {
	opts      ShardOptions
	pods      map[string]*podState
	nodes     map[string]*Collector
	unsharded int
	lastEnd   time.Time
	firstEnd  time.Time
}

// NewShardCollector returns an empty ShardCollector; opts must be valid.
func NewShardCollector(opts ShardOptions) (*ShardCollector, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.LateAfter == 0 {
		opts.LateAfter = DefaultLateAfter
	}
	return &ShardCollector{opts: opts, pods: map[string]*podState{}, nodes: map[string]*Collector{}}, nil
}

// Add counts one result.
func (sc *ShardCollector) Add(res *vegeta.Result) error {
	s, ok, err := loadgen.DecodeShard(res)
	if err != nil {
		return fmt.Errorf("result %d of attack %q: %w", res.Seq, res.Attack, err)
	}
	if !ok {
		sc.unsharded++
		return nil
	}
	key := s.Pod + "\x00" + fmt.Sprint(s.Index)
	p := sc.pods[key]
	if p == nil {
		p = &podState{shard: s, coll: NewCollector(sc.opts.Report)}
		sc.pods[key] = p
	}
	if err := p.coll.Add(res); err != nil {
		return err
	}
	if sc.opts.By == "node" {
		c := sc.nodes[s.Node]
		if c == nil {
			c = NewCollector(sc.opts.Report)
			sc.nodes[s.Node] = c
		}
		_ = c.Add(res) // decoded without error just above
	}
	p.requests++
	f, ferr := loadgen.Decode(res)
	start, end, firstByte := res.Timestamp, res.End(), res.End()
	if ferr == nil {
		start, end = f.Start, f.Start.Add(f.End)
		if f.FirstByte > 0 {
			firstByte = f.Start.Add(f.FirstByte)
		} else {
			firstByte = end
		}
		if !f.OK() {
			p.failed++
			if p.firstError == "" {
				p.firstError = f.ErrorType
			}
		}
	} else if res.Error != "" {
		p.failed++
	}
	if end.After(p.lastEnd) {
		p.lastEnd = end
	}
	if end.After(sc.lastEnd) {
		sc.lastEnd = end
	}
	if sc.firstEnd.IsZero() || end.Before(sc.firstEnd) {
		sc.firstEnd = end
	}
	if d := res.Headers.Get("Date"); d != "" && (ferr != nil || f.OK()) {
		if t, err := http.ParseTime(d); err == nil {
			p.clock.add(t, start, firstByte)
		}
	}
	return nil
}

// Sharded reports whether any result came from a shard.
func (sc *ShardCollector) Sharded() bool { return len(sc.pods) > 0 }

// Report computes the breakdown and the warnings.
func (sc *ShardCollector) Report() ShardReport {
	r := ShardReport{By: sc.opts.By, Unsharded: sc.unsharded, Warnings: []string{}}
	pods := make([]*podState, 0, len(sc.pods))
	for _, p := range sc.pods {
		pods = append(pods, p)
	}
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].shard.Index != pods[j].shard.Index {
			return pods[i].shard.Index < pods[j].shard.Index
		}
		return pods[i].shard.Pod < pods[j].shard.Pod
	})
	counts, startAts := map[int]bool{}, map[time.Time]bool{}
	byIndex := map[int][]string{}
	var earliest, latest time.Time
	for _, p := range pods {
		s := p.shard
		counts[s.Count] = true
		startAts[s.StartAt] = true
		byIndex[s.Index] = append(byIndex[s.Index], s.Pod)
		if earliest.IsZero() || s.Started.Before(earliest) {
			earliest = s.Started
		}
		if s.Started.After(latest) {
			latest = s.Started
		}
		if s.Count > r.Count {
			r.Count = s.Count
		}
		if !s.StartAt.IsZero() {
			r.StartAt = s.StartAt
		}
	}
	r.StartSpread = latest.Sub(earliest).Seconds()
	warn := func(format string, a ...any) { r.Warnings = append(r.Warnings, fmt.Sprintf(format, a...)) }
	if len(counts) > 1 {
		warn("the results disagree on the number of shards (%s): files of different attacks merged?", joinInts(keys(counts)))
	}
	if len(startAts) > 1 {
		warn("the shards were given different -start-at times: files of different attacks merged?")
	}
	for i := range r.Count {
		switch n := len(byIndex[i]); {
		case n == 0:
			warn("shard %d/%d: no results (its pod failed before writing any, or its file is missing)", i, r.Count)
		case n > 1:
			warn("shard %d/%d: results from %d pods (%s); a pod run again adds load outside the window", i, r.Count, n, strings.Join(byIndex[i], ", "))
		}
	}
	window := sc.lastEnd.Sub(sc.firstEnd)
	for _, p := range pods {
		s := p.shard
		if !s.StartAt.IsZero() {
			if lag := s.Started.Sub(s.StartAt); lag > sc.opts.LateAfter {
				warn("pod %s (shard %d/%d) started %s after -start-at", s.Pod, s.Index, s.Count, lag.Round(time.Millisecond))
			}
		}
		if p.failed > 0 && p.failed*10 >= p.requests {
			warn("pod %s (shard %d/%d): %d of %d requests failed (first error: %s)", s.Pod, s.Index, s.Count, p.failed, p.requests, p.firstError)
		}
		if early := sc.lastEnd.Sub(p.lastEnd); window > 0 && early > window/10 && early > time.Second {
			warn("pod %s (shard %d/%d) ended %s before the last pod: it stopped early (killed? failed?) or its clock is behind",
				s.Pod, s.Index, s.Count, early.Round(time.Millisecond))
		}
	}
	if sc.unsharded > 0 {
		warn("%d results carry no shard (made without -shard): they are in the totals, in no row", sc.unsharded)
	}
	r.Rows = sc.rows(pods)
	r.ClockSkew = clockSkew(r.Rows)
	return r
}

// rows makes one row per pod, or per node.
func (sc *ShardCollector) rows(pods []*podState) []Row {
	var rows []Row
	if sc.opts.By == "pod" {
		for _, p := range pods {
			row := Row{Key: p.shard.Pod, Pods: []string{p.shard.Pod}, Nodes: []string{p.shard.Node},
				Shards: []int{p.shard.Index}, Started: p.shard.Started, ClockOffset: p.clock.interval(), Figures: p.coll.Report()}
			if !p.shard.StartAt.IsZero() {
				row.StartLag = p.shard.Started.Sub(p.shard.StartAt).Seconds()
			}
			rows = append(rows, row)
		}
		return rows
	}
	byNode := map[string]*Row{}
	bounds := map[string]*clockBounds{}
	var order []string
	for _, p := range pods {
		n := p.shard.Node
		row := byNode[n]
		if row == nil {
			row = &Row{Key: n, Started: p.shard.Started, Figures: sc.nodes[n].Report()}
			byNode[n], bounds[n] = row, &clockBounds{}
			order = append(order, n)
		}
		row.Pods = append(row.Pods, p.shard.Pod)
		row.Shards = append(row.Shards, p.shard.Index)
		if p.shard.Started.After(row.Started) {
			row.Started = p.shard.Started
		}
		if !p.shard.StartAt.IsZero() {
			row.StartLag = max(row.StartLag, p.shard.Started.Sub(p.shard.StartAt).Seconds())
		}
		// Pods on one node share its clock: their bounds intersect.
		b := bounds[n]
		if p.clock.n > 0 {
			if b.n == 0 {
				*b = p.clock
			} else {
				b.lo, b.hi, b.n = max(b.lo, p.clock.lo), min(b.hi, p.clock.hi), b.n+p.clock.n
			}
		}
	}
	sort.Strings(order)
	for _, n := range order {
		row := byNode[n]
		row.Nodes = []string{n}
		row.ClockOffset = bounds[n].interval()
		rows = append(rows, *row)
	}
	return rows
}

// clockSkew bounds the largest difference between two rows' clocks: each row's offset to the server is known
// within its interval, so the difference of two offsets lies between (lo_i − hi_j) and (hi_i − lo_j).
func clockSkew(rows []Row) *Interval {
	var ivs []Interval
	for _, r := range rows {
		if r.ClockOffset != nil {
			ivs = append(ivs, *r.ClockOffset)
		}
	}
	if len(ivs) < 2 {
		return nil
	}
	var best Interval
	for i := range ivs {
		for j := range ivs {
			if i == j {
				continue
			}
			lo, hi := max(0, ivs[i].Lo-ivs[j].Hi), ivs[i].Hi-ivs[j].Lo
			best.Lo, best.Hi = max(best.Lo, lo), max(best.Hi, hi)
		}
	}
	return &best
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// ShardHeader is the Result header that says which shard of a distributed attack made a result: one line of
// JSON beside FiguresHeader, so it travels through vegeta's encoders and the real vegeta CLI the same way.
const ShardHeader = "X-Tokentrace-Shard"

// Shard is one of Count attacks that together make one distributed attack (N pods of an Indexed Job, or N hosts):
// each takes 1/Count of the load (Split), all start at StartAt, and every result carries the shard's identity so
// that `loadtest report` can merge the files and tell the shards apart.
type Shard struct {
	// Index is 0 … Count−1 (an Indexed Job's completion index).
	Index int
	// Count is the number of shards.
	Count int
	// Pod and Node name where the shard ran (a pod and its node, or a host and "").
	Pod, Node string
	// StartAt is the agreed start instant; zero when none was given.
	StartAt time.Time
	// Started is when this shard began its attack, by its own clock (after waiting for StartAt).
	Started time.Time
}

// ParseShard reads "i/N" (0 ≤ i < N), the -shard flag's value.
func ParseShard(s string) (index, count int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		index, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			count, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("shard %q: want i/N, e.g. 0/10", s)
	}
	if count < 1 || index < 0 || index >= count {
		return 0, 0, fmt.Errorf("shard %q: want 0 ≤ i < N and N ≥ 1", s)
	}
	return index, count, nil
}

// Validate names the first unusable field.
func (s Shard) Validate() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want 0 ≤ Index < Count", s.Index, s.Count)
	}
	if strings.ContainsAny(s.Pod+s.Node, "\r\n") {
		return errors.New("shard: Pod and Node must be one line")
	}
	return nil
}

// share is shard i's part of total split over n as evenly as whole numbers allow: the parts sum to total.
func share(total uint64, i, n int) uint64 {
	q, r := total/uint64(n), total%uint64(n)
	if uint64(i) < r {
		q++
	}
	return q
}

// Split turns the options of the whole attack into this shard's: 1/Count of the rate, or of the concurrency of a
// closed loop; of a concurrency cap, of Requests and of WarmupRequests, in whole numbers that add up to the
// totals. Duration and Warmup stay: every shard runs for the whole window. A Seed is offset by Index, so the
// shards' Poisson arrivals and prompt prefixes differ.
func (s Shard) Split(o *Options) error {
	if err := s.Validate(); err != nil {
		return err
	}
	n := s.Count
	if o.Rate > 0 {
		o.Rate /= float64(n)
		if o.Concurrency > 0 {
			if o.Concurrency < n {
				return fmt.Errorf("shard %d/%d: Concurrency cap %d is smaller than the number of shards", s.Index, n, o.Concurrency)
			}
			o.Concurrency = int(share(uint64(o.Concurrency), s.Index, n))
		}
	} else {
		if o.Concurrency < n {
			return fmt.Errorf("shard %d/%d: Concurrency %d is smaller than the number of shards: every shard needs a worker", s.Index, n, o.Concurrency)
		}
		o.Concurrency = int(share(uint64(o.Concurrency), s.Index, n))
	}
	if o.Requests > 0 {
		if o.Requests < uint64(n) {
			return fmt.Errorf("shard %d/%d: Requests %d is smaller than the number of shards", s.Index, n, o.Requests)
		}
		o.Requests = share(o.Requests, s.Index, n)
	}
	o.WarmupRequests = share(o.WarmupRequests, s.Index, n)
	if o.Seed != 0 {
		o.Seed += uint64(s.Index)
	}
	return nil
}

// wireShard is the JSON form; times in Unix nanoseconds.
type wireShard struct {
	V       int    `json:"v"`
	Index   int    `json:"index"`
	Count   int    `json:"count"`
	Pod     string `json:"pod,omitempty"`
	Node    string `json:"node,omitempty"`
	StartAt int64  `json:"start_at_unix_ns,omitempty"`
	Started int64  `json:"started_unix_ns"`
}

// Encode writes the shard into h (ShardHeader).
func (s Shard) Encode(h http.Header) error {
	w := wireShard{V: 1, Index: s.Index, Count: s.Count, Pod: s.Pod, Node: s.Node, Started: s.Started.UnixNano()}
	if !s.StartAt.IsZero() {
		w.StartAt = s.StartAt.UnixNano()
	}
	b, err := json.Marshal(&w)
	if err != nil {
		return fmt.Errorf("encode shard: %w", err)
	}
	h.Set(ShardHeader, string(b))
	return nil
}

// DecodeShard reads the Shard a Result carries; ok is false when it carries none (a single attack, or plain
// vegeta), err is set when the header is malformed.
func DecodeShard(r *vegeta.Result) (s Shard, ok bool, err error) {
	if r == nil || r.Headers == nil {
		return Shard{}, false, nil
	}
	v := r.Headers.Get(ShardHeader)
	if v == "" {
		return Shard{}, false, nil
	}
	s, err = parseShard([]byte(v))
	return s, err == nil, err
}

func parseShard(b []byte) (Shard, error) {
	var w wireShard
	if err := json.Unmarshal(b, &w); err != nil {
		return Shard{}, fmt.Errorf("decode %s: %w", ShardHeader, err)
	}
	if w.V != 1 {
		return Shard{}, fmt.Errorf("decode %s: version %d, want 1", ShardHeader, w.V)
	}
	s := Shard{Index: w.Index, Count: w.Count, Pod: w.Pod, Node: w.Node, Started: time.Unix(0, w.Started)}
	if w.StartAt != 0 {
		s.StartAt = time.Unix(0, w.StartAt)
	}
	if err := s.Validate(); err != nil {
		return Shard{}, fmt.Errorf("decode %s: %w", ShardHeader, err)
	}
	return s, nil
}

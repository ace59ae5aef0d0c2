package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

// Environment variables the identity flags default to; the chart's Job sets them from the Downward API.
const (
	envPod  = "TOKENTRACE_POD"
	envNode = "TOKENTRACE_NODE"
)

// shardOptions are attack's flags for one shard of a distributed attack.
type shardOptions struct {
	shard, startAt, pod, node string
	// resolved: nil when the attack is not distributed.
	s *loadgen.Shard
}

func shardFlags(fs *flag.FlagSet, o *shardOptions) {
	fs.StringVar(&o.shard, "shard", "", "i/N: this process is shard i (0…N−1) of N and takes 1/N of -rate or -concurrency (and of -requests)")
	fs.StringVar(&o.startAt, "start-at", "", "RFC 3339 instant to start at, agreed by every shard (e.g. 2026-05-01T12:00:00Z)")
	fs.StringVar(&o.pod, "pod", "", "pod or host name recorded in every result of a shard (default $"+envPod+", else the host name)")
	fs.StringVar(&o.node, "node", "", "node name recorded in every result of a shard (default $"+envNode+")")
}

// resolve checks the flags and splits gen into this shard's part.
func (o *shardOptions) resolve(getenv func(string) string, gen *loadgen.Options) error {
	if o.shard == "" && o.startAt == "" {
		if o.pod != "" || o.node != "" {
			return subcommand.Usagef("-pod and -node name a shard: give -shard i/N (or -start-at) too")
		}
		return nil
	}
	s := loadgen.Shard{Index: 0, Count: 1, Pod: o.pod, Node: o.node}
	if o.shard != "" {
		var err error
		if s.Index, s.Count, err = loadgen.ParseShard(o.shard); err != nil {
			return subcommand.Usagef("-shard: %w", err)
		}
	}
	if o.startAt != "" {
		t, err := time.Parse(time.RFC3339Nano, o.startAt)
		if err != nil {
			return subcommand.Usagef("-start-at %q: want an RFC 3339 time such as 2026-05-01T12:00:00Z", o.startAt)
		}
		s.StartAt = t
	}
	if s.Pod == "" {
		s.Pod = getenv(envPod)
	}
	if s.Pod == "" {
		s.Pod, _ = os.Hostname()
	}
	if s.Node == "" {
		s.Node = getenv(envNode)
	}
	if err := s.Split(gen); err != nil {
		return subcommand.UsageError{Err: err}
	}
	o.s = &s
	return nil
}

// waitForStart sleeps until the agreed start, or returns ctx's error when the attack is stopped first. A start
// already past does not wait: the shard starts late, records when it started, and the report says so.
func waitForStart(ctx context.Context, s *loadgen.Shard, log func(string)) error {
	if d := time.Until(s.StartAt); !s.StartAt.IsZero() && d > 0 {
		log(fmt.Sprintf("loadtest attack: shard %d/%d waits %s for -start-at %s", s.Index, s.Count,
			d.Round(time.Millisecond), s.StartAt.Format(time.RFC3339Nano)))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("stopped before -start-at %s: no request was sent", s.StartAt.Format(time.RFC3339))
		}
	} else if !s.StartAt.IsZero() {
		log(fmt.Sprintf("loadtest attack: shard %d/%d starts %s after -start-at", s.Index, s.Count, (-d).Round(time.Millisecond)))
	}
	s.Started = time.Now()
	return nil
}

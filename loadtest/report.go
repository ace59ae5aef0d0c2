package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadreport"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

type reportOptions struct {
	format string
	slo    string
	output string
	by     string
	late   time.Duration
}

func runReport(env *environment, args []string) error {
	var o reportOptions
	fs := flag.NewFlagSet("loadtest report", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&o.format, "type", "text", "report format: "+strings.Join(loadreport.Formats, ", "))
	fs.StringVar(&o.slo, "slo", "", "goodput limits, e.g. ttft=500ms,tpot=50ms,e2e=10s")
	fs.StringVar(&o.output, "output", "stdout", "file to write the report to")
	fs.StringVar(&o.by, "by", "", "results of a distributed attack (-shard): a row per "+strings.Join(loadreport.Breakdowns, " or "))
	fs.DurationVar(&o.late, "late", loadreport.DefaultLateAfter, "warn about a shard that started this long after -start-at")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: loadtest report [flags] [file ...]   (no file, or -: stdin)")
		fs.PrintDefaults()
	}
	if err := subcommand.ParseFlags(fs, args); err != nil {
		return err
	}
	slo, err := loadreport.ParseSLO(o.slo)
	if err != nil {
		return subcommand.UsageError{Err: err}
	}
	if !contains(loadreport.Formats, o.format) {
		return subcommand.Usagef("-type %q: must be one of %s", o.format, strings.Join(loadreport.Formats, ", "))
	}
	if o.by != "" && !contains(loadreport.Breakdowns, o.by) {
		return subcommand.Usagef("-by %q: must be one of %s", o.by, strings.Join(loadreport.Breakdowns, ", "))
	}
	c := loadreport.NewCollector(loadreport.Options{SLO: slo})
	sc, err := loadreport.NewShardCollector(loadreport.ShardOptions{Report: loadreport.Options{SLO: slo}, By: cmp.Or(o.by, "pod"), LateAfter: o.late})
	if err != nil {
		return subcommand.UsageError{Err: err}
	}
	if err := readResults(env, fs.Args(), func(r *vegeta.Result) error {
		if err := c.Add(r); err != nil {
			return err
		}
		return sc.Add(r)
	}); err != nil {
		return err
	}
	if o.by != "" && !sc.Sharded() {
		return fmt.Errorf("-by %s: no result carries a shard (run attack with -shard i/N)", o.by)
	}
	out, closeOut, err := createOutput(env, o.output)
	if err != nil {
		return err
	}
	if err := writeReport(out, c.Report(), sc, o); err != nil {
		closeOut()
		return err
	}
	return closeOut()
}

// writeReport writes the merged report and, for results of shards, the shard section: rows only with -by.
func writeReport(w io.Writer, r loadreport.Report, sc *loadreport.ShardCollector, o reportOptions) error {
	if !sc.Sharded() {
		return loadreport.Write(w, r, o.format)
	}
	sr := sc.Report()
	if o.by == "" {
		sr.Rows = nil
	}
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			loadreport.Report
			Shards loadreport.ShardReport `json:"shards"`
		}{r, sr})
	}
	if err := loadreport.Write(w, r, o.format); err != nil {
		return err
	}
	return loadreport.WriteShards(w, sr, o.format)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

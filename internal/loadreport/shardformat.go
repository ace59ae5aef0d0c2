package loadreport

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteShards writes the shard section of a merged report in a format of Formats; JSON callers encode
// ShardReport beside Report themselves.
func WriteShards(w io.Writer, r ShardReport, format string) error {
	switch format {
	case "text":
		return writeShardsText(w, r)
	case "markdown", "md":
		return writeShardsMarkdown(w, r)
	case "csv":
		return writeShardsCSV(w, r)
	}
	return fmt.Errorf("shard report format %q: must be text, markdown or csv", format)
}

var shardColumns = []string{"shard", "started", "lag", "clock offset", "requests", "success", "requests/s",
	"output tok/s", "ttft p50 (ms)", "ttft p99 (ms)", "e2e p50 (ms)", "e2e p99 (ms)"}

func (row Row) cells() []string {
	f := row.Figures
	shards := make([]string, len(row.Shards))
	for i, s := range row.Shards {
		shards[i] = strconv.Itoa(s)
	}
	return []string{strings.Join(shards, ","), row.Started.UTC().Format("15:04:05.000"),
		fmt.Sprintf("%.3f s", row.StartLag), offsetText(row.ClockOffset), strconv.Itoa(f.Requests),
		fmt.Sprintf("%.2f%%", 100*f.SuccessRatio), num(f.RequestThroughput), num(f.OutputThroughput),
		num(1e3 * f.TTFT.P50), num(1e3 * f.TTFT.P99), num(1e3 * f.E2E.P50), num(1e3 * f.E2E.P99)}
}

func offsetText(iv *Interval) string {
	if iv == nil {
		return "unknown"
	}
	return fmt.Sprintf("%+.3f ±%.3f s", iv.Mid(), iv.HalfWidth())
}

func (r ShardReport) skewText() string {
	if r.ClockSkew == nil {
		return "not measured (fewer than two pods have responses with a Date header, or their servers' clocks differ)"
	}
	return fmt.Sprintf("%.3f–%.3f s (bounds, from the servers' Date headers)", r.ClockSkew.Lo, r.ClockSkew.Hi)
}

func (r ShardReport) startText() string {
	if r.StartAt.IsZero() {
		return "none"
	}
	return r.StartAt.UTC().Format(time.RFC3339Nano)
}

func writeShardsText(w io.Writer, r ShardReport) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("")
	p("Shards\t[count, start at, start spread]\t%d, %s, %s", r.Count, r.startText(),
		time.Duration(r.StartSpread*float64(time.Second)).Round(time.Millisecond))
	p("Clock skew\t[largest between two %ss]\t%s", r.By, r.skewText())
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Rows) == 0 {
		return writeWarnings(w, r.Warnings, "Warnings: none", "WARNING: ")
	}
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tnode\t%s\n", r.By, strings.Join(shardColumns, "\t"))
	for _, row := range r.Rows {
		key, node := row.Key, strings.Join(row.Nodes, ",")
		if r.By == "node" {
			key, node = strings.Join(row.Pods, ","), row.Key
			if len(key) > 40 {
				key = fmt.Sprintf("%d pods", len(row.Pods))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", key, orDash(node), strings.Join(row.cells(), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeWarnings(w, r.Warnings, "Warnings: none", "WARNING: ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeWarnings(w io.Writer, warnings []string, none, prefix string) error {
	if len(warnings) == 0 {
		_, err := fmt.Fprintln(w, none)
		return err
	}
	for _, m := range warnings {
		if _, err := fmt.Fprintln(w, prefix+m); err != nil {
			return err
		}
	}
	return nil
}

func writeShardsMarkdown(w io.Writer, r ShardReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d shards, start at %s, start spread %.3f s; clock skew: %s.\n\n", r.Count, r.startText(),
		r.StartSpread, r.skewText())
	if len(r.Rows) > 0 {
		fmt.Fprintf(&b, "| %s | node | %s |\n|---|---|%s\n", r.By, strings.Join(shardColumns, " | "),
			strings.Repeat("---:|", len(shardColumns)))
		for _, row := range r.Rows {
			key, node := row.Key, strings.Join(row.Nodes, ",")
			if r.By == "node" {
				key, node = strings.Join(row.Pods, ", "), row.Key
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", key, orDash(node), strings.Join(row.cells(), " | "))
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return writeWarnings(w, r.Warnings, "No warnings.", "- **Warning:** ")
}

// writeShardsCSV continues the name,value rows of writeCSV: shard figures, then per row "<by>:<key>:<figure>".
func writeShardsCSV(w io.Writer, r ShardReport) error {
	rows := [][]string{{"shards", strconv.Itoa(r.Count)}, {"start_spread_seconds", num(r.StartSpread)}}
	if r.ClockSkew != nil {
		rows = append(rows, []string{"clock_skew_lo_seconds", num(r.ClockSkew.Lo)}, []string{"clock_skew_hi_seconds", num(r.ClockSkew.Hi)})
	}
	for _, row := range r.Rows {
		pre := r.By + ":" + row.Key + ":"
		f := row.Figures
		rows = append(rows,
			[]string{pre + "requests", strconv.Itoa(f.Requests)},
			[]string{pre + "succeeded", strconv.Itoa(f.Succeeded)},
			[]string{pre + "start_lag_seconds", num(row.StartLag)},
			[]string{pre + "request_throughput", num(f.RequestThroughput)},
			[]string{pre + "output_throughput", num(f.OutputThroughput)},
			[]string{pre + "ttft_p50_ms", num(1e3 * f.TTFT.P50)},
			[]string{pre + "e2e_p50_ms", num(1e3 * f.E2E.P50)})
		if row.ClockOffset != nil {
			rows = append(rows, []string{pre + "clock_offset_seconds", num(row.ClockOffset.Mid())})
		}
	}
	for i, m := range r.Warnings {
		rows = append(rows, []string{"warning_" + strconv.Itoa(i+1), m})
	}
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write CSV shard report: %w", err)
	}
	return nil
}

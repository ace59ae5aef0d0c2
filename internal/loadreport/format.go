package loadreport

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokentrace/tokentrace/internal/stats"
)

// Formats are the -type values Write accepts.
var Formats = []string{"text", "json", "csv", "markdown"}

// Write writes r in a format of Formats.
func Write(w io.Writer, r Report, format string) error {
	switch format {
	case "text":
		return writeText(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "csv":
		return writeCSV(w, r)
	case "markdown", "md":
		return writeMarkdown(w, r)
	}
	return fmt.Errorf("report format %q: must be one of %s", format, strings.Join(Formats, ", "))
}

// distribution is one row of percentiles.
type distribution struct {
	name, unit string
	s          stats.Summary
	scale      float64 // multiplies the stored value for display
}

func (r *Report) distributions() []distribution {
	d := []distribution{
		{"ttft", "ms", r.TTFT, 1e3},
		{"e2e", "ms", r.E2E, 1e3},
		{"itl", "ms", r.ITL, 1e3},
		{"tpot", "ms", r.TPOT, 1e3},
		{"decode_speed", "tok/s", r.DecodeSpeed, 1},
	}
	if r.ServerDecodeSpeed.Count > 0 {
		d = append(d, distribution{"server_decode_speed", "tok/s", r.ServerDecodeSpeed, 1})
	}
	if r.QueueWait.Count > 0 {
		d = append(d, distribution{"queue_wait", "ms", r.QueueWait, 1e3})
	}
	return append(d,
		distribution{"input_tokens", "tokens", r.InputPerRequest, 1},
		distribution{"output_tokens", "tokens", r.OutputPerRequest, 1})
}

func (d distribution) values() []float64 {
	s := d.s
	return []float64{s.Min * d.scale, s.Mean * d.scale, s.P50 * d.scale, s.P90 * d.scale,
		s.P95 * d.scale, s.P99 * d.scale, s.Max * d.scale}
}

var statNames = []string{"min", "mean", "p50", "p90", "p95", "p99", "max"}

func num(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// estimated is the mark on token figures the server did not count.
func (r *Report) estimated() string {
	if r.EstimatedTokens == 0 {
		return ""
	}
	return fmt.Sprintf(" (estimated: %d requests without server counts)", r.EstimatedTokens)
}

func writeText(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("Attacks\t\t%s", strings.Join(r.Attacks, ", "))
	p("Requests\t[total, succeeded, success]\t%d, %d, %.2f%%", r.Requests, r.Succeeded, 100*r.SuccessRatio)
	p("Window\t[start, length]\t%s, %s", r.Start.Format(time.RFC3339), time.Duration(r.Window*float64(time.Second)).Round(time.Millisecond))
	p("Throughput\t[requests/s, output tok/s]\t%s, %s%s", num(r.RequestThroughput), num(r.OutputThroughput), r.estimated())
	p("Tokens\t[input, output]\t%d, %d%s", r.InputTokens, r.OutputTokens, r.estimated())
	for _, d := range r.distributions() {
		if d.s.Count == 0 {
			p("%s (%s)\t(n=0)\tno samples", d.name, d.unit)
			continue
		}
		vals := d.values()
		strs := make([]string, len(vals))
		for i, v := range vals {
			strs[i] = num(v)
		}
		p("%s (%s)\t[%s] (n=%d)\t%s", d.name, d.unit, strings.Join(statNames, ", "), d.s.Count, strings.Join(strs, ", "))
	}
	if r.DecodeSpeed.Count > 0 {
		p("Mean per-request speed\t[tok/s]\t%s", num(r.DecodeSpeed.Mean))
	}
	if r.SLO.Set() {
		p("Goodput\t[%s: good, requests/s]\t%d, %s", r.SLO, r.GoodRequests, num(r.Goodput))
	}
	if r.Late > 0 {
		p("Late arrivals\t[sent after their schedule, p50, p95 late]\t%d, %s ms, %s ms (their latencies count from the schedule)",
			r.Late, num(r.LateBy.P50*1e3), num(r.LateBy.P95*1e3))
	}
	if r.Unmeasured > 0 {
		p("Unmeasured\t[results without tokentrace figures]\t%d", r.Unmeasured)
	}
	p("Errors\t[type: count]\t%s", errorSummary(r.Errors))
	for _, e := range r.Errors {
		p("  %s\t%d\t%s", e.Type, e.Count, e.Example)
	}
	return tw.Flush()
}

func errorSummary(errs []ErrorCount) string {
	if len(errs) == 0 {
		return "none"
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Type + ": " + strconv.Itoa(e.Count)
	}
	return strings.Join(parts, ", ")
}

// writeCSV writes one name,value row per figure.
func writeCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	rows := [][]string{
		{"name", "value"},
		{"requests", strconv.Itoa(r.Requests)},
		{"succeeded", strconv.Itoa(r.Succeeded)},
		{"success_ratio", num(r.SuccessRatio)},
		{"window_seconds", num(r.Window)},
		{"request_throughput", num(r.RequestThroughput)},
		{"output_throughput", num(r.OutputThroughput)},
		{"input_tokens", strconv.Itoa(r.InputTokens)},
		{"output_tokens", strconv.Itoa(r.OutputTokens)},
		{"estimated_token_requests", strconv.Itoa(r.EstimatedTokens)},
	}
	for _, d := range r.distributions() {
		rows = append(rows, []string{d.name + "_count", strconv.Itoa(d.s.Count)})
		for i, v := range d.values() {
			rows = append(rows, []string{d.name + "_" + statNames[i] + "_" + strings.ReplaceAll(d.unit, "/", "_per_"), num(v)})
		}
	}
	if r.SLO.Set() {
		rows = append(rows, []string{"slo", r.SLO.String()}, []string{"good_requests", strconv.Itoa(r.GoodRequests)},
			[]string{"goodput", num(r.Goodput)})
	}
	for _, e := range r.Errors {
		rows = append(rows, []string{"errors_" + e.Type, strconv.Itoa(e.Count)})
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write CSV report: %w", err)
	}
	return nil
}

func writeMarkdown(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "| requests | succeeded | success | window | requests/s | output tok/s |\n|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %.2f%% | %.3f s | %s | %s |\n\n", r.Requests, r.Succeeded, 100*r.SuccessRatio, r.Window,
		num(r.RequestThroughput), num(r.OutputThroughput))
	if m := r.estimated(); m != "" {
		fmt.Fprintf(&b, "Token counts are estimated%s.\n\n", m)
	}
	fmt.Fprintf(&b, "| figure | n | %s |\n|---|---:|%s\n", strings.Join(statNames, " | "), strings.Repeat("---:|", len(statNames)))
	for _, d := range r.distributions() {
		vals := d.values()
		strs := make([]string, len(vals))
		for i, v := range vals {
			strs[i] = num(v)
		}
		fmt.Fprintf(&b, "| %s (%s) | %d | %s |\n", d.name, d.unit, d.s.Count, strings.Join(strs, " | "))
	}
	if r.SLO.Set() {
		fmt.Fprintf(&b, "\nGoodput (%s): %d requests, %s requests/s.\n", r.SLO, r.GoodRequests, num(r.Goodput))
	}
	if len(r.Errors) > 0 {
		b.WriteString("\n| error type | count | example |\n|---|---:|---|\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "| %s | %d | %s |\n", e.Type, e.Count, strings.ReplaceAll(e.Example, "|", `\|`))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

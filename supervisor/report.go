package main

import (
	"flag"
	"fmt"
	"path/filepath"

	"github.com/tokentrace/tokentrace/internal/studyreport"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

func init() {
	commands["report"] = command{Summary: "regenerate report.md and the charts of a run folder from its saved results", Run: reportMain}
}

func reportMain(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: supervisor report DIR\n\nRewrites DIR/report.md and DIR/*.png from DIR's results (results.jsonl, requests.jsonl, header.json).")
	}
	if err := fs.Parse(args); err != nil {
		return subcommand.UsageError{Err: err}
	}
	if fs.NArg() != 1 {
		return subcommand.UsageError{Err: fmt.Errorf("want one run folder, got %d arguments", fs.NArg())}
	}
	dir := fs.Arg(0)
	d, err := studyreport.Write(dir)
	if err != nil {
		return err
	}
	fmt.Printf("Report: %s\n\n%s", filepath.Join(dir, studyreport.ReportFile), d.Summary())
	return nil
}

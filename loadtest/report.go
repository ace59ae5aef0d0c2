package main

import (
	"flag"
	"fmt"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadreport"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

type reportOptions struct {
	format string
	slo    string
	output string
}

func runReport(env *environment, args []string) error {
	var o reportOptions
	fs := flag.NewFlagSet("loadtest report", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&o.format, "type", "text", "report format: "+strings.Join(loadreport.Formats, ", "))
	fs.StringVar(&o.slo, "slo", "", "goodput limits, e.g. ttft=500ms,tpot=50ms,e2e=10s")
	fs.StringVar(&o.output, "output", "stdout", "file to write the report to")
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
	c := loadreport.NewCollector(loadreport.Options{SLO: slo})
	if err := readResults(env, fs.Args(), func(r *vegeta.Result) error { return c.Add(r) }); err != nil {
		return err
	}
	out, closeOut, err := createOutput(env, o.output)
	if err != nil {
		return err
	}
	if err := loadreport.Write(out, c.Report(), o.format); err != nil {
		closeOut()
		return err
	}
	return closeOut()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

package main

import (
	"bufio"
	"flag"
	"fmt"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadreport"
	"github.com/tokentrace/tokentrace/internal/subcommand"
)

type plotOptions struct {
	title         string
	output        string
	format        string
	width, height int
}

func runPlot(env *environment, args []string) error {
	var o plotOptions
	fs := flag.NewFlagSet("loadtest plot", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&o.title, "title", "tokentrace: TTFT and E2E latency", "chart title")
	fs.StringVar(&o.output, "output", "stdout", "file to write the chart to")
	fs.StringVar(&o.format, "format", "", "html or png (default: from -output's extension, else html)")
	fs.IntVar(&o.width, "width", 1200, "PNG width in pixels")
	fs.IntVar(&o.height, "height", 600, "PNG height in pixels")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: loadtest plot [flags] [file ...]   (no file, or -: stdin)")
		fs.PrintDefaults()
	}
	if err := subcommand.ParseFlags(fs, args); err != nil {
		return err
	}
	if o.format == "" {
		o.format = "html"
		if strings.HasSuffix(strings.ToLower(o.output), ".png") {
			o.format = "png"
		}
	}
	if o.format != "html" && o.format != "png" {
		return subcommand.Usagef("-format %q: must be html or png", o.format)
	}
	if o.width <= 0 || o.height <= 0 {
		return subcommand.Usagef("-width and -height must be positive")
	}
	p := loadreport.NewPlot(o.title)
	if err := readResults(env, fs.Args(), func(r *vegeta.Result) error { return p.Add(r) }); err != nil {
		return err
	}
	out, closeOut, err := createOutput(env, o.output)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	if o.format == "png" {
		err = p.WritePNG(bw, o.width, o.height)
	} else {
		err = p.WriteHTML(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	return err
}

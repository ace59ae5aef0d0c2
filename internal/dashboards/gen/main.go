// Command gen writes tokentrace's Grafana dashboards as JSON files (run by `go generate ./internal/dashboards`).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokentrace/tokentrace/internal/dashboards"
)

func main() { os.Exit(run()) }

func run() int {
	out := flag.String("out", "grafana/dashboards", "folder to write the dashboard JSON files into")
	flag.Parse()
	files, err := dashboards.Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "create %s: %v\n", *out, err)
		return 1
	}
	for _, f := range files {
		path := filepath.Join(*out, f.Name)
		if err := os.WriteFile(path, f.JSON, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "write dashboard: %v\n", err)
			return 1
		}
		fmt.Println("wrote", path)
	}
	return 0
}

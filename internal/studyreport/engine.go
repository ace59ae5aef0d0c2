package studyreport

import (
	"fmt"
	"io"
	"strings"
)

// writeEngineSaid lists, per setting, what the engine's log says its runner
// did (slots, context, KV cache, flash attention, default context,
// warnings); nothing when no setting's log said anything.
func (d *Data) writeEngineSaid(w io.Writer) {
	var rows []string
	for _, s := range d.Settings {
		for _, c := range d.Cells {
			if c.Setting != s || c.RunnerLog == nil {
				continue
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s |", d.Label(s), c.Verified, c.RunnerLog.Summary()))
			break
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### What the engine says it ran\n\nFrom the engine's own log (see docs/ollama.md), not from the settings it was given.\n\n")
	fmt.Fprintf(w, "| setting | verified | the engine's log |\n|---|---|---|\n%s\n\n", strings.Join(rows, "\n"))
}

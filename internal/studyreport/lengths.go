package studyreport

import (
	"fmt"
	"io"
	"math"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

// LengthTolerance is how far a setting's mean answer length may be from
// the other settings' before the report flags it: beyond it, the settings
// were not asked for the same work, and their speeds do not compare.
const LengthTolerance = 0.10

// AnswerLength is a setting's mean output tokens per request for one
// prompt size, over the scenarios that ran, and how far it is from the
// mean of the other settings (a fraction; NaN with no other).
type AnswerLength struct {
	Setting matrix.Setting
	Size    string
	Mean    float64
	Off     float64
}

// Flagged reports whether the answers differ by more than LengthTolerance.
func (a AnswerLength) Flagged() bool { return !math.IsNaN(a.Off) && math.Abs(a.Off) > LengthTolerance }

// AnswerLengths returns each setting's mean answer length per prompt size.
func (d *Data) AnswerLengths() []AnswerLength {
	var out []AnswerLength
	for _, size := range d.Sizes {
		means := map[matrix.Setting]float64{}
		for _, s := range d.Settings {
			sum, n := 0.0, 0
			for _, c := range d.Cells {
				if c.Setting == s && c.PromptSize == size && c.Status == matrix.StatusOK && c.MeanOutputTokens > 0 {
					sum += c.MeanOutputTokens
					n++
				}
			}
			if n > 0 {
				means[s] = sum / float64(n)
			}
		}
		for _, s := range d.Settings {
			m, ok := means[s]
			if !ok {
				continue
			}
			others, n := 0.0, 0
			for o, v := range means {
				if o != s {
					others += v
					n++
				}
			}
			off := math.NaN()
			if n > 0 && others > 0 {
				off = m/(others/float64(n)) - 1
			}
			out = append(out, AnswerLength{Setting: s, Size: size, Mean: m, Off: off})
		}
	}
	return out
}

func (d *Data) writeAnswerLengths(w io.Writer) {
	lengths := d.AnswerLengths()
	if len(lengths) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("## Answer length (mean output tokens per request)\n\n")
	p("Every request asks for a greedy, seeded answer, so each setting should do the same work; a setting more than %.0f%% from the others is flagged, and its speeds do not compare.\n\n",
		100*LengthTolerance)
	p("| prompt size | setting | mean output tokens | vs the others |\n|---|---|---:|---|\n")
	for _, a := range lengths {
		vs := "–"
		if !math.IsNaN(a.Off) {
			vs = fmt.Sprintf("%+.0f%%", 100*a.Off)
			if a.Flagged() {
				vs += " **differs: not the same work**"
			}
		}
		p("| %s | %s | %s | %s |\n", a.Size, d.Label(a.Setting), num(a.Mean), vs)
	}
	p("\n")
}

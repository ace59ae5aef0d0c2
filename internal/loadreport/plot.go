package loadreport

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	vplot "github.com/tsenart/vegeta/v12/lib/plot"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/tokentrace/tokentrace/internal/loadgen"
)

// Plot draws TTFT and E2E latency over time, one series of each per
// attack name: as a self-contained HTML page (vegeta's plot, its scripts
// inlined) or as a PNG image.
type Plot struct {
	title  string
	points map[string][]point
}

type point struct {
	at        time.Time // the request's start
	ttft, e2e time.Duration
	hasTTFT   bool
	failed    bool
}

// NewPlot returns an empty Plot with a title.
func NewPlot(title string) *Plot { return &Plot{title: title, points: map[string][]point{}} }

// Add adds one result.
func (p *Plot) Add(r *vegeta.Result) error {
	f, err := loadgen.Decode(r)
	switch {
	case errors.Is(err, loadgen.ErrNoFigures):
		f = loadgen.Figures{Start: r.Timestamp, End: r.Latency}
		if r.Error != "" {
			f.ErrorType = "vegeta"
		}
	case err != nil:
		return fmt.Errorf("result %d of attack %q: %w", r.Seq, r.Attack, err)
	}
	pt := point{at: f.Start, e2e: f.End, failed: !f.OK()}
	pt.ttft, pt.hasTTFT = f.TTFT()
	p.points[r.Attack] = append(p.points[r.Attack], pt)
	return nil
}

func (p *Plot) sorted() []string {
	names := make([]string, 0, len(p.points))
	for name, pts := range p.points {
		sort.Slice(pts, func(i, j int) bool { return pts[i].at.Before(pts[j].at) })
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// WriteHTML writes the interactive page. Series are named "attack: TTFT",
// "attack: E2E" and "attack: E2E ERROR" (failed requests).
func (p *Plot) WriteHTML(w io.Writer) error {
	// vegeta's plot draws Result.Latency by Result.Timestamp and wants every
	// attack's sequence numbers to run from 0 without gaps; the label rides
	// in Method.
	vp := vplot.New(vplot.Title(p.title), vplot.Downsample(4000),
		vplot.Label(func(r *vegeta.Result) string { return r.Method }))
	for _, name := range p.sorted() {
		var seq uint64
		add := func(at time.Time, d time.Duration, label string) error {
			r := vegeta.Result{Attack: name, Seq: seq, Timestamp: at, Latency: d, Method: label}
			seq++
			return vp.Add(&r)
		}
		for _, pt := range p.points[name] {
			if pt.hasTTFT && !pt.failed {
				if err := add(pt.at, pt.ttft, "TTFT"); err != nil {
					return fmt.Errorf("plot %q: %w", name, err)
				}
			}
			label := "E2E"
			if pt.failed {
				label = "E2E ERROR"
			}
			if err := add(pt.at, pt.e2e, label); err != nil {
				return fmt.Errorf("plot %q: %w", name, err)
			}
		}
	}
	vp.Close()
	if _, err := vp.WriteTo(w); err != nil {
		return fmt.Errorf("write HTML plot: %w", err)
	}
	return nil
}

// WritePNG writes a static image, width × height pixels.
func (p *Plot) WritePNG(w io.Writer, width, height int) error {
	pl := plot.New()
	pl.Title.Text = p.title
	pl.X.Label.Text = "seconds since the first request"
	pl.Y.Label.Text = "latency (ms)"
	pl.Add(plotter.NewGrid())
	var first time.Time
	for _, pts := range p.points {
		for _, pt := range pts {
			if first.IsZero() || pt.at.Before(first) {
				first = pt.at
			}
		}
	}
	palette := []color.Color{
		color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
		color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff}, color.RGBA{0xe3, 0x77, 0xc2, 0xff},
	}
	i := 0
	for _, name := range p.sorted() {
		var ttft, e2e plotter.XYs
		for _, pt := range p.points[name] {
			x := pt.at.Sub(first).Seconds()
			if pt.hasTTFT && !pt.failed {
				ttft = append(ttft, plotter.XY{X: x, Y: float64(pt.ttft) / 1e6})
			}
			e2e = append(e2e, plotter.XY{X: x, Y: float64(pt.e2e) / 1e6})
		}
		for _, s := range []struct {
			label string
			xys   plotter.XYs
			shape draw.GlyphDrawer
		}{{"TTFT", ttft, draw.CircleGlyph{}}, {"E2E", e2e, draw.CrossGlyph{}}} {
			if len(s.xys) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(s.xys)
			if err != nil {
				return fmt.Errorf("plot %q %s: %w", name, s.label, err)
			}
			sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = palette[i%len(palette)], s.shape, vg.Points(1.5)
			pl.Add(sc)
			pl.Legend.Add(name+": "+s.label, sc)
			i++
		}
	}
	pl.Legend.Top = true
	wt, err := pl.WriterTo(vg.Length(width)*vg.Inch/96, vg.Length(height)*vg.Inch/96, "png")
	if err != nil {
		return fmt.Errorf("render PNG plot: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("write PNG plot: %w", err)
	}
	return nil
}

package studyreport

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart file names.
const (
	ChartTTFT       = "ttft_vs_concurrency.png"
	ChartTokPerSec  = "tok_per_s.png"
	ChartThroughput = "throughput.png"
	ChartMemory     = "memory.png"
)

// WriteCharts writes the PNG charts into dir and returns their names.
func (d *Data) WriteCharts(dir string) ([]string, error) {
	byConc := []struct {
		file, title, unit string
		falls             bool // the figure falls with concurrency: legend at the bottom
		value             func(*Cell) float64
	}{
		{ChartTTFT, "TTFT p50", "ms", false, func(c *Cell) float64 { return c.TTFTP50Ms }},
		{ChartTokPerSec, "per-request tok/s (mean)", "tok/s", true, func(c *Cell) float64 { return c.TokPerSecMean }},
		{ChartThroughput, "system throughput", "output tok/s", false, func(c *Cell) float64 { return c.OutputTokPerSec }},
	}
	var files []string
	for _, ch := range byConc {
		if err := d.concurrencyChart(filepath.Join(dir, ch.file), ch.title, ch.unit, ch.falls, ch.value); err != nil {
			return files, fmt.Errorf("chart %s: %w", ch.file, err)
		}
		files = append(files, ch.file)
	}
	if err := d.memoryChart(filepath.Join(dir, ChartMemory)); err != nil {
		return files, fmt.Errorf("chart %s: %w", ChartMemory, err)
	}
	return append(files, ChartMemory), nil
}

// concurrencyChart draws one panel per prompt size: the figure against
// concurrency, one line per parallel setting.
func (d *Data) concurrencyChart(path, title, unit string, falls bool, value func(*Cell) float64) error {
	var ticks []plot.Tick
	for _, c := range d.Conc {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	row := make([]*plot.Plot, len(d.Sizes))
	for i, size := range d.Sizes {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %s prompt", title, size)
		p.X.Label.Text = "concurrency"
		p.Y.Label.Text = unit
		p.Y.Min = 0
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.Legend.Top, p.Legend.Left = !falls, true
		p.Legend.XOffs, p.Legend.YOffs = vg.Millimeter*3, vg.Millimeter
		top := 0.0
		for k, s := range d.Settings {
			var pts plotter.XYs
			for _, conc := range d.Conc {
				if c := d.OK(s, conc, size); c != nil {
					pts = append(pts, plotter.XY{X: float64(conc), Y: value(c)})
					top = max(top, value(c))
				}
			}
			if len(pts) == 0 {
				continue
			}
			line, marks, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			line.Color, marks.Color = plotutil.Color(k), plotutil.Color(k)
			marks.Shape = plotutil.Shape(k)
			p.Add(line, marks)
			p.Legend.Add(d.Label(s), line, marks)
		}
		p.Y.Max = top * 1.25 // room for the legend
		row[i] = p
	}
	return savePanels(path, [][]*plot.Plot{row}, vg.Length(len(row))*9*vg.Centimeter, 9*vg.Centimeter)
}

// memoryChart draws the peak and idle memory of each parallel setting.
func (d *Data) memoryChart(path string) error {
	mem := d.Memory()
	var peak, idle plotter.Values
	var names []string
	for _, m := range mem {
		peak = append(peak, float64(m.Peak)/(1<<20))
		idle = append(idle, float64(m.Idle)/(1<<20))
		names = append(names, d.Label(m.Setting))
	}
	p := plot.New()
	p.Title.Text = "engine memory by parallel setting (process tree RSS)"
	p.Y.Label.Text = "MiB"
	w := vg.Points(18)
	bi, err := plotter.NewBarChart(idle, w)
	if err != nil {
		return err
	}
	bi.Color, bi.Offset = color.RGBA{R: 150, G: 170, B: 210, A: 255}, -w/2
	bp, err := plotter.NewBarChart(peak, w)
	if err != nil {
		return err
	}
	bp.Color, bp.Offset = color.RGBA{R: 200, G: 80, B: 60, A: 255}, w/2
	p.Add(bi, bp)
	p.Legend.Add("idle after load", bi)
	p.Legend.Add("peak under load", bp)
	p.Legend.Top, p.Legend.Left = true, true
	top := 0.0
	for _, v := range peak {
		top = max(top, v)
	}
	p.Y.Min, p.Y.Max = 0, top*1.3
	p.NominalX(names...)
	return savePanels(path, [][]*plot.Plot{{p}}, vg.Length(max(len(names), 3))*4*vg.Centimeter, 9*vg.Centimeter)
}

func savePanels(path string, plots [][]*plot.Plot, width, height vg.Length) error {
	img := vgimg.New(width, height)
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		for j, p := range plots[i] {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

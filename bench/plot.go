package bench

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotFormat returns the format WritePlot uses for a file name: "html" for
// .html and .htm, "png" for .png.
func PlotFormat(name string) (string, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".html", ".htm":
		return "html", nil
	case ".png":
		return "png", nil
	}
	return "", fmt.Errorf("plot file %q: want a .html or .png name", name)
}

// Plot sizes.
const (
	plotWidth  = 24 * vg.Centimeter
	plotHeight = 11 * vg.Centimeter
)

// palette tells the lines apart; it is the Okabe-Ito set, readable by
// people with the common color-vision deficiencies.
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255}, color.RGBA{213, 94, 0, 255}, color.RGBA{0, 158, 115, 255},
	color.RGBA{204, 121, 167, 255}, color.RGBA{230, 159, 0, 255}, color.RGBA{86, 180, 233, 255},
	color.RGBA{0, 0, 0, 255},
}

// WritePlot writes two plots of res, the latency percentiles over time and
// the latency distribution of each step, in the format PlotFormat gives for
// name: an HTML page with inline SVG and the summary table, or a PNG.
func WritePlot(w io.Writer, res *Result, name string) error {
	format, err := PlotFormat(name)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	over, err := seriesPlot(res)
	if err != nil {
		return err
	}
	dist, err := distributionPlot(res)
	if err != nil {
		return err
	}
	if format == "png" {
		img := vgimg.New(plotWidth, 2*plotHeight)
		dc := draw.New(img)
		canvases := plot.Align([][]*plot.Plot{{over}, {dist}}, draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Centimeter}, dc)
		over.Draw(canvases[0][0])
		dist.Draw(canvases[1][0])
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
			return fmt.Errorf("bench: write PNG: %w", err)
		}
		return nil
	}
	var b bytes.Buffer
	var summary strings.Builder
	if err := WriteSummary(&summary, res); err != nil {
		return err
	}
	fmt.Fprintf(&b, "<!doctype html>\n<meta charset=\"utf-8\">\n<title>tickstream bench %s</title>\n", html.EscapeString(res.Started.Format(time.RFC3339)))
	b.WriteString("<style>body{font-family:system-ui,sans-serif;margin:2em}pre{font-size:13px}</style>\n")
	fmt.Fprintf(&b, "<h1>tickstream bench</h1>\n<pre>%s</pre>\n", html.EscapeString(summary.String()))
	for _, p := range []*plot.Plot{over, dist} {
		wt, err := p.WriterTo(plotWidth, plotHeight, "svg")
		if err != nil {
			return fmt.Errorf("bench: render SVG: %w", err)
		}
		b.WriteString("<div>\n")
		if _, err := wt.WriteTo(&b); err != nil {
			return fmt.Errorf("bench: render SVG: %w", err)
		}
		b.WriteString("</div>\n")
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("bench: write HTML: %w", err)
	}
	return nil
}

// seriesPlot draws p50, p99, p99.9 and max per interval against the time
// of the measured windows, steps one after the other, on a log axis.
func seriesPlot(res *Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency over time (event time to receipt, per interval)"
	p.X.Label.Text = "measured time (s)"
	p.Y.Label.Text = "latency (ms)"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	lines := []struct {
		name string
		get  func(Point) time.Duration
	}{
		{"p50", func(pt Point) time.Duration { return pt.P50 }},
		{"p99", func(pt Point) time.Duration { return pt.P99 }},
		{"p99.9", func(pt Point) time.Duration { return pt.P999 }},
		{"max", func(pt Point) time.Duration { return pt.Max }},
	}
	for i, l := range lines {
		var xys plotter.XYs
		var offset float64
		for _, st := range res.Steps {
			for _, pt := range st.Series {
				if v := ms(l.get(pt)); v > 0 { // a log axis has no zero
					xys = append(xys, plotter.XY{X: offset + pt.At.Seconds(), Y: v})
				}
			}
			offset += st.Duration.Seconds()
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("bench: plot %s: %w", l.name, err)
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(l.name, line)
		// A log axis needs positive data: an empty plot keeps the linear one.
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	return p, nil
}

// distributionPlot draws each step's latency distribution: the share of
// deliveries in each bucket, against latency on a log axis.
func distributionPlot(res *Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency distribution"
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "share of deliveries (%)"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for i, st := range res.Steps {
		if st.Latency.Count == 0 {
			continue
		}
		var xys plotter.XYs
		for _, b := range st.Distribution {
			xys = append(xys, plotter.XY{X: ms(b.UpTo), Y: 100 * float64(b.Count) / float64(st.Latency.Count)})
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("bench: plot distribution: %w", err)
		}
		line.StepStyle = plotter.PreStep // a bucket ends at its UpTo
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%.0f updates/s: p99 %.2f ms", st.Rate, ms(st.Latency.P99)), line)
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
	}
	return p, nil
}

// logTicks labels a log axis at 1, 2 and 5 times each power of ten, with
// unlabeled minor ticks between: gonum's LogTicks labels only the powers of
// ten, which leaves a latency axis spanning less than a decade with one
// label or none.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || max <= min {
		return nil
	}
	var ticks []plot.Tick
	for exp := math.Floor(math.Log10(min)); math.Pow(10, exp) <= max; exp++ {
		base := math.Pow(10, exp)
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

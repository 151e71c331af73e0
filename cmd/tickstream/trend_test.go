package main

import (
	"testing"

	"github.com/tickstream/tickstream/codec"
)

func TestSparkline(t *testing.T) {
	tests := []struct {
		name string
		vals []float64
		want string
	}{
		{"none", nil, ""},
		{"one", []float64{5}, "▅"},
		{"flat", []float64{3, 3, 3}, "▅▅▅"},
		{"rising", []float64{0, 1, 2, 3, 4, 5, 6, 7}, "▁▂▃▄▅▆▇█"},
		{"falling, then back up", []float64{10, 5, 0, 10}, "█▄▁█"},
		{"two values", []float64{187.24, 187.25}, "▁█"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sparkline(tt.vals); got != tt.want {
				t.Errorf("sparkline(%v) = %q, want %q", tt.vals, got, tt.want)
			}
		})
	}
}

func TestTrendCell(t *testing.T) {
	bar := func(o, c float64) codec.Bar { return codec.Bar{Open: o, High: max(o, c), Low: min(o, c), Close: c} }
	many := make([]codec.Bar, 20)
	for i := range many {
		many[i] = bar(float64(100+i), float64(101+i))
	}
	tests := []struct {
		name         string
		bars         []codec.Bar
		n            int
		change, want string
	}{
		{"no bar", nil, 15, "-", ""},
		{"one bar", []codec.Bar{bar(100, 101)}, 15, "+1.00%", "▅"},
		// the last 15 of 20: from the open of bar 5 (105) to the close of bar 19 (120)
		{"the last n", many, 15, "+14.29%", "▁▁▂▂▃▃▄▄▅▅▆▆▇▇█"},
		{"down", []codec.Bar{bar(200, 199), bar(199, 190)}, 15, "-5.00%", "█▁"},
		{"an open of 0", []codec.Bar{bar(0, 1)}, 15, "-", "▅"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			change, _, spark := trendCell(tt.bars, tt.n)
			if change != tt.change || spark != tt.want {
				t.Errorf("trendCell = %q %q, want %q %q", change, spark, tt.change, tt.want)
			}
		})
	}
}

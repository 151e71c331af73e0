package main

import (
	"fmt"
	"strings"

	"github.com/tickstream/tickstream/codec"
)

// sparkLevels are the eight heights of a unicode sparkline, lowest first.
var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// trendCell is the trend column of one symbol: the change from the open of
// the first of its last n bars to the close of the newest (the forming one),
// in percent, and a sparkline of those bars' closes. bars are oldest first;
// with none the cell is "-".
func trendCell(bars []codec.Bar, n int) (change string, pct float64, spark string) {
	if len(bars) == 0 || n < 1 {
		return "-", 0, ""
	}
	bars = bars[max(0, len(bars)-n):]
	first, last := bars[0], bars[len(bars)-1]
	change = "-"
	if first.Open != 0 {
		pct = (last.Close - first.Open) / first.Open * 100
		change = fmt.Sprintf("%+.2f%%", pct)
	}
	closes := make([]float64, len(bars))
	for i, b := range bars {
		closes[i] = b.Close
	}
	return change, pct, sparkline(closes)
}

// sparkline draws vals as one character each, scaled from their lowest
// (▁) to their highest (█); values that do not move draw a flat line in the
// middle, so that "no change" does not read as "at the low".
func sparkline(vals []float64) string {
	if len(vals) == 0 {
		return ""
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	var b strings.Builder
	for _, v := range vals {
		level := len(sparkLevels) / 2
		if hi > lo {
			level = int((v - lo) / (hi - lo) * float64(len(sparkLevels)-1)) // round down: only the high is █
		}
		b.WriteRune(sparkLevels[level])
	}
	return b.String()
}

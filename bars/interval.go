package bars

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultIntervals is the interval spec a node takes by default: 1 s bars
// for 15 minutes and 1 min bars for 24 hours.
const DefaultIntervals = "1s:15m,1m:24h"

// Limits of an interval spec.
const (
	// MaxIntervals bounds the intervals of one store: each one costs every
	// change of every symbol.
	MaxIntervals = 8
	// MaxKeep bounds the bars one ring retains (a week of 1 s bars).
	MaxKeep = 7 * 24 * 3600
)

const day = 24 * time.Hour

// Interval is one bar length and how many bars of it a symbol keeps.
type Interval struct {
	// Name is the interval's canonical name: a whole number of hours,
	// minutes or seconds, in the largest unit that divides it ("1s", "5s",
	// "1m", "90s", "1h"). Clients name intervals by it.
	Name string
	// Len is the bar length: a whole number of seconds that divides 24 h,
	// so that bars start at the same times every UTC day.
	Len time.Duration
	// Keep is how many bars a symbol retains: the retention over Len. Bars
	// are sparse (an interval without an update has no bar), so the Keep
	// newest bars may reach further back than the retention.
	Keep int
}

// Seconds returns the bar length in whole seconds.
func (iv Interval) Seconds() int64 { return int64(iv.Len / time.Second) }

// String returns the interval as ParseIntervals reads it ("1m:24h").
func (iv Interval) String() string {
	return iv.Name + ":" + durationName(time.Duration(iv.Keep)*iv.Len)
}

// check reports what is wrong with iv, or nil.
func (iv Interval) check() error {
	switch {
	case iv.Len < time.Second || iv.Len%time.Second != 0:
		return fmt.Errorf("interval %v: want a whole number of seconds", iv.Len)
	case day%iv.Len != 0:
		return fmt.Errorf("interval %s: want a length that divides 24h (1s, 5s, 1m, 5m, 15m, 1h...)", durationName(iv.Len))
	case iv.Name != durationName(iv.Len):
		return fmt.Errorf("interval %s: name %q, want %q", durationName(iv.Len), iv.Name, durationName(iv.Len))
	case iv.Keep < 1 || iv.Keep > MaxKeep:
		return fmt.Errorf("interval %s: keeps %d bars, want 1 to %d", iv.Name, iv.Keep, MaxKeep)
	}
	return nil
}

// durationName writes d in its largest whole unit: 1h, 15m, 90s.
func durationName(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// ParseIntervals reads an interval spec: comma-separated `length:retention`
// pairs of Go durations (a retention may also be whole days: 7d), such as
// DefaultIntervals. Each length is a whole
// number of seconds dividing 24 h; each retention a whole number of
// lengths, at most MaxKeep of them. The intervals come back sorted from
// the shortest, each named canonically ("60s" is "1m").
func ParseIntervals(spec string) ([]Interval, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("bars: empty interval spec: want length:retention pairs such as %s", DefaultIntervals)
	}
	var ivs []Interval
	for _, pair := range strings.Split(spec, ",") {
		lenText, keepText, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok {
			return nil, fmt.Errorf("bars: interval %q: want length:retention, such as 1m:24h", pair)
		}
		length, err := time.ParseDuration(lenText)
		if err != nil {
			return nil, fmt.Errorf("bars: interval %q: length: %w", pair, err)
		}
		retention, err := parseRetention(keepText)
		if err != nil {
			return nil, fmt.Errorf("bars: interval %q: retention: %w", pair, err)
		}
		// The length is checked first, with any valid Keep: the retention
		// is divided by it.
		iv := Interval{Name: durationName(length), Len: length, Keep: 1}
		if err := iv.check(); err != nil {
			return nil, fmt.Errorf("bars: %w", err)
		}
		if retention < length || retention%length != 0 {
			return nil, fmt.Errorf("bars: interval %q: retention %v: want a whole number of %s bars", pair, retention, iv.Name)
		}
		iv.Keep = int(min(retention/length, MaxKeep+1))
		if err := iv.check(); err != nil {
			return nil, fmt.Errorf("bars: %w", err)
		}
		ivs = append(ivs, iv)
	}
	slices.SortFunc(ivs, func(a, b Interval) int { return int(a.Len - b.Len) })
	if err := checkIntervals(ivs); err != nil {
		return nil, fmt.Errorf("bars: %w", err)
	}
	return ivs, nil
}

// checkIntervals reports what is wrong with a store's interval list.
func checkIntervals(ivs []Interval) error {
	if len(ivs) == 0 || len(ivs) > MaxIntervals {
		return fmt.Errorf("%d intervals: want 1 to %d", len(ivs), MaxIntervals)
	}
	for i, iv := range ivs {
		if err := iv.check(); err != nil {
			return err
		}
		if i > 0 && iv.Len <= ivs[i-1].Len {
			return fmt.Errorf("interval %s after %s: want each length once, shortest first", iv.Name, ivs[i-1].Name)
		}
	}
	return nil
}

// parseRetention reads a retention: a Go duration, or a whole number of
// days such as 7d.
func parseRetention(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 366 {
			return 0, fmt.Errorf("%q: want a whole number of days from 1 to 366", s)
		}
		return time.Duration(n) * day, nil
	}
	return time.ParseDuration(s)
}

// FormatIntervals writes intervals as ParseIntervals reads them.
func FormatIntervals(ivs []Interval) string {
	parts := make([]string, len(ivs))
	for i, iv := range ivs {
		parts[i] = iv.String()
	}
	return strings.Join(parts, ",")
}

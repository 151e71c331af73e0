package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/node"
)

// barsFlag is --bars: the node's bar intervals, or off.
type barsFlag struct{ cfg *node.Config }

func (f barsFlag) String() string {
	if f.cfg == nil {
		return ""
	}
	if f.cfg.BarsOff {
		return "off"
	}
	return bars.FormatIntervals(f.cfg.Bars.Intervals)
}

func (f barsFlag) Set(s string) error {
	if s == "off" {
		f.cfg.BarsOff = true
		return nil
	}
	ivs, err := bars.ParseIntervals(s)
	if err != nil {
		return fmt.Errorf("%s (or off)", strings.TrimPrefix(err.Error(), "bars: "))
	}
	f.cfg.BarsOff, f.cfg.Bars.Intervals = false, ivs
	return nil
}

// byteUnits are the suffixes a size flag takes, the largest first; a size
// is written in the largest that divides it, else in plain bytes.
var byteUnits = []struct {
	suffix string
	scale  int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}

// bytesFlag is a size in bytes, written with an optional binary unit:
// 268435456, 256MiB, 2GiB.
type bytesFlag struct{ n *int64 }

func (f bytesFlag) String() string {
	if f.n == nil {
		return ""
	}
	for _, u := range byteUnits[:3] {
		if *f.n >= u.scale && *f.n%u.scale == 0 {
			return strconv.FormatInt(*f.n/u.scale, 10) + u.suffix
		}
	}
	return strconv.FormatInt(*f.n, 10)
}

func (f bytesFlag) Set(s string) error {
	for _, u := range byteUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || v < 0 || v > (1<<62)/u.scale {
			break
		}
		*f.n = v * u.scale
		return nil
	}
	return fmt.Errorf("want a size in bytes such as 268435456, 256MiB or 2GiB")
}

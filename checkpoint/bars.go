package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tickstream/tickstream/bars"
)

const (
	// maxBarLen is the longest bar interval a checkpoint holds.
	maxBarLen = 24 * time.Hour
	// maxBarSec is the last start a bar can have (its seconds fit 32 bits).
	maxBarSec = math.MaxUint32
	// minBarSize is the fewest bytes a bar takes: start, trades and five
	// numbers of one byte each.
	minBarSize = 7

	seriesBars   = 1 // flag: the symbol has bars
	seriesTraded = 2 // flag: the symbol has traded

	rawNumber = 15 // a number's tag when it is stored as a float64
)

// pow10 are the decimal scales a number may be stored at, all exact.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendSeries appends a symbol's flags and bars.
func appendSeries(dst []byte, sr *bars.Series, lens []time.Duration) ([]byte, error) {
	if sr == nil {
		return binary.AppendUvarint(dst, 0), nil
	}
	if len(sr.Bars) != len(lens) {
		return dst, fmt.Errorf("bars of %d intervals, the checkpoint has %d", len(sr.Bars), len(lens))
	}
	flags := uint64(seriesBars)
	if sr.Traded {
		flags |= seriesTraded
	}
	dst = binary.AppendUvarint(dst, flags)
	for i, bs := range sr.Bars {
		if len(bs) > bars.MaxKeep {
			return dst, fmt.Errorf("%d bars of %v: want at most %d", len(bs), lens[i], bars.MaxKeep)
		}
		length := lens[i].Microseconds()
		dst = binary.AppendUvarint(dst, uint64(len(bs)))
		prevT, prevClose := int64(0), 0.0
		var scale, volScale int // the scales the last price and volume took
		for k, b := range bs {
			if b.T < 0 || b.T%length != 0 || b.T/1e6 > maxBarSec || (k > 0 && b.T <= prevT) {
				return dst, fmt.Errorf("bar %d of %v starts at %d: want whole intervals, increasing, from 1970 to 2106", k, lens[i], b.T)
			}
			dst = binary.AppendUvarint(dst, uint64((b.T-prevT)/length))
			dst = binary.AppendUvarint(dst, uint64(b.Trades))
			dst = appendNumber(dst, b.Open, prevClose, &scale)
			dst = appendNumber(dst, b.High, b.Open, &scale)
			dst = appendNumber(dst, b.Low, b.Open, &scale)
			dst = appendNumber(dst, b.Close, b.Open, &scale)
			dst = appendNumber(dst, b.Volume, 0, &volScale)
			prevT, prevClose = b.T, b.Close
		}
	}
	return dst, nil
}

// scaled returns round(v×10^k) when it is an integer a float64 holds
// exactly, else false.
func scaled(v float64, k int) (int64, bool) {
	m := math.Round(v * pow10[k])
	if math.Abs(m) > 1<<53 || math.IsNaN(m) {
		return 0, false
	}
	return int64(m), true
}

// appendNumber appends v as a decimal relative to ref where that gives v
// back bit for bit, else as a float64. It tries the scale *k first — a
// symbol's prices mostly share their decimals — then from 0, and leaves
// in *k the scale it used.
func appendNumber(dst []byte, v, ref float64, k *int) []byte {
	if m, ok := exactAt(v, *k); ok {
		return appendDecimal(dst, m, ref, *k)
	}
	for i := range pow10 {
		m, ok := scaled(v, i)
		if !ok {
			break
		}
		if float64bitsEqual(float64(m)/pow10[i], v) {
			*k = i
			return appendDecimal(dst, m, ref, i)
		}
	}
	dst = binary.AppendUvarint(dst, rawNumber)
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

// exactAt returns v×10^k when that is an integer the decoder divides back
// to v bit for bit.
func exactAt(v float64, k int) (int64, bool) {
	m, ok := scaled(v, k)
	return m, ok && float64bitsEqual(float64(m)/pow10[k], v)
}

func float64bitsEqual(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// appendDecimal appends m/10^k as its difference from ref at scale k.
func appendDecimal(dst []byte, m int64, ref float64, k int) []byte {
	r, _ := scaled(ref, k)
	d := m - r
	return binary.AppendUvarint(dst, uint64(d<<1^d>>63)<<4|uint64(k))
}

// number reads what appendNumber wrote with the same ref.
func (d *decoder) number(ref float64) float64 {
	x := d.uvarint(math.MaxUint64)
	if d.err != nil {
		return 0
	}
	k := x & 15
	if k == rawNumber {
		return d.float64()
	}
	if k >= uint64(len(pow10)) {
		d.err = fmt.Errorf("number of scale %d at byte %d", k, d.i)
		return 0
	}
	z := x >> 4
	r, _ := scaled(ref, int(k))
	m := r + (int64(z>>1) ^ -int64(z&1))
	if m > 1<<53 || m < -1<<53 {
		d.err = fmt.Errorf("number out of range at byte %d", d.i)
		return 0
	}
	return float64(m) / pow10[k]
}

// series reads what appendSeries wrote.
func (d *decoder) series(lens []time.Duration) *bars.Series {
	flags := d.uvarint(seriesBars | seriesTraded)
	if d.err != nil || flags&seriesBars == 0 {
		if flags != 0 && d.err == nil {
			d.err = errors.New("traded flag without bars")
		}
		return nil
	}
	sr := &bars.Series{Traded: flags&seriesTraded != 0, Bars: make([][]bars.Bar, len(lens))}
	for i, l := range lens {
		n := d.uvarint(uint64(min(bars.MaxKeep, d.left()/minBarSize)))
		if d.err != nil || n == 0 {
			continue
		}
		length := uint64(l / time.Second)
		bs := make([]bars.Bar, n)
		var t uint64 // intervals since 1970
		prevClose := 0.0
		for k := range bs {
			step := d.uvarint(maxBarSec)
			if d.err == nil && k > 0 && step == 0 {
				d.err = fmt.Errorf("bar %d of %v does not start after the previous one", k, l)
			}
			if t += step; d.err == nil && t*length > maxBarSec {
				d.err = fmt.Errorf("bar %d of %v starts after 2106", k, l)
			}
			b := &bs[k]
			b.T = int64(t*length) * 1e6
			b.Trades = uint32(d.uvarint(math.MaxUint32))
			b.Open = d.number(prevClose)
			b.High = d.number(b.Open)
			b.Low = d.number(b.Open)
			b.Close = d.number(b.Open)
			b.Volume = d.number(0)
			prevClose = b.Close
		}
		if d.err != nil {
			return nil
		}
		sr.Bars[i] = bs
	}
	return sr
}

package checkpoint

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
)

// dayOfBars returns a checkpoint of n symbols, each with a full day of
// 1 min bars and 15 minutes of 1 s bars (the default retention) of a
// random walk in cents, integer volumes.
func dayOfBars(n int) *Checkpoint {
	r := rand.New(rand.NewPCG(1, 2))
	c := &Checkpoint{Topic: "ticks", Created: time.Now(), Offsets: map[int]int64{0: 1 << 30},
		BarLens: []time.Duration{time.Second, time.Minute}}
	walk := func(count int, step, start int64, price float64) []bars.Bar {
		bs := make([]bars.Bar, count)
		for k := range bs {
			o := price
			h, l := o, o
			for range 1 + r.IntN(20) {
				price = math.Round((price+float64(r.IntN(11)-5)*0.01)*100) / 100
				h, l = max(h, price), min(l, price)
			}
			bs[k] = bars.Bar{T: start + int64(k)*step, Open: o, High: h, Low: l, Close: price,
				Volume: float64(100 * (1 + r.IntN(500))), Trades: uint32(1 + r.IntN(300))}
		}
		return bs
	}
	for i := range n {
		st := state(uint64(1e6), codec.FieldTS, float64(t0), codec.FieldLast, 100, codec.FieldBid, 99.99, codec.FieldAsk, 100.01)
		price := 20 + float64(r.IntN(50000))/100
		minutes := walk(1440, 60e6, t0, price)
		seconds := walk(900, 1e6, t0+(1440-15)*60e6, minutes[len(minutes)-15].Open)
		c.Symbols = append(c.Symbols, Symbol{Name: fmt.Sprintf("S%04d", i), State: st,
			Bars: &bars.Series{Traded: true, Bars: [][]bars.Bar{seconds, minutes}}})
	}
	return c
}

// BenchmarkWriteBars writes the checkpoint of 500 symbols with a full day
// of bars: the encoding alone, and the whole durable write (encode, write,
// fsync, rename), with the file's size.
func BenchmarkWriteBars(b *testing.B) {
	c := dayOfBars(500)
	buf, err := c.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	bars := 0
	for _, s := range c.Symbols {
		for _, bs := range s.Bars.Bars {
			bars += len(bs)
		}
	}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if buf, err = c.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf))/(1<<20), "MiB")
		b.ReportMetric(float64(len(buf))/float64(bars), "B/bar")
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := Decode(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write-file", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "node.ckpt")
		for b.Loop() {
			if err := WriteFile(path, c); err != nil {
				b.Fatal(err)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	})
}

package bars_test

import (
	"slices"
	"testing"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
)

// FuzzBars applies updates made from arbitrary bytes — trades, quotes,
// other fields, ts forward, back and far ahead — to a store with small
// rings and a small memory bound, and holds every symbol's bars to the
// reference: equal while the bound leaves room, the reference's newest
// once it does not.
func FuzzBars(f *testing.F) {
	f.Add([]byte{0, 0, 10, 5, 1, 1, 12, 200, 2, 2, 11, 3, 0, 3, 9, 128})
	f.Add([]byte{3, 2, 1, 9, 3, 3, 1, 9, 3, 0, 4, 255, 3, 0, 7, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newPipeline(t, "1s:10s,5s:1m,1m:5m", 40*bars.BytesPerBar)
		ts := t0
		for ; len(b) >= 4; b = b[4:] {
			u := &codec.Update{Sym: []byte{'S', '0' + b[0]%3}}
			price := 100 + float64(b[2]%16)*0.25
			switch d := int64(int8(b[3])); {
			case d == -128:
				ts += 3_600_000_000 // an hour ahead
			default:
				ts = max(ts+d*150_000, 0) // back as well as forward
			}
			u.Set(codec.FieldTS, float64(ts))
			switch b[1] % 5 {
			case 0:
				u.Set(codec.FieldLast, price)
			case 1:
				u.Set(codec.FieldLast, price)
				u.Set(codec.FieldLastSize, float64(b[2]>>4))
			case 2:
				u.Set(codec.FieldBid, price)
			case 3:
				u.Set(codec.FieldAsk, price)
			case 4:
				u.Set(codec.FieldVolume, price)
			}
			p.apply(t, u)
		}
		for _, name := range p.ref.Symbols() {
			for i := range p.bars.Intervals() {
				got, _ := p.history(name, i)
				want := p.ref.Bars(name, i)
				if len(got) > len(want) || !slices.Equal(got, want[len(want)-len(got):]) {
					t.Fatalf("%s %s:\n got %v\nwant the newest of %v", name, p.bars.Intervals()[i].Name, got, want)
				}
				if p.bars.Stats().Capped == 0 && len(got) != len(want) {
					t.Fatalf("%s %s: %d bars, want %d (nothing capped)", name, p.bars.Intervals()[i].Name, len(got), len(want))
				}
			}
		}
	})
}

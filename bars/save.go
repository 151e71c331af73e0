package bars

import (
	"time"

	"github.com/tickstream/tickstream/snapshot"
)

// Series is one symbol's bars as a checkpoint holds them.
type Series struct {
	// Traded is set once the symbol has traded: it makes trade bars only,
	// even when its retained bars are all older mid-price ones.
	Traded bool
	// Bars holds the bars per interval (of the store that saved them, or
	// of the checkpoint that holds them), oldest first.
	Bars [][]Bar
}

// Lens returns the lengths of the store's intervals, in the order of
// Series.Bars.
func (s *Store) Lens() []time.Duration {
	lens := make([]time.Duration, len(s.ivs))
	for i, iv := range s.ivs {
		lens[i] = iv.Len
	}
	return lens
}

// Save returns a copy of sym's bars, or false when sym has none. Called
// while the store's appliers are paused (a checkpoint's cut), it copies
// the bars that exactly the changes before the cut made.
func (s *Store) Save(sym *snapshot.Symbol) (Series, bool) {
	se := s.lookup(sym)
	if se == nil {
		return Series{}, false
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	sr := Series{Traded: se.trades, Bars: make([][]Bar, len(se.rings))}
	empty := !se.trades
	for i := range se.rings {
		r := &se.rings[i]
		if r.n == 0 {
			continue
		}
		empty = false
		bs := make([]Bar, r.n)
		for k := range bs {
			bs[k] = r.at(k).bar()
		}
		sr.Bars[i] = bs
	}
	return sr, !empty
}

// Restore gives sym the bars of sr, whose Bars are per interval of lens,
// as of the symbol's version seq (a warm restart, before the first
// change). An interval of the store that lens lacks starts empty; bars of
// an interval the store lacks are dropped; a ring keeps at most its
// interval's newest Keep bars, and fewer when the memory bound leaves no
// room (counted in Stats.Capped). Bars must be as Save returned them:
// start times increasing, each at a whole interval after 1970 and before
// 2106 (the checkpoint's decoder checks it).
func (s *Store) Restore(sym *snapshot.Symbol, seq uint64, lens []time.Duration, sr Series) {
	se := s.series(sym, true)
	se.mu.Lock()
	defer se.mu.Unlock()
	se.seq, se.trades = seq, sr.Traded
	for i, iv := range s.ivs {
		r := &se.rings[i]
		s.used.Add(-int64(len(r.slots)) * BytesPerBar)
		*r = ring{}
		var bs []Bar
		for j, l := range lens {
			if l == iv.Len && j < len(sr.Bars) {
				bs = sr.Bars[j]
			}
		}
		if len(bs) > iv.Keep {
			bs = bs[len(bs)-iv.Keep:]
		}
		if len(bs) == 0 {
			continue
		}
		size := s.takeSlots(max(len(bs), min(minSlots, iv.Keep)))
		if size < len(bs) {
			s.capped.Add(uint64(len(bs) - size))
			s.warnCapped(sym, i)
			bs = bs[len(bs)-size:]
		}
		if size == 0 {
			continue
		}
		r.slots, r.n = make([]slot, size), len(bs)
		for k, b := range bs {
			r.slots[k] = slot{sec: uint32(b.T / 1e6), trades: b.Trades, o: b.Open, h: b.High, l: b.Low, c: b.Close, v: b.Volume}
		}
	}
}

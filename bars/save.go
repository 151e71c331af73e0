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

// Mark is one symbol's bars at a checkpoint's cut, taken while the
// appliers are paused. It holds only the newest bar of each interval (the
// only one a later change can alter) and where the ring stood; Copy,
// after the appliers resume, copies the older bars, which no change alters
// any more. So the pause costs a few dozen nanoseconds per symbol, not a
// copy of every bar.
type Mark struct {
	se     *series
	traded bool
	rings  []ringMark
}

type ringMark struct {
	pushed uint64 // the ring's pushed at the cut
	n      int    // bars held at the cut
	newest Bar
}

// Mark marks sym's bars at a checkpoint's cut (see Mark); ok is false
// when sym has none. Call it while the store's appliers are paused.
func (s *Store) Mark(sym *snapshot.Symbol) (m Mark, ok bool) {
	se := s.lookup(sym)
	if se == nil {
		return Mark{}, false
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	m = Mark{se: se, traded: se.trades, rings: make([]ringMark, len(se.rings))}
	ok = se.trades
	for i := range se.rings {
		r := &se.rings[i]
		m.rings[i] = ringMark{pushed: r.pushed, n: r.n}
		if r.n > 0 {
			m.rings[i].newest = r.newest().bar()
			ok = true
		}
	}
	return m, ok
}

// Copy returns the bars of a Mark: those the symbol held at the cut,
// less the oldest that later bars have pushed out of the ring since —
// exactly the bars a node restarted from the cut holds once it has
// applied the same later records again.
func (s *Store) Copy(m Mark) Series {
	se := m.se
	se.mu.Lock()
	defer se.mu.Unlock()
	sr := Series{Traded: m.traded, Bars: make([][]Bar, len(m.rings))}
	for i, rm := range m.rings {
		if rm.n == 0 {
			continue
		}
		r := &se.rings[i]
		// Bars are counted as pushed: the oldest held now is the cut's
		// oldest or a later one (rings only push bars out); the cut's
		// newest comes from the mark, the only one changed since.
		held, newest := r.pushed-uint64(r.n), rm.pushed-1
		bs := make([]Bar, 0, 1+max(int64(newest)-int64(held), 0))
		for p := held; p < newest; p++ {
			bs = append(bs, r.at(int(p-held)).bar())
		}
		sr.Bars[i] = append(bs, rm.newest)
	}
	return sr
}

// Restore gives sym the bars of sr, whose Bars are per interval of lens,
// as of the symbol's version seq (a warm restart, before the first
// change). An interval of the store that lens lacks starts empty; bars of
// an interval the store lacks are dropped; a ring keeps at most its
// interval's newest Keep bars, and fewer when the memory bound leaves no
// room (counted in Stats.Capped). Bars must be as Copy returned them:
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
		r.slots, r.n, r.pushed = make([]slot, size), len(bs), uint64(len(bs))
		for k, b := range bs {
			r.slots[k] = slot{sec: uint32(b.T / 1e6), trades: b.Trades, o: b.Open, h: b.High, l: b.Low, c: b.Close, v: b.Volume}
		}
	}
}

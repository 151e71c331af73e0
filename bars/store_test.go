package bars_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/barstest"
	"github.com/tickstream/tickstream/snapshot"
)

// t0 is a minute's (and an hour's) start, unix µs.
const t0 = int64(1_764_000_000_000_000)

const sec = int64(time.Second / time.Microsecond)

// rec returns a record of sym at ts (unix µs) carrying the field/value
// pairs kv.
func rec(sym string, ts int64, kv ...float64) *codec.Update {
	u := &codec.Update{Sym: []byte(sym)}
	u.Set(codec.FieldTS, float64(ts))
	for i := 0; i+1 < len(kv); i += 2 {
		u.Set(int(kv[i]), kv[i+1])
	}
	return u
}

func trade(sym string, ts int64, price, size float64) *codec.Update {
	return rec(sym, ts, codec.FieldLast, price, codec.FieldLastSize, size)
}

// pipeline is a snapshot store whose observer is a bars store, with the
// reference fed the same updates.
type pipeline struct {
	snap *snapshot.Store
	bars *bars.Store
	ref  *barstest.Reference
}

func newPipeline(t testing.TB, spec string, maxBytes int64) *pipeline {
	t.Helper()
	ivs, err := bars.ParseIntervals(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bars.New(bars.Config{Intervals: ivs, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{snap: snapshot.New(), bars: b, ref: barstest.NewReference(ivs)}
	p.snap.SetObserver(b)
	return p
}

func (p *pipeline) apply(t testing.TB, us ...*codec.Update) {
	t.Helper()
	for _, u := range us {
		if err := p.snap.Apply(u); err != nil {
			t.Fatal(err)
		}
		p.ref.Apply(u)
	}
}

func (p *pipeline) history(sym string, i int) ([]bars.Bar, uint64) {
	return p.bars.AppendHistory(nil, p.snap.Lookup([]byte(sym)), i, 0, 0)
}

// bar is a bars.Bar literal in the order of the wire's tuple.
func bar(t int64, o, h, l, c, v float64, n uint32) bars.Bar {
	return bars.Bar{T: t, Open: o, High: h, Low: l, Close: c, Volume: v, Trades: n}
}

func TestBars(t *testing.T) {
	const spec = "1s:10s,1m:1h"
	tests := []struct {
		name    string
		updates []*codec.Update
		want    [2][]bars.Bar // 1s, 1m bars of "A"
		late    [2]uint64
	}{{
		name: "trades make OHLCV; a trade without lastSize has no volume",
		updates: []*codec.Update{
			trade("A", t0+100_000, 10, 1), trade("A", t0+500_000, 12, 2), trade("A", t0+900_000, 9, 1),
			rec("A", t0+1_200_000, codec.FieldLast, 11),
		},
		want: [2][]bars.Bar{
			{bar(t0, 10, 12, 9, 9, 4, 3), bar(t0+sec, 11, 11, 11, 11, 0, 1)},
			{bar(t0, 10, 12, 9, 11, 4, 4)},
		},
	}, {
		name:    "a trade at the last trade's price and size is a trade",
		updates: []*codec.Update{trade("A", t0, 10, 1), trade("A", t0+1, 10, 1)},
		want:    [2][]bars.Bar{{bar(t0, 10, 10, 10, 10, 2, 2)}, {bar(t0, 10, 10, 10, 10, 2, 2)}},
	}, {
		name:    "an exact duplicate record counts once",
		updates: []*codec.Update{trade("A", t0, 10, 1), trade("A", t0, 10, 1)},
		want:    [2][]bars.Bar{{bar(t0, 10, 10, 10, 10, 1, 1)}, {bar(t0, 10, 10, 10, 10, 1, 1)}},
	}, {
		name: "quotes only: mid prices once bid and ask are known; other fields move nothing",
		updates: []*codec.Update{
			rec("A", t0, codec.FieldBid, 1), rec("A", t0+1, codec.FieldAsk, 3),
			rec("A", t0+2, codec.FieldBid, 2, codec.FieldBidSize, 5), rec("A", t0+3, codec.FieldVolume, 100),
			rec("A", t0+4, codec.FieldBidSize, 7),
		},
		want: [2][]bars.Bar{{bar(t0, 2, 2.5, 2, 2.5, 0, 2)}, {bar(t0, 2, 2.5, 2, 2.5, 0, 2)}},
	}, {
		name: "the first trade restarts the bar in progress; earlier mid bars stay; quotes move nothing after",
		updates: []*codec.Update{
			rec("A", t0, codec.FieldBid, 1, codec.FieldAsk, 3), rec("A", t0+sec, codec.FieldBid, 3),
			trade("A", t0+1500_000, 5, 1), rec("A", t0+1700_000, codec.FieldBid, 1, codec.FieldAsk, 2),
		},
		want: [2][]bars.Bar{
			{bar(t0, 2, 2, 2, 2, 0, 1), bar(t0+sec, 5, 5, 5, 5, 1, 1)},
			{bar(t0, 5, 5, 5, 5, 1, 1)},
		},
	}, {
		name:    "a first trade in a new interval starts a bar",
		updates: []*codec.Update{rec("A", t0, codec.FieldBid, 1, codec.FieldAsk, 3), trade("A", t0+2*sec, 5, 1)},
		want: [2][]bars.Bar{
			{bar(t0, 2, 2, 2, 2, 0, 1), bar(t0+2*sec, 5, 5, 5, 5, 1, 1)},
			{bar(t0, 5, 5, 5, 5, 1, 1)},
		},
	}, {
		name:    "a late record counts into the newest bar",
		updates: []*codec.Update{trade("A", t0+2*sec, 10, 1), trade("A", t0+500_000, 8, 3), trade("A", t0+2*sec+1, 9, 1)},
		want:    [2][]bars.Bar{{bar(t0+2*sec, 10, 10, 8, 9, 5, 3)}, {bar(t0, 10, 10, 8, 9, 5, 3)}},
		late:    [2]uint64{1, 0},
	}, {
		name:    "a late first trade restarts the newest bar",
		updates: []*codec.Update{rec("A", t0+2*sec, codec.FieldBid, 1, codec.FieldAsk, 3), trade("A", t0, 5, 1)},
		want:    [2][]bars.Bar{{bar(t0+2*sec, 5, 5, 5, 5, 1, 1)}, {bar(t0, 5, 5, 5, 5, 1, 1)}},
		late:    [2]uint64{1, 0},
	}, {
		name: "values stay finite: the mid of two huge quotes, a volume past the largest double",
		updates: []*codec.Update{
			rec("A", t0-sec, codec.FieldBid, math.MaxFloat64, codec.FieldAsk, math.MaxFloat64),
			trade("A", t0, 10, math.MaxFloat64), trade("A", t0+1, 10, math.MaxFloat64), trade("A", t0+2, 10, -math.MaxFloat64),
		},
		want: [2][]bars.Bar{ // the sum stops at the largest double, and the last size takes it back to 0
			{bar(t0-sec, math.MaxFloat64, math.MaxFloat64, math.MaxFloat64, math.MaxFloat64, 0, 1), bar(t0, 10, 10, 10, 10, 0, 3)},
			{bar(t0-60*sec, math.MaxFloat64, math.MaxFloat64, math.MaxFloat64, math.MaxFloat64, 0, 1), bar(t0, 10, 10, 10, 10, 0, 3)},
		},
	}, {
		name:    "intervals without trades have no bar",
		updates: []*codec.Update{trade("A", t0, 10, 1), trade("A", t0+5*sec, 11, 1), trade("A", t0+61*sec, 12, 1)},
		want: [2][]bars.Bar{
			{bar(t0, 10, 10, 10, 10, 1, 1), bar(t0+5*sec, 11, 11, 11, 11, 1, 1), bar(t0+61*sec, 12, 12, 12, 12, 1, 1)},
			{bar(t0, 10, 11, 10, 11, 2, 2), bar(t0+60*sec, 12, 12, 12, 12, 1, 1)},
		},
	}, {
		name: "a ring keeps its interval's newest bars",
		updates: func() []*codec.Update {
			var us []*codec.Update
			for k := range int64(13) {
				us = append(us, trade("A", t0+k*sec, float64(k), 1))
			}
			return us
		}(),
		want: [2][]bars.Bar{
			func() []bars.Bar {
				var bs []bars.Bar
				for k := int64(3); k < 13; k++ {
					bs = append(bs, bar(t0+k*sec, float64(k), float64(k), float64(k), float64(k), 1, 1))
				}
				return bs
			}(),
			{bar(t0, 0, 12, 0, 12, 13, 13)},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t, spec, bars.DefaultMaxBytes)
			p.apply(t, tt.updates...)
			seq := p.snap.Lookup([]byte("A")).Load().Seq
			for i := range 2 {
				got, gotSeq := p.history("A", i)
				if !slices.Equal(got, tt.want[i]) {
					t.Errorf("%s bars:\n got %v\nwant %v", p.bars.Intervals()[i].Name, got, tt.want[i])
				}
				if ref := p.ref.Bars("A", i); !slices.Equal(ref, tt.want[i]) {
					t.Errorf("%s bars of the reference:\n got %v\nwant %v", p.bars.Intervals()[i].Name, ref, tt.want[i])
				}
				if gotSeq != seq {
					t.Errorf("%s bars complete up to seq %d, want the symbol's %d", p.bars.Intervals()[i].Name, gotSeq, seq)
				}
				if late := p.bars.Stats().Late[i]; late != tt.late[i] {
					t.Errorf("%s late %d, want %d", p.bars.Intervals()[i].Name, late, tt.late[i])
				}
			}
		})
	}
}

// randomLog returns updates of symbols SYM0..: a mix of trades (with and
// without lastSize), quotes, other fields, repeats, late and early ts;
// symbols whose number is a multiple of 4 trade only after half the log.
func randomLog(seed uint64, n, symbols int) []*codec.Update {
	r := rand.New(rand.NewPCG(seed, seed))
	ts := t0
	us := make([]*codec.Update, 0, n)
	for k := range n {
		s := r.IntN(symbols)
		u := &codec.Update{Sym: fmt.Appendf(nil, "SYM%d", s)}
		ts += int64(r.IntN(400_000))
		switch r.IntN(20) {
		case 0:
			u.Set(codec.FieldTS, float64(ts-int64(r.IntN(5_000_000)))) // late
		case 1: // no ts: the symbol keeps its last one
		default:
			u.Set(codec.FieldTS, float64(ts))
		}
		price := func() float64 { return 100 + float64(r.IntN(40))*0.25 }
		switch kind := r.IntN(10); {
		case kind < 4 && (s%4 != 0 || k > n/2):
			u.Set(codec.FieldLast, price())
			if r.IntN(3) > 0 {
				u.Set(codec.FieldLastSize, float64(1+r.IntN(3)))
			}
		case kind < 8:
			if r.IntN(2) == 0 {
				u.Set(codec.FieldBid, price())
			}
			if r.IntN(2) == 0 {
				u.Set(codec.FieldAsk, price()+0.25)
			}
		default:
			u.Set(codec.FieldVolume, float64(r.IntN(3)))
		}
		if u.Mask == 0 {
			u.Set(codec.FieldBidSize, 1)
		}
		us = append(us, u)
	}
	return us
}

func TestBarsMatchReference(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := newPipeline(t, "1s:30s,5s:2m,1m:1h", bars.DefaultMaxBytes)
			p.apply(t, randomLog(seed, 20_000, 12)...)
			var late [3]int
			for _, sym := range p.ref.Symbols() {
				for i := range 3 {
					got, seq := p.history(sym, i)
					want := p.ref.Bars(sym, i)
					if !slices.Equal(got, want) {
						t.Fatalf("%s %s: got %d bars, want %d:\n got %v\nwant %v", sym, p.bars.Intervals()[i].Name, len(got), len(want), got, want)
					}
					if want := p.ref.Seq(sym); seq != want && len(got) > 0 {
						t.Fatalf("%s: seq %d, want %d", sym, seq, want)
					}
					late[i] += p.ref.Late(sym, i)
				}
			}
			for i := range 3 {
				if got := p.bars.Stats().Late[i]; got != uint64(late[i]) {
					t.Errorf("%s: late %d, want %d", p.bars.Intervals()[i].Name, got, late[i])
				}
			}
		})
	}
}

func TestMemoryBound(t *testing.T) {
	// Room for 40 bars: the first rings grow, the later ones get what is
	// left, and then every ring wraps at the size it has.
	const maxBytes = 40 * bars.BytesPerBar
	p := newPipeline(t, "1s:1h", maxBytes)
	p.apply(t, randomLog(1, 30_000, 10)...)
	st := p.bars.Stats()
	if st.Bytes > maxBytes || st.Bytes < maxBytes-8*bars.BytesPerBar {
		t.Fatalf("rings hold %d bytes, want at most %d and close to it", st.Bytes, maxBytes)
	}
	if st.Capped == 0 {
		t.Fatal("no bar counted as capped")
	}
	held := 0
	for _, sym := range p.ref.Symbols() {
		got, _ := p.history(sym, 0)
		want := p.ref.Bars(sym, 0)
		held += len(got)
		if len(got) > len(want) || !slices.Equal(got, want[len(want)-len(got):]) {
			t.Fatalf("%s: %d bars, not the newest of the reference's %d", sym, len(got), len(want))
		}
	}
	if held*int(bars.BytesPerBar) > int(maxBytes) {
		t.Fatalf("%d bars held, over the bound of %d", held, maxBytes/bars.BytesPerBar)
	}
}

func TestNoRoomAtAll(t *testing.T) {
	p := newPipeline(t, "1s:1h", 8*bars.BytesPerBar)
	p.apply(t, trade("A", t0, 1, 1), trade("B", t0, 2, 1), trade("B", t0+sec, 3, 1), trade("B", t0+sec+1, 4, 1), trade("B", t0, 5, 1))
	if got, _ := p.history("A", 0); len(got) != 1 {
		t.Fatalf("A: %v, want its one bar", got)
	}
	if got, seq := p.history("B", 0); len(got) != 0 || seq != 4 {
		t.Fatalf("B: %v at seq %d, want no bar (no room) at seq 4", got, seq)
	}
	if st := p.bars.Stats(); st.Capped != 2 {
		t.Fatalf("capped %d, want 2: the two bars B had no room for, each once", st.Capped)
	}
}

func TestAppendHistory(t *testing.T) {
	p := newPipeline(t, "1s:1h", bars.DefaultMaxBytes)
	for k := range int64(10) {
		p.apply(t, trade("A", t0+2*k*sec, float64(k), 1)) // bars at t0, t0+2s, ..., t0+18s
	}
	sym := p.snap.Lookup([]byte("A"))
	all, _ := p.bars.AppendHistory(nil, sym, 0, 0, 0)
	tests := []struct {
		name  string
		since int64
		n     int
		want  []bars.Bar
	}{
		{"all", 0, 0, all},
		{"the last 3", 0, 3, all[7:]},
		{"more than held", 0, 50, all},
		{"since a bar's start", t0 + 4*sec, 0, all[2:]},
		{"since between bars", t0 + 5*sec, 0, all[3:]},
		{"since and the last 2", t0 + 5*sec, 2, all[8:]},
		{"since after the newest", t0 + 19*sec, 0, nil},
	}
	ranges := []struct {
		name     string
		from, to int64
		n        int
		want     []bars.Bar
	}{
		{"a range", t0 + 4*sec, t0 + 10*sec, 0, all[2:5]},
		{"to a bar's start excludes it", t0, t0 + 2*sec, 0, all[:1]},
		{"the newest 2 of a range", t0 + 4*sec, t0 + 11*sec, 2, all[4:6]},
		{"an empty range", t0 + 5*sec, t0 + 6*sec, 0, nil},
		{"to before from", t0 + 10*sec, t0, 0, nil},
	}
	for _, tt := range ranges {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := p.bars.AppendRange(nil, sym, 0, tt.from, tt.to, tt.n)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []bars.Bar{{T: 1}}
			got, seq := p.bars.AppendHistory(prefix, sym, 0, tt.since, tt.n)
			if !slices.Equal(got[1:], tt.want) || got[0] != prefix[0] {
				t.Fatalf("got %v, want %v after the prefix", got, tt.want)
			}
			if seq != 10 {
				t.Fatalf("seq %d, want 10", seq)
			}
		})
	}
	reserved, _, _ := p.snap.Reserve([]byte("NONE"))
	if got, seq := p.bars.AppendHistory(nil, reserved, 0, 0, 0); got != nil || seq != 0 {
		t.Fatalf("a reserved symbol: %v at seq %d, want nothing", got, seq)
	}
	if _, _, ok := p.bars.Last(reserved, 0); ok {
		t.Fatal("a reserved symbol has a last bar")
	}
}

// probe is a next observer that reads the bars inside Publish, as the hub
// does.
type probe struct {
	bars    *bars.Store
	touched []bool
	last    []bars.Bar
	seqs    []uint64
}

func (p *probe) Publish(c snapshot.Change) {
	p.touched = append(p.touched, p.bars.Touched(c))
	b, seq, _ := p.bars.Last(c.Symbol, 0)
	p.last = append(p.last, b)
	p.seqs = append(p.seqs, seq)
}

func TestNextObserver(t *testing.T) {
	p := newPipeline(t, "1s:1h", bars.DefaultMaxBytes)
	pr := &probe{bars: p.bars}
	p.bars.SetObserver(pr)
	p.apply(t,
		rec("A", t0, codec.FieldVolume, 5),   // no bar yet
		trade("A", t0, 10, 1),                // a bar
		rec("A", t0+1, codec.FieldVolume, 6), // moves nothing
		trade("A", t0+2, 10, 1),              // a trade, though only ts changed
		rec("A", t0+sec, codec.FieldBid, 1),  // a quote of a symbol that trades
		trade("A", t0+sec, 11, 1),            // a new bar
	)
	wantTouched := []bool{false, true, false, true, false, true}
	wantLast := []bars.Bar{{}, bar(t0, 10, 10, 10, 10, 1, 1), bar(t0, 10, 10, 10, 10, 1, 1), bar(t0, 10, 10, 10, 10, 2, 2),
		bar(t0, 10, 10, 10, 10, 2, 2), bar(t0+sec, 11, 11, 11, 11, 1, 1)}
	wantSeqs := []uint64{0, 2, 3, 4, 5, 6}
	if !slices.Equal(pr.touched, wantTouched) || !slices.Equal(pr.last, wantLast) || !slices.Equal(pr.seqs, wantSeqs) {
		t.Fatalf("the next observer saw touched %v, last %v, seqs %v;\nwant %v, %v, %v", pr.touched, pr.last, pr.seqs, wantTouched, wantLast, wantSeqs)
	}
}

// TestConcurrentReaders runs readers against the writers of several
// symbols, for the race detector, and checks what they read is ordered.
func TestConcurrentReaders(t *testing.T) {
	p := newPipeline(t, "1s:30s,1m:1h", bars.DefaultMaxBytes)
	us := randomLog(3, 20_000, 4)
	p.apply(t, us[:100]...)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range 2 {
		wg.Go(func() {
			var buf []bars.Bar
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, name := range []string{"SYM0", "SYM1", "SYM2", "SYM3"} {
					sym := p.snap.Lookup([]byte(name))
					buf, _ = p.bars.AppendHistory(buf[:0], sym, r, 0, 0)
					for k := 1; k < len(buf); k++ {
						if buf[k].T <= buf[k-1].T {
							t.Errorf("%s: bar %d starts at %d, after %d", name, k, buf[k].T, buf[k-1].T)
							return
						}
					}
					p.bars.Last(sym, r)
				}
			}
		})
	}
	// Two writers, as two partitions: each symbol stays with one.
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for _, u := range us[100:] {
				if (u.Sym[3]-'0')%2 == byte(w) {
					if err := p.snap.Apply(u); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
}

func TestPublishAllocations(t *testing.T) {
	b, err := bars.New(bars.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrader(&snapshot.Symbol{ID: 1, Name: "A"})
	for range 3000 { // past every ring's retention: no ring grows any more
		tr.trade(b)
	}
	if allocs := testing.AllocsPerRun(1000, func() { tr.trade(b) }); allocs != 0 {
		t.Fatalf("%v allocations per change, want 0", allocs)
	}
}

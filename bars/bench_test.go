package bars_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// BenchmarkPublish is what bars add to each change of the store: the
// default intervals, 500 symbols whose rings are full, trades 30 s apart
// (every change starts a 1 s bar, every other one a 1 min bar).
func BenchmarkPublish(b *testing.B) {
	s, err := bars.New(bars.Config{})
	if err != nil {
		b.Fatal(err)
	}
	const symbols = 500
	traders := make([]trader, symbols)
	for i := range traders {
		traders[i] = newTrader(&snapshot.Symbol{ID: uint32(i + 1), Name: fmt.Sprint("S", i)})
		for range 3000 { // past every ring's retention: no ring grows any more
			traders[i].trade(s)
		}
	}
	b.ReportAllocs()
	for k := 0; b.Loop(); k++ {
		traders[k%symbols].trade(s)
	}
}

// trader publishes trades of one symbol 30 s apart: each starts a 1 s bar,
// every other one a 1 min bar.
type trader struct{ c snapshot.Change }

func newTrader(sym *snapshot.Symbol) trader {
	next := &snapshot.State{Mask: 1<<codec.FieldTS | 1<<codec.FieldLast | 1<<codec.FieldLastSize}
	next.Values[codec.FieldTS] = float64(t0)
	next.Values[codec.FieldLastSize] = 1
	return trader{snapshot.Change{Symbol: sym, Next: next, Carried: next.Mask, Mask: next.Mask}}
}

func (t *trader) trade(s *bars.Store) {
	t.c.Next.Seq++
	t.c.Next.Values[codec.FieldTS] += float64(30 * sec)
	t.c.Next.Values[codec.FieldLast] = 100 + float64(t.c.Next.Seq%7)
	s.Publish(t.c)
}

// BenchmarkApply is the store's Apply of one trade record, with and
// without bars between the store and its (no-op) next observer: the
// difference is bars' cost per record on the ingest path.
func BenchmarkApply(b *testing.B) {
	const symbols = 500
	updates := make([]codec.Update, symbols*64)
	for k := range updates {
		u := &updates[k]
		u.Sym = fmt.Appendf(nil, "S%d", k%symbols)
		u.Set(codec.FieldTS, float64(t0+int64(k/symbols)*30*sec))
		u.Set(codec.FieldLast, 100+float64(k%7))
		u.Set(codec.FieldLastSize, float64(1+k%3))
	}
	for _, withBars := range []bool{false, true} {
		b.Run(map[bool]string{false: "store", true: "store+bars"}[withBars], func(b *testing.B) {
			st := snapshot.New()
			var next nop
			st.SetObserver(next)
			if withBars {
				s, err := bars.New(bars.Config{})
				if err != nil {
					b.Fatal(err)
				}
				s.SetObserver(next)
				st.SetObserver(s)
			}
			b.ReportAllocs()
			for k := 0; b.Loop(); k++ {
				if k > 0 && k%len(updates) == 0 {
					for j := range updates { // the next lap goes on in time
						updates[j].Values[codec.FieldTS] += float64(64 * 30 * sec)
					}
				}
				u := &updates[k%len(updates)]
				if err := st.Apply(u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type nop struct{}

func (nop) Publish(snapshot.Change) {}

// BenchmarkMemory fills the default intervals of n symbols with a full day
// (1440 1 min bars; 900 1 s bars) and reports the rings' bytes as the store
// counts them and the heap the store takes, per symbol and in all, under
// the default memory bound and without one.
func BenchmarkMemory(b *testing.B) {
	for _, tc := range []struct {
		symbols  int
		maxBytes int64
	}{{500, 0}, {10_000, 0}, {10_000, 2 << 30}} {
		name := fmt.Sprintf("symbols=%d/max=%dMiB", tc.symbols, max(tc.maxBytes, bars.DefaultMaxBytes)>>20)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s, err := bars.New(bars.Config{MaxBytes: tc.maxBytes})
				if err != nil {
					b.Fatal(err)
				}
				fillDay(s, tc.symbols)
				runtime.GC()
				runtime.ReadMemStats(&after)
				st := s.Stats()
				heap := float64(after.HeapAlloc - before.HeapAlloc)
				b.ReportMetric(float64(st.Bytes)/(1<<20), "ring-MiB")
				b.ReportMetric(heap/(1<<20), "heap-MiB")
				b.ReportMetric(heap/float64(tc.symbols), "heap-B/symbol")
				b.ReportMetric(float64(st.Capped), "capped")
				runtime.KeepAlive(s)
			}
		})
	}
}

// fillDay publishes to s a day of one trade a minute for n symbols, the
// last 15 minutes of it one a second, and returns the symbols.
func fillDay(s *bars.Store, n int) []*snapshot.Symbol {
	syms := make([]*snapshot.Symbol, n)
	next := &snapshot.State{Mask: 1<<codec.FieldTS | 1<<codec.FieldLast | 1<<codec.FieldLastSize}
	next.Values[codec.FieldLastSize] = 1
	c := snapshot.Change{Next: next, Carried: next.Mask, Mask: next.Mask}
	for i := range n {
		c.Symbol = &snapshot.Symbol{ID: uint32(i + 1), Name: fmt.Sprint("S", i)}
		syms[i] = c.Symbol
		next.Seq = 0
		publish := func(ts int64) {
			next.Seq++
			next.Values[codec.FieldTS] = float64(ts)
			next.Values[codec.FieldLast] = 100 + float64(next.Seq%17)
			s.Publish(c)
		}
		for m := range int64(1440 - 15) {
			publish(t0 + m*60*sec)
		}
		for k := range int64(900) {
			publish(t0 + (1440-15)*60*sec + k*sec)
		}
	}
	return syms
}

// BenchmarkSave saves the bars of 500 symbols with a full day of the
// default intervals, as a checkpoint does: "mark" is the part done while
// ingest is paused (bars.Store.Mark of every symbol), "copy" the part done
// after (Copy of every mark).
func BenchmarkSave(b *testing.B) {
	s, err := bars.New(bars.Config{})
	if err != nil {
		b.Fatal(err)
	}
	syms := fillDay(s, 500)
	marks := make([]bars.Mark, len(syms))
	b.Run("mark", func(b *testing.B) {
		for b.Loop() {
			for i, sym := range syms {
				var ok bool
				if marks[i], ok = s.Mark(sym); !ok {
					b.Fatal("no bars")
				}
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		for b.Loop() {
			for _, m := range marks {
				s.Copy(m)
			}
		}
	})
}

package bars_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// TestSaveRestore saves a store's bars and restores them into stores of
// other settings, then goes on with the same log in both: the restored
// store ends with the bars of one that read the whole log, within its
// own intervals, retention and memory.
func TestSaveRestore(t *testing.T) {
	log := randomLog(7, 6000, 6)
	half := len(log) / 2
	tests := []struct {
		name     string
		spec     string // of the restored store
		maxBytes int64
	}{
		{"same settings", "1s:30s,1m:1h", bars.DefaultMaxBytes},
		{"shorter retention", "1s:10s,1m:5m", bars.DefaultMaxBytes},
		{"an interval less, one more", "5s:2m,1m:1h", bars.DefaultMaxBytes},
		{"a smaller memory bound", "1s:30s,1m:1h", 100 * bars.BytesPerBar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := newPipeline(t, "1s:30s,1m:1h", bars.DefaultMaxBytes)
			saved.apply(t, log[:half]...)
			restored := newPipeline(t, tt.spec, tt.maxBytes)
			for _, name := range saved.ref.Symbols() {
				sym := saved.snap.Lookup([]byte(name))
				st := sym.Load()
				if err := restored.snap.Restore([]byte(name), *st); err != nil {
					t.Fatal(err)
				}
				m, ok := saved.bars.Mark(sym)
				if !ok {
					continue
				}
				restored.bars.Restore(restored.snap.Lookup([]byte(name)), st.Seq, saved.bars.Lens(), saved.bars.Copy(m))
			}
			// The reference of the restored store reads the whole log.
			for _, u := range log[:half] {
				restored.ref.Apply(u)
			}
			restored.apply(t, log[half:]...)
			if st := restored.bars.Stats(); st.Bytes > tt.maxBytes {
				t.Fatalf("restored rings hold %d bytes, over the bound %d", st.Bytes, tt.maxBytes)
			}
			lens := saved.bars.Lens()
			for _, name := range restored.ref.Symbols() {
				for i, iv := range restored.bars.Intervals() {
					got, seq := restored.history(name, i)
					want := restored.ref.Bars(name, i)
					if !slices.Contains(lens, iv.Len) && len(got) > 0 {
						// No saved bars: those of the second half, the
						// first of which lacks the first half's part.
						want = slices.DeleteFunc(want, func(b bars.Bar) bool { return b.T <= got[0].T })
						got = got[1:]
					}
					if tt.maxBytes < bars.DefaultMaxBytes && len(got) <= len(want) {
						want = want[len(want)-len(got):] // fewer where the bound left less room
					}
					if !slices.Equal(got, want) {
						t.Fatalf("%s %s: got %d bars, want %d:\n got %v\nwant %v", name, iv.Name, len(got), len(want), got, want)
					}
					if len(got) > 0 && seq != restored.snap.Lookup([]byte(name)).Load().Seq {
						t.Fatalf("%s: bars at seq %d, the symbol at %d", name, seq, restored.snap.Lookup([]byte(name)).Load().Seq)
					}
				}
			}
		})
	}
}

// TestRestoreKeepsTradeMode restores a symbol that traded but whose bars
// are all mid-price ones: its quotes make no bar after the restart.
func TestRestoreKeepsTradeMode(t *testing.T) {
	p := newPipeline(t, "1s:1h", bars.DefaultMaxBytes)
	sym := &snapshot.Symbol{ID: 1, Name: "A"}
	mid := bar(t0, 2, 2, 2, 2, 0, 1)
	p.bars.Restore(sym, 5, []time.Duration{time.Second}, bars.Series{Traded: true, Bars: [][]bars.Bar{{mid}}})
	next := &snapshot.State{Seq: 6, Mask: 1<<codec.FieldTS | 1<<codec.FieldBid | 1<<codec.FieldAsk}
	next.Values[codec.FieldTS] = float64(t0 + 2*sec)
	next.Values[codec.FieldBid], next.Values[codec.FieldAsk] = 1, 3
	p.bars.Publish(snapshot.Change{Symbol: sym, Next: next, Carried: next.Mask, Mask: next.Mask})
	if got, seq := p.bars.AppendHistory(nil, sym, 0, 0, 0); !slices.Equal(got, []bars.Bar{mid}) || seq != 6 {
		t.Fatalf("got %v at seq %d, want only the restored bar, at seq 6", got, seq)
	}
}

// TestMarkCopy marks a store's bars at a cut, goes on applying the log,
// copies the marked bars only then (as a checkpoint does once ingest has
// resumed), and restores them into a second store that applies the same
// records after the cut: both end with the same bars, however many bars
// the first store pushed out of its rings between the mark and the copy.
func TestMarkCopy(t *testing.T) {
	log := randomLog(9, 5000, 3)
	const cut, after = 2000, 50
	for _, tt := range []struct {
		spec    string
		between int
	}{
		{"1s:1h,1m:24h", 0}, {"1s:1h,1m:24h", 1}, {"1s:1h,1m:24h", 10}, {"1s:1h,1m:24h", 300},
		{"1s:20s,1m:5m", 10}, {"1s:20s,1m:5m", 300}, {"1s:20s,1m:5m", 2000},
	} {
		t.Run(fmt.Sprint(tt.spec, ", ", tt.between, " records between the mark and the copy"), func(t *testing.T) {
			spec, between := tt.spec, tt.between
			orig := newPipeline(t, spec, bars.DefaultMaxBytes)
			orig.apply(t, log[:cut]...)
			type marked struct {
				name string
				st   snapshot.State
				m    bars.Mark
			}
			var marks []marked
			for _, name := range orig.ref.Symbols() {
				sym := orig.snap.Lookup([]byte(name))
				if m, ok := orig.bars.Mark(sym); ok {
					marks = append(marks, marked{name, *sym.Load(), m})
				}
			}
			orig.apply(t, log[cut:cut+between]...)
			restored := newPipeline(t, spec, bars.DefaultMaxBytes)
			for _, mk := range marks {
				if err := restored.snap.Restore([]byte(mk.name), mk.st); err != nil {
					t.Fatal(err)
				}
				restored.bars.Restore(restored.snap.Lookup([]byte(mk.name)), mk.st.Seq, orig.bars.Lens(), orig.bars.Copy(mk.m))
			}
			orig.apply(t, log[cut+between:cut+between+after]...)
			restored.apply(t, log[cut:cut+between+after]...)
			for _, name := range orig.ref.Symbols() {
				for i := range 2 {
					want, _ := orig.history(name, i)
					if got, _ := restored.history(name, i); !slices.Equal(got, want) {
						t.Fatalf("%s %d: restored %d bars, the original %d:\n got %v\nwant %v", name, i, len(got), len(want), got, want)
					}
				}
			}
		})
	}
}

package snapshot

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tickstream/tickstream/codec"
)

func update(sym string, kv ...float64) *codec.Update {
	u := &codec.Update{Sym: []byte(sym)}
	for i := 0; i+1 < len(kv); i += 2 {
		u.Set(int(kv[i]), kv[i+1])
	}
	return u
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		updates []*codec.Update
		seq     uint64
		changed []codec.FieldMask // per update; 0 = no change
		state   map[int]float64
	}{
		{"first update", []*codec.Update{update("A", codec.FieldBid, 1, codec.FieldAsk, 2)}, 1,
			[]codec.FieldMask{1<<codec.FieldBid | 1<<codec.FieldAsk}, map[int]float64{codec.FieldBid: 1, codec.FieldAsk: 2}},
		{"only changed fields", []*codec.Update{update("A", codec.FieldBid, 1, codec.FieldAsk, 2), update("A", codec.FieldBid, 1, codec.FieldAsk, 3)}, 2,
			[]codec.FieldMask{1<<codec.FieldBid | 1<<codec.FieldAsk, 1 << codec.FieldAsk}, map[int]float64{codec.FieldBid: 1, codec.FieldAsk: 3}},
		{"no change keeps seq", []*codec.Update{update("A", codec.FieldBid, 1), update("A", codec.FieldBid, 1), update("A")}, 1,
			[]codec.FieldMask{1 << codec.FieldBid, 0, 0}, map[int]float64{codec.FieldBid: 1}},
		{"partial updates keep others", []*codec.Update{update("A", codec.FieldBid, 1, codec.FieldVolume, 10), update("A", codec.FieldLast, 5)}, 2,
			[]codec.FieldMask{1<<codec.FieldBid | 1<<codec.FieldVolume, 1 << codec.FieldLast}, map[int]float64{codec.FieldBid: 1, codec.FieldVolume: 10, codec.FieldLast: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []Change
			s := New(WithObserver(func(c Change) { seen = append(seen, c) }))
			for i, u := range tt.updates {
				ch, ok := s.Apply(u)
				if ok != (tt.changed[i] != 0) || ch.Mask != tt.changed[i] {
					t.Fatalf("update %d: changed %b ok %v, want %b", i, ch.Mask, ok, tt.changed[i])
				}
				if ok && (ch.Next.Seq != ch.Prev.Seq+1 || ch.Prev.Diff(ch.Next) != ch.Mask) {
					t.Fatalf("update %d: bad change %+v", i, ch)
				}
			}
			st := s.Lookup([]byte("A")).Load()
			if st.Seq != tt.seq {
				t.Fatalf("seq %d, want %d", st.Seq, tt.seq)
			}
			var mask codec.FieldMask
			for f, v := range tt.state {
				mask |= 1 << uint(f)
				if st.Values[f] != v {
					t.Errorf("%s = %v, want %v", codec.FieldNames[f], st.Values[f], v)
				}
			}
			if st.Mask != mask {
				t.Errorf("mask %b, want %b", st.Mask, mask)
			}
			if len(seen) != int(tt.seq) {
				t.Errorf("observer saw %d changes, want %d", len(seen), tt.seq)
			}
		})
	}
}

func TestSymbolsAndNames(t *testing.T) {
	s := New(WithMaxSymbols(3))
	for _, n := range []string{"MSFT", "AAPL", "AMD"} {
		s.Apply(update(n, codec.FieldBid, 1))
	}
	if s.Symbol([]byte("NEW")) != nil {
		t.Fatal("store grew past its bound")
	}
	if a, b := s.Symbol([]byte("AAPL")), s.Lookup([]byte("AAPL")); a == nil || a != b || s.ByID(a.ID) != a {
		t.Fatal("lookup by name and id disagree")
	}
	names, total := s.Names("A", 1)
	if total != 2 || len(names) != 1 || names[0] != "AAPL" {
		t.Fatalf("Names = %v, %d", names, total)
	}
}

// TestConcurrentReaders applies from several writers while readers load:
// -race checks that readers never see a torn state.
func TestConcurrentReaders(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				sym := fmt.Sprintf("S%d", i%50)
				s.Apply(update(sym, codec.FieldBid, float64(i), codec.FieldAsk, float64(i)+1))
			}
		}()
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Range(func(sym *Symbol) bool {
				if st := sym.Load(); st.Seq > 0 && st.Values[codec.FieldAsk] != st.Values[codec.FieldBid]+1 {
					t.Errorf("torn state %+v", st)
				}
				return true
			})
		}
	}()
	wg.Wait()
	close(stop)
	if s.Len() != 50 {
		t.Fatalf("%d symbols", s.Len())
	}
}

func BenchmarkApply(b *testing.B) {
	s := New()
	us := make([]*codec.Update, 500)
	for i := range us {
		us[i] = update(fmt.Sprintf("SYM%d", i), codec.FieldTS, 1, codec.FieldBid, 1, codec.FieldAsk, 2)
		s.Apply(us[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u := us[i%len(us)]
		u.Values[codec.FieldTS]++
		u.Values[codec.FieldBid] += 0.01
		s.Apply(u)
		i++
	}
}

package snapshot

import (
	"errors"
	"fmt"
	"slices"
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
			var seen changes
			s := New()
			s.SetObserver(&seen)
			for i, u := range tt.updates {
				before := len(seen)
				if err := s.Apply(u); err != nil {
					t.Fatalf("update %d: %v", i, err)
				}
				var ch Change
				ok := len(seen) > before
				if ok {
					ch = seen[len(seen)-1]
				}
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

// TestApplyCarried checks that a change names every field its update
// carried, changed or not: a trade at the last trade's price is a trade.
func TestApplyCarried(t *testing.T) {
	var seen changes
	s := New()
	s.SetObserver(&seen)
	for _, u := range []*codec.Update{
		update("A", codec.FieldTS, 1, codec.FieldLast, 5, codec.FieldLastSize, 10),
		update("A", codec.FieldTS, 2, codec.FieldLast, 5, codec.FieldLastSize, 10),
		update("A", codec.FieldTS, 2, codec.FieldLast, 5, codec.FieldLastSize, 10), // a duplicate: no change
	} {
		if err := s.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("observer saw %d changes, want 2", len(seen))
	}
	trade := codec.FieldMask(1<<codec.FieldTS | 1<<codec.FieldLast | 1<<codec.FieldLastSize)
	if ch := seen[1]; ch.Mask != 1<<codec.FieldTS || ch.Carried != trade {
		t.Fatalf("second change: mask %b carried %b, want %b and %b", ch.Mask, ch.Carried, 1<<codec.FieldTS, trade)
	}
}

// changes records what the store tells its observer.
type changes []Change

func (c *changes) Publish(ch Change) { *c = append(*c, ch) }

func TestFeedBound(t *testing.T) {
	s := New(WithMaxSymbols(3))
	for _, n := range []string{"MSFT", "AAPL", "AMD"} {
		if err := s.Apply(update(n, codec.FieldBid, 1)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if err := s.Apply(update("NEW", codec.FieldBid, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth symbol: err %v, want ErrFull", err)
	}
	if err := s.Restore([]byte("NEW"), State{Seq: 1}); !errors.Is(err, ErrFull) {
		t.Fatalf("restoring a fourth symbol: err %v, want ErrFull", err)
	}
	if err := s.Apply(update("AAPL", codec.FieldBid, 2)); err != nil || s.Lookup([]byte("AAPL")).Load().Seq != 2 {
		t.Fatalf("a known symbol of a full store: err %v", err)
	}
	if s.Len() != 3 || s.Lookup([]byte("NEW")) != nil {
		t.Fatalf("store grew past its bound: %d symbols", s.Len())
	}
	names, total := s.Names("A", 1)
	if total != 2 || len(names) != 1 || names[0] != "AAPL" {
		t.Fatalf("Names = %v, %d", names, total)
	}
}

// TestReserve follows reserved names through their life: held apart from
// the feed's symbols, shared by their holders, bounded, taken over by the
// feed with the same pointer and id, and forgotten at the last release,
// their ids reused.
func TestReserve(t *testing.T) {
	s := New(WithMaxSymbols(2), WithMaxReserved(3))
	s.Apply(update("FEED", codec.FieldBid, 1))
	feed := s.Lookup([]byte("FEED"))

	if sym, reserved, err := s.Reserve([]byte("FEED")); sym != feed || reserved || err != nil {
		t.Fatalf("Reserve of a feed symbol: %v %v %v", sym, reserved, err)
	}
	a, reserved, err := s.Reserve([]byte("A"))
	if !reserved || err != nil || a.Load().Seq != 0 || a.ID == feed.ID {
		t.Fatalf("Reserve A: %+v %v %v", a, reserved, err)
	}
	if again, _, _ := s.Reserve([]byte("A")); again != a {
		t.Fatal("a second holder of A got another symbol")
	}
	b, _, _ := s.Reserve([]byte("B"))
	c, _, _ := s.Reserve([]byte("C"))
	if _, _, err := s.Reserve([]byte("D")); !errors.Is(err, ErrReservedFull) {
		t.Fatalf("a fourth reserved name: err %v, want ErrReservedFull", err)
	}
	if s.Len() != 1 || s.Lookup([]byte("A")) != nil || s.Reserved() != 3 {
		t.Fatalf("reserved names in the feed's table: Len %d, Reserved %d", s.Len(), s.Reserved())
	}
	if names, total := s.Names("", 0); total != 1 || names[0] != "FEED" {
		t.Fatalf("Names lists reserved names: %v", names)
	}

	// The feed takes A over: same symbol, same id, and its room is freed.
	if err := s.Apply(update("A", codec.FieldBid, 5)); err != nil {
		t.Fatalf("first record of A: %v", err)
	}
	if s.Lookup([]byte("A")) != a || a.Load().Seq != 1 || s.Len() != 2 || s.Reserved() != 2 {
		t.Fatalf("A not taken over in place: Len %d Reserved %d seq %d", s.Len(), s.Reserved(), a.Load().Seq)
	}
	s.Release(a) // releasing a symbol the feed took over is harmless
	s.Release(a)
	// The feed is full now: a reserved name's first record is refused and
	// the name stays reserved.
	if err := s.Apply(update("B", codec.FieldBid, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("B into a full feed: %v", err)
	}

	// The last release forgets a name, and a new name takes its id.
	s.Release(b)
	s.Release(c)
	if s.Reserved() != 0 {
		t.Fatalf("Reserved %d after every release", s.Reserved())
	}
	d, _, _ := s.Reserve([]byte("D"))
	e, _, _ := s.Reserve([]byte("E"))
	if ids := []uint32{d.ID, e.ID}; !slices.Contains(ids, b.ID) || !slices.Contains(ids, c.ID) {
		t.Fatalf("D and E got ids %v, not the freed %d and %d", ids, b.ID, c.ID)
	}
	if again, _, _ := s.Reserve([]byte("B")); again == b || again.ID == d.ID || again.ID == e.ID {
		t.Fatalf("B after its last release: %p id %d (was %p)", again, again.ID, b)
	}
	if s.nextID > 6 {
		t.Fatalf("next id %d: ids not reused", s.nextID)
	}
}

// TestReserveRacesFeed reserves and releases names while the feed creates
// them: every holder of a name must end up on the feed's symbol, never on
// a copy the feed does not update (run with -race). A name released by
// all its holders before the feed sent it is forgotten; a later holder
// gets a new symbol, which the feed takes over in turn.
func TestReserveRacesFeed(t *testing.T) {
	s := New()
	const names = 200
	held := make([]map[int]*Symbol, 4) // by name index, the symbols kept
	var wg sync.WaitGroup
	for w := range held {
		held[w] = map[int]*Symbol{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				sym, reserved, err := s.Reserve(fmt.Appendf(nil, "R%d", i))
				if err != nil {
					t.Error(err)
					return
				}
				if reserved && i%2 == 0 {
					s.Release(sym)
					continue
				}
				held[w][i] = sym
			}
		}()
	}
	for i := range names {
		s.Apply(update(fmt.Sprintf("R%d", i), codec.FieldBid, 1))
	}
	wg.Wait()
	for w := range held {
		for i, sym := range held[w] {
			if feed := s.Lookup(fmt.Appendf(nil, "R%d", i)); sym != feed {
				t.Fatalf("subscriber %d of R%d holds %p, the feed updates %p", w, i, sym, feed)
			}
		}
	}
	if s.Reserved() != 0 || s.Len() != names {
		t.Fatalf("Reserved %d, Len %d", s.Reserved(), s.Len())
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

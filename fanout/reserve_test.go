package fanout

import (
	"fmt"
	"testing"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// madeUp returns n symbol names the feed never sends, distinct per prefix.
func madeUp(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return names
}

func quote(sym string, bid float64) *codec.Update {
	u := &codec.Update{Sym: []byte(sym)}
	u.Set(codec.FieldTS, 1)
	u.Set(codec.FieldBid, bid)
	return u
}

// newBoundedHub is newTestHub with a store bounded as the server's is.
func newBoundedHub(t *testing.T, cfg Config, opts ...snapshot.Option) (*snapshot.Store, *Hub) {
	store := snapshot.New(opts...)
	return store, startHub(t, store, cfg)
}

// TestSubscriptionsLeaveTheFeedAlone is the first report of issue 10: one
// client's SUB of 600 made-up names filled a table of 1000 symbols that
// already held the feed's 500, and the feed's next new symbol was dropped
// without a trace. Now the names are accepted, the feed's symbols still
// get in, and a name that gets data later is delivered under its sid.
func TestSubscriptionsLeaveTheFeedAlone(t *testing.T) {
	store, hub := newBoundedHub(t, Config{}, snapshot.WithMaxSymbols(1000))
	for _, sym := range madeUp("FEED", 500) {
		store.Apply(quote(sym, 1))
	}

	hog := newFakeConn(t, codec.Binary)
	hc := hub.Register(hog, ClientOptions{Format: codec.Binary})
	hog.send(hc, codec.Binary.AppendSub(nil, 1, madeUp("FAKE", 600), nil))
	waiter := newFakeConn(t, codec.JSON)
	wc := hub.Register(waiter, ClientOptions{Format: codec.JSON})
	waiter.send(wc, codec.JSON.AppendSub(nil, 1, []string{"LATE"}, nil))
	waitFor(t, "both ACKs", func() bool {
		hog.mu.Lock()
		defer hog.mu.Unlock()
		waiter.mu.Lock()
		defer waiter.mu.Unlock()
		return hog.acks == 1 && waiter.acks == 1
	})
	hog.mu.Lock()
	if len(hog.errors) > 0 || len(hog.sids) != 600 {
		t.Errorf("SUB of 600 names: %d acknowledged, %d ERRORs (first: %d %q, %d symbols)", len(hog.sids),
			len(hog.errors), hog.errors[0].Code, hog.errors[0].Text, len(hog.errors[0].Syms))
	}
	hog.mu.Unlock()
	if n := store.Len(); n != 500 {
		t.Errorf("subscriptions grew the feed's table to %d symbols", n)
	}

	// The feed's new symbols get in, and the one a client waits for
	// reaches it under the sid of its ACK.
	store.Apply(quote("FRESH", 2))
	store.Apply(quote("LATE", 3))
	if store.Lookup([]byte("FRESH")) == nil || store.Lookup([]byte("LATE")) == nil {
		t.Fatalf("the feed's new symbols were dropped: FRESH %v, LATE %v",
			store.Lookup([]byte("FRESH")), store.Lookup([]byte("LATE")))
	}
	waitFor(t, "LATE's first DELTA", func() bool {
		e, _ := waiter.book.Entry("LATE")
		return e.Seq == 1 && e.Values[codec.FieldBid] == 3
	})
	if sid := waiter.ackedSIDs()["LATE"]; sid != store.Lookup([]byte("LATE")).ID {
		t.Errorf("LATE acknowledged as sid %d, delivered as %d", sid, store.Lookup([]byte("LATE")).ID)
	}
	hog.checkContract(t)
	waiter.checkContract(t)
}

// TestChurnLeavesTheStoreAlone is the second report of issue 10: SUB then
// UNSUB of ever new names grew the store by every name. Now the feed's
// table does not move, and past the first rounds (which fill what the
// store keeps of released names) neither does the topic table.
func TestChurnLeavesTheStoreAlone(t *testing.T) {
	store, hub := newBoundedHub(t, Config{})
	for _, sym := range madeUp("FEED", 500) {
		store.Apply(quote(sym, 1))
	}
	churner := hub.Register(newFakeConn(t, codec.Binary), ClientOptions{Format: codec.Binary})
	churn := func(round int) {
		names := madeUp(fmt.Sprintf("C%dX", round), 1000)
		churner.HandleFrame(codec.Binary.AppendSub(nil, uint64(round), names, nil))
		churner.HandleFrame(codec.Binary.AppendUnsub(nil, uint64(round), names))
	}
	for round := range 10 {
		churn(round)
	}
	symbols, topics := store.Len(), len(*hub.topics.Load())
	for round := 10; round < 30; round++ {
		churn(round)
	}
	if store.Len() != symbols || store.Len() != 500 {
		t.Errorf("churn of 20 000 names: store of %d symbols, then %d (want 500)", symbols, store.Len())
	}
	if n := len(*hub.topics.Load()); n != topics {
		t.Errorf("churn of 20 000 names grew the topic table from %d to %d entries", topics, n)
	}
	// The churner remembers its last 1000 names (its --max-reserved-per-conn)
	// so that a re-SUB would get the same sid; its close releases them.
	if n := store.Reserved(); n != 1000 {
		t.Errorf("%d names reserved after the churn, want the churner's last 1000", n)
	}
	churner.Close(codec.CloseNormal, "")
	if n := store.Reserved(); n != 0 {
		t.Errorf("%d names still reserved after the churner closed", n)
	}
	t.Logf("after churn: %d symbols, topic table of %d entries", store.Len(), topics)
}

// TestReservedNames checks the bounds of names without data and their
// life: 413 past the connection's bound, 503 past the store's, remembered
// after UNSUB so that a re-SUB gets the same sid, released at close, and
// room again once the feed sends data for them.
func TestReservedNames(t *testing.T) {
	store, hub := newBoundedHub(t, Config{MaxReserved: 3}, snapshot.WithMaxReserved(4))
	store.Apply(quote("FEED", 1))

	a := newFakeConn(t, codec.Binary)
	ac := hub.Register(a, ClientOptions{Format: codec.Binary})
	a.send(ac, codec.Binary.AppendSub(nil, 1, []string{"FEED", "A1", "A2", "A3", "A4"}, nil))
	b := newFakeConn(t, codec.Binary)
	bc := hub.Register(b, ClientOptions{Format: codec.Binary})
	b.send(bc, codec.Binary.AppendSub(nil, 7, []string{"A1", "B1", "B2"}, nil))

	errorsOf := func(fc *fakeConn) []codec.Message {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return append([]codec.Message(nil), fc.errors...)
	}
	waitFor(t, "the ERRORs", func() bool { return len(errorsOf(a)) == 1 && len(errorsOf(b)) == 1 })
	if e := errorsOf(a)[0]; e.Code != 413 || len(e.Syms) != 1 || e.Syms[0] != "A4" {
		t.Errorf("A's fourth name without data: ERROR %d %q %v, want 413 for A4", e.Code, e.Text, e.Syms)
	}
	// A1 is shared with A and B1 makes four names: B2 is one too many.
	if e := errorsOf(b)[0]; e.Code != 503 || len(e.Syms) != 1 || e.Syms[0] != "B2" || e.ID != 7 {
		t.Errorf("a fifth name in the store: ERROR %d %q %v, want 503 for B2", e.Code, e.Text, e.Syms)
	}
	if n := store.Reserved(); n != 4 {
		t.Fatalf("%d names reserved, want 4", n)
	}

	// A re-SUB after an UNSUB gets the same sid back.
	sid := a.ackedSIDs()["A2"]
	a.send(ac, codec.Binary.AppendUnsub(nil, 2, []string{"A2"}))
	a.send(ac, codec.Binary.AppendSub(nil, 3, []string{"A2"}, nil))
	waitFor(t, "the re-SUB's ACK", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.acks == 2
	})
	if again := a.ackedSIDs()["A2"]; again != sid {
		t.Errorf("A2 re-subscribed as sid %d, was %d", again, sid)
	}

	// Once the feed sends A3, it no longer counts as without data: A has
	// room for A4 now.
	store.Apply(quote("A3", 4))
	a.send(ac, codec.Binary.AppendSub(nil, 4, []string{"A4"}, nil))
	waitFor(t, "A4's ACK", func() bool { _, ok := a.ackedSIDs()["A4"]; return ok })
	if n := len(errorsOf(a)); n != 1 {
		t.Errorf("A4 refused again: %+v", errorsOf(a)[1:])
	}

	a.checkContract(t)
	b.checkContract(t)

	// Close releases the rest; A1, held by both, only at the second.
	ac.Close(codec.CloseNormal, "")
	if n := store.Reserved(); n != 2 {
		t.Errorf("%d names reserved after A closed, want 2 (A1, B1)", n)
	}
	bc.Close(codec.CloseNormal, "")
	if n := store.Reserved(); n != 0 || store.Len() != 2 {
		t.Errorf("after both closed: %d names reserved, %d feed symbols (want 0, 2)", n, store.Len())
	}
}

// TestHeldNamesAreForgottenOldestFirst: past its bound of names without
// data, a connection forgets the oldest one it unsubscribed, which the
// store then releases, and keeps the others' sids.
func TestHeldNamesAreForgottenOldestFirst(t *testing.T) {
	store, hub := newBoundedHub(t, Config{MaxReserved: 3})
	fc := newFakeConn(t, codec.Binary)
	c := hub.Register(fc, ClientOptions{Format: codec.Binary})
	fc.send(c, codec.Binary.AppendSub(nil, 1, []string{"X1", "X2", "X3"}, nil))
	waitFor(t, "the first ACK", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return fc.acks == 1
	})
	first := fc.ackedSIDs()
	fc.send(c, codec.Binary.AppendUnsub(nil, 2, []string{"X2", "X1", "X3"}))
	fc.send(c, codec.Binary.AppendSub(nil, 3, []string{"X4"}, nil))
	fc.send(c, codec.Binary.AppendSub(nil, 4, []string{"X1", "X3"}, nil))
	waitFor(t, "three ACKs", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return fc.acks == 3
	})
	fc.mu.Lock()
	errs := fc.errors
	fc.mu.Unlock()
	if len(errs) != 0 {
		t.Fatalf("ERRORs %+v", errs)
	}
	// X2, the oldest unsubscribed, was forgotten (and released) for X4;
	// X1 and X3 kept their sids.
	if n := store.Reserved(); n != 3 {
		t.Errorf("%d names reserved, want 3 (X1, X3, X4)", n)
	}
	now := fc.ackedSIDs()
	for _, sym := range []string{"X1", "X3"} {
		if now[sym] != first[sym] {
			t.Errorf("%s re-subscribed as sid %d, was %d", sym, now[sym], first[sym])
		}
	}
	// X5 finds the connection's three names all subscribed.
	fc.send(c, codec.Binary.AppendSub(nil, 5, []string{"X5"}, nil))
	waitFor(t, "the ERROR for X5", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.errors) == 1
	})
	if e := fc.errors[0]; e.Code != 413 || e.Syms[0] != "X5" {
		t.Errorf("X5: ERROR %d %q %v, want 413", e.Code, e.Text, e.Syms)
	}
	if n := store.Reserved(); n != 3 {
		t.Errorf("%d names reserved, want 3", n)
	}
	fc.checkContract(t)
}

// TestSIDsSurviveOthersChurn: a connection's symbols without data keep
// their sids across its UNSUB and re-SUB however many names other
// connections churn meanwhile, and none of its sids comes to name another
// symbol, as the contract promises for the life of the connection.
func TestSIDsSurviveOthersChurn(t *testing.T) {
	store, hub := newBoundedHub(t, Config{})
	quiet := newFakeConn(t, codec.Binary)
	qc := hub.Register(quiet, ClientOptions{Format: codec.Binary})
	quiet.send(qc, codec.Binary.AppendSub(nil, 1, []string{"IPO1", "IPO2"}, nil))
	quiet.send(qc, codec.Binary.AppendUnsub(nil, 2, []string{"IPO1", "IPO2"}))
	waitFor(t, "the ACK", func() bool { return len(quiet.ackedSIDs()) == 2 })
	before := quiet.ackedSIDs()

	churner := hub.Register(newFakeConn(t, codec.Binary), ClientOptions{Format: codec.Binary})
	for round := range 10 {
		names := madeUp(fmt.Sprintf("C%dX", round), 1000)
		churner.HandleFrame(codec.Binary.AppendSub(nil, uint64(round), names, nil))
		churner.HandleFrame(codec.Binary.AppendUnsub(nil, uint64(round), names))
	}
	churner.Close(codec.CloseNormal, "")

	quiet.send(qc, codec.Binary.AppendSub(nil, 3, []string{"IPO2", "NEW"}, nil))
	store.Apply(quote("IPO2", 9))
	waitFor(t, "IPO2's DELTA", func() bool { return quiet.seq("IPO2") == 1 })
	after := quiet.ackedSIDs()
	if after["IPO2"] != before["IPO2"] {
		t.Errorf("IPO2 re-subscribed as sid %d after 10 000 names of churn, was %d", after["IPO2"], before["IPO2"])
	}
	if after["NEW"] == before["IPO1"] || after["NEW"] == before["IPO2"] {
		t.Errorf("NEW got sid %d, which already names IPO1 (%d) or IPO2 (%d) on this connection",
			after["NEW"], before["IPO1"], before["IPO2"])
	}
	quiet.checkContract(t)
}

package snapshot_test

import (
	"fmt"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// printer is an observer that prints each change.
type printer struct{}

func (printer) Publish(ch snapshot.Change) {
	fmt.Printf("seq %d, changed bid %v ask %v\n", ch.Next.Seq, ch.Mask.Has(codec.FieldBid), ch.Mask.Has(codec.FieldAsk))
}

// Applying updates: each one that changes something moves the symbol's seq
// by one and tells the observer exactly the fields that changed; one that
// changes nothing is not a change at all.
func ExampleStore_Apply() {
	store := snapshot.New()
	store.SetObserver(printer{})
	quote := func(bid, ask float64) *codec.Update {
		u := &codec.Update{Sym: []byte("AAPL")}
		u.Set(codec.FieldBid, bid)
		u.Set(codec.FieldAsk, ask)
		return u
	}
	for _, u := range []*codec.Update{quote(187.23, 187.25), quote(187.24, 187.25), quote(187.24, 187.25)} {
		store.Apply(u)
	}
	st := store.Lookup([]byte("AAPL")).Load()
	fmt.Println("state:", st.Seq, st.Values[codec.FieldBid], st.Values[codec.FieldAsk])
	// Output:
	// seq 1, changed bid true ask true
	// seq 2, changed bid true ask false
	// state: 2 187.24 187.25
}

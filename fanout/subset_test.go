package fanout

import (
	"slices"
	"testing"

	"github.com/tickstream/tickstream/snapshot"
)

func TestSubSet(t *testing.T) {
	store := snapshot.New()
	sub := func(name string) *subscription {
		sym, _, err := store.Reserve([]byte(name))
		if err != nil {
			t.Fatal(err)
		}
		return &subscription{sym: sym}
	}
	var ss subSet
	for _, name := range []string{"MSFT", "AAPL", "TSLA", "BRK.B", "A"} {
		ss.put(sub(name))
	}
	names := func() (out []string) {
		for _, s := range ss {
			out = append(out, s.sym.Name)
		}
		return out
	}
	if got, want := names(), []string{"A", "AAPL", "BRK.B", "MSFT", "TSLA"}; !slices.Equal(got, want) {
		t.Fatalf("set %v, want %v", got, want)
	}
	tests := []struct {
		name string
		in   bool
	}{{"A", true}, {"AAPL", true}, {"TSLA", true}, {"AA", false}, {"ZZZ", false}, {"", false}}
	for _, tt := range tests {
		if s := ss.get(tt.name); (s != nil) != tt.in || s != nil && s.sym.Name != tt.name {
			t.Errorf("get(%q) = %v, want in the set: %v", tt.name, s, tt.in)
		}
	}
	ss.remove("AAPL")
	ss.remove("NOPE")
	ss.remove("TSLA")
	if got, want := names(), []string{"A", "BRK.B", "MSFT"}; !slices.Equal(got, want) {
		t.Fatalf("after removes %v, want %v", got, want)
	}
	key := []byte("MSFT")
	if n := testing.AllocsPerRun(100, func() { _ = ss.get(string(key)) }); n != 0 {
		t.Errorf("get of a []byte name allocates %v times", n)
	}
}

// Package snapshot keeps the latest state of every symbol, with its version
// (seq), and turns each applied update into the change it made.
//
// The store has a single writer per symbol (updates of one symbol are
// serialized by the symbol's lock) and any number of readers. A symbol's
// state is an immutable *State replaced atomically on each change, so a
// reader never blocks the writer and always sees a consistent version.
package snapshot

import (
	"hash/maphash"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tickstream/tickstream/codec"
)

// State is one immutable version of a symbol's state.
type State struct {
	// Seq is the version: 0 before any data, then one more for every
	// applied update that changed the state.
	Seq uint64
	// Mask holds the fields that have a value.
	Mask codec.FieldMask
	// Values holds the value of each field in Mask.
	Values [codec.NumFields]float64
}

// Diff returns the fields whose value differs between s and next, which
// must be a later version of the same symbol (a field never loses its value).
func (s *State) Diff(next *State) codec.FieldMask {
	changed := next.Mask &^ s.Mask
	both := next.Mask & s.Mask
	for f := 0; f < codec.NumFields; f++ {
		if both.Has(f) && s.Values[f] != next.Values[f] {
			changed |= 1 << uint(f)
		}
	}
	return changed
}

var emptyState = &State{}

// Symbol is one symbol of the store.
type Symbol struct {
	// ID is the symbol's numeric id, unique in the store and stable for
	// the store's life; the protocol uses it as the sid.
	ID uint32
	// Name is the symbol itself.
	Name string

	mu    sync.Mutex // serializes the writers of this symbol
	state atomic.Pointer[State]
}

// Load returns the symbol's current state; it never blocks.
func (s *Symbol) Load() *State { return s.state.Load() }

// Change is what one applied update did to a symbol: Prev and Next are
// consecutive versions and Mask the fields whose value changed.
type Change struct {
	Symbol *Symbol
	Prev   *State
	Next   *State
	Mask   codec.FieldMask
}

const shardCount = 64

type shard struct {
	mu   sync.Mutex                         // serializes inserts into this shard
	syms atomic.Pointer[map[string]*Symbol] // replaced, never mutated
}

// Store holds every symbol's state. The zero value is not usable: call New.
type Store struct {
	seed     maphash.Seed
	shards   [shardCount]shard
	mu       sync.Mutex // serializes symbol creation across shards (ids)
	byID     atomic.Pointer[[]*Symbol]
	onChange func(Change)
	max      int
}

// Option configures a Store.
type Option func(*Store)

// WithObserver has the store call fn with every change, in seq order per
// symbol, while the symbol's writer lock is held. fn must not block: it is
// how the fanout engine hears of changes.
func WithObserver(fn func(Change)) Option { return func(s *Store) { s.onChange = fn } }

// WithMaxSymbols bounds the number of symbols the store will hold (0 means
// no bound), so that neither a feed nor clients subscribing to made-up
// symbols can grow it without end.
func WithMaxSymbols(n int) Option { return func(s *Store) { s.max = n } }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{seed: maphash.MakeSeed()}
	for i := range s.shards {
		m := map[string]*Symbol{}
		s.shards[i].syms.Store(&m)
	}
	ids := make([]*Symbol, 1, 1024) // id 0 is never used
	s.byID.Store(&ids)
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Store) shardOf(name []byte) *shard {
	return &s.shards[maphash.Bytes(s.seed, name)%shardCount]
}

// Lookup returns the symbol named name, or nil. It never blocks.
func (s *Store) Lookup(name []byte) *Symbol {
	return (*s.shardOf(name).syms.Load())[string(name)]
}

// ByID returns the symbol with the given id, or nil.
func (s *Store) ByID(id uint32) *Symbol {
	ids := *s.byID.Load()
	if int(id) >= len(ids) {
		return nil
	}
	return ids[id]
}

// Len returns the number of symbols in the store.
func (s *Store) Len() int { return len(*s.byID.Load()) - 1 }

// Symbol returns the symbol named name, creating it without data (seq 0)
// when it is new. It returns nil when the store is full.
func (s *Store) Symbol(name []byte) *Symbol {
	if sym := s.Lookup(name); sym != nil {
		return sym
	}
	sh := s.shardOf(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.syms.Load()
	if sym := old[string(name)]; sym != nil {
		return sym
	}
	s.mu.Lock()
	ids := *s.byID.Load()
	if s.max > 0 && len(ids)-1 >= s.max {
		s.mu.Unlock()
		return nil
	}
	sym := &Symbol{ID: uint32(len(ids)), Name: string(name)}
	sym.state.Store(emptyState)
	// Appending past len is safe for readers: they never read beyond the
	// length of the slice they loaded.
	ids = append(ids, sym)
	s.byID.Store(&ids)
	s.mu.Unlock()

	m := make(map[string]*Symbol, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[sym.Name] = sym
	sh.syms.Store(&m)
	return sym
}

// Apply applies an update: fields it carries take their new value, the
// others keep theirs. When any value changed, the symbol's seq grows by one
// and Apply returns the change and true; an update that changes nothing
// returns false and leaves seq as it was. It returns false, too, when the
// symbol is new and the store is full.
func (s *Store) Apply(u *codec.Update) (Change, bool) {
	sym := s.Symbol(u.Sym)
	if sym == nil {
		return Change{}, false
	}
	sym.mu.Lock()
	defer sym.mu.Unlock()
	prev := sym.state.Load()
	var changed codec.FieldMask
	for f := 0; f < codec.NumFields; f++ {
		if u.Mask.Has(f) && (!prev.Mask.Has(f) || prev.Values[f] != u.Values[f]) {
			changed |= 1 << uint(f)
		}
	}
	if changed == 0 {
		return Change{}, false
	}
	next := &State{Seq: prev.Seq + 1, Mask: prev.Mask | u.Mask, Values: prev.Values}
	for f := 0; f < codec.NumFields; f++ {
		if changed.Has(f) {
			next.Values[f] = u.Values[f]
		}
	}
	sym.state.Store(next)
	ch := Change{Symbol: sym, Prev: prev, Next: next, Mask: changed}
	if s.onChange != nil {
		s.onChange(ch)
	}
	return ch, true
}

// Restore sets a symbol's state as it was saved (a warm restart), replacing
// what the store holds. It does not notify the observer: restoring happens
// before anyone subscribes.
func (s *Store) Restore(name []byte, st State) bool {
	sym := s.Symbol(name)
	if sym == nil {
		return false
	}
	sym.mu.Lock()
	defer sym.mu.Unlock()
	sym.state.Store(&st)
	return true
}

// Range calls fn for every symbol, in id order, until fn returns false.
func (s *Store) Range(fn func(*Symbol) bool) {
	for _, sym := range (*s.byID.Load())[1:] {
		if !fn(sym) {
			return
		}
	}
}

// Names returns, sorted, up to limit names (0: all) of the symbols that have
// data and start with prefix, and how many such symbols there are.
func (s *Store) Names(prefix string, limit int) ([]string, int) {
	var names []string
	s.Range(func(sym *Symbol) bool {
		if sym.Load().Seq > 0 && strings.HasPrefix(sym.Name, prefix) {
			names = append(names, sym.Name)
		}
		return true
	})
	sort.Strings(names)
	total := len(names)
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	return names, total
}

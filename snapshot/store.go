// Package snapshot keeps the latest state of every symbol, with its version
// (seq), and turns each applied update into the change it made.
//
// The store has a single writer per symbol (updates of one symbol are
// serialized by the symbol's lock) and any number of readers. A symbol's
// state is an immutable *State replaced atomically on each change, so a
// reader never blocks the writer and always sees a consistent version.
//
// Only the feed creates symbols. Names that subscribers ask for before the
// feed has sent them are reserved in a separate, bounded table (Reserve,
// Release) until the feed's first record takes them over.
package snapshot

import (
	"errors"
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

// Symbol is one symbol: one of the feed's, or a name reserved for its
// subscribers before the feed sent any data for it.
type Symbol struct {
	// ID is the symbol's numeric id; the protocol uses it as the sid. A
	// feed symbol keeps its id for the store's life; a reserved one keeps
	// it when the feed's first record makes it a feed symbol, and gives it
	// up when its last holder releases it (see Store.Release).
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
	// Carried holds the fields the update carried, changed or not: a
	// record that repeats the last trade's price is still a trade (bars
	// count it), though Mask does not hold the price.
	Carried codec.FieldMask
}

// ErrFull is the error of Apply and Restore for a new symbol of the feed
// when the store already holds its maximum of symbols (WithMaxSymbols).
var ErrFull error = fullError{}

type fullError struct{}

func (fullError) Error() string { return "snapshot: symbol table full" }

// Reason names the refusal for the ingest's rejected-records counter.
func (fullError) Reason() string { return "symbol_table_full" }

// ErrReservedFull is the error of Reserve when the store already holds
// its maximum of reserved names (WithMaxReserved).
var ErrReservedFull = errors.New("snapshot: too many reserved symbols")

const shardCount = 64

type shard struct {
	mu   sync.Mutex                         // serializes inserts into this shard
	syms atomic.Pointer[map[string]*Symbol] // replaced, never mutated
}

// reservation is a name held by subscribers before the feed sent data
// for it.
type reservation struct {
	sym  *Symbol
	refs int // Reserve calls not yet Released
}

// Store holds every symbol's state. The zero value is not usable: call New.
//
// Only the feed creates the store's symbols (Apply, Restore). A client
// that subscribes a name the feed never sent gets a reserved symbol, kept
// apart in a bounded table until its last holder releases it, so that
// subscriptions never grow the feed's table nor take its room.
type Store struct {
	seed     maphash.Seed
	shards   [shardCount]shard
	feed     atomic.Pointer[[]*Symbol] // the feed's symbols, in creation order
	observer Observer
	max      int
	maxRes   int

	// mu serializes the creation of symbols and guards the fields below.
	// Lock order: a shard's mu, then mu.
	mu       sync.Mutex
	nextID   uint32
	freeIDs  []uint32 // ids of released reservations, for reuse
	reserved map[string]*reservation
}

// Option configures a Store.
type Option func(*Store)

// Observer hears of every change of the store: the fanout engine.
type Observer interface {
	// Publish is called with every change, in seq order per symbol, while
	// the symbol's writer lock is held: it must not block.
	Publish(Change)
}

// SetObserver makes o the store's observer, replacing any other. The
// store reads it without a lock on every change: set it before the first
// Apply (fanout.NewHub does, for the store it serves).
func (s *Store) SetObserver(o Observer) { s.observer = o }

// WithMaxSymbols bounds the number of the feed's symbols (0 means no
// bound), so that a feed of ever new names cannot grow the store without
// end. Reserved names do not count.
func WithMaxSymbols(n int) Option { return func(s *Store) { s.max = n } }

// WithMaxReserved bounds the number of reserved names held at once (0
// means no bound), so that clients subscribing made-up names cannot grow
// memory without end. Ids are reused once released, so the ids in use
// never pass the feed's symbols plus this bound.
func WithMaxReserved(n int) Option { return func(s *Store) { s.maxRes = n } }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{seed: maphash.MakeSeed(), nextID: 1, reserved: map[string]*reservation{}}
	for i := range s.shards {
		m := map[string]*Symbol{}
		s.shards[i].syms.Store(&m)
	}
	feed := make([]*Symbol, 0, 1024)
	s.feed.Store(&feed)
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Store) shardOf(name []byte) *shard {
	return &s.shards[maphash.Bytes(s.seed, name)%shardCount]
}

// Lookup returns the feed's symbol named name, or nil. It never blocks.
func (s *Store) Lookup(name []byte) *Symbol {
	return (*s.shardOf(name).syms.Load())[string(name)]
}

// Len returns the number of the feed's symbols.
func (s *Store) Len() int { return len(*s.feed.Load()) }

// Reserved returns the number of reserved names held.
func (s *Store) Reserved() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reserved)
}

// Reserve returns the symbol a new holder of name follows: the feed's
// symbol when there is one (reserved false), else the name's reserved
// symbol (reserved true), shared by all its holders, which has no data
// (seq 0) until the feed's first record for the name turns it, same
// pointer and id, into the feed's symbol. Every Reserve that returns
// reserved true must be matched by one Release. It returns ErrReservedFull
// when the name would be one reserved name too many.
func (s *Store) Reserve(name []byte) (sym *Symbol, reserved bool, err error) {
	if sym := s.Lookup(name); sym != nil {
		return sym, false, nil
	}
	sh := s.shardOf(name)
	sh.mu.Lock() // a feed symbol being created under it is in the map after
	defer sh.mu.Unlock()
	if sym := (*sh.syms.Load())[string(name)]; sym != nil {
		return sym, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.reserved[string(name)]; r != nil {
		r.refs++
		return r.sym, true, nil
	}
	if s.maxRes > 0 && len(s.reserved) >= s.maxRes {
		return nil, false, ErrReservedFull
	}
	sym = &Symbol{ID: s.newID(), Name: string(name)}
	sym.state.Store(emptyState)
	s.reserved[sym.Name] = &reservation{sym: sym, refs: 1}
	return sym, true, nil
}

// Release undoes one Reserve that returned sym with reserved true. The
// last release forgets the name and frees its id for reuse; a symbol the
// feed has taken over meanwhile is left alone.
func (s *Store) Release(sym *Symbol) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reserved[sym.Name]
	if r == nil || r.sym != sym {
		return
	}
	if r.refs--; r.refs > 0 {
		return
	}
	delete(s.reserved, sym.Name)
	s.freeIDs = append(s.freeIDs, sym.ID)
}

// newID returns an unused id: a released reservation's, or a new one.
// s.mu is held.
func (s *Store) newID() uint32 {
	if n := len(s.freeIDs); n > 0 {
		id := s.freeIDs[n-1]
		s.freeIDs = s.freeIDs[:n-1]
		return id
	}
	id := s.nextID
	s.nextID++
	return id
}

// feedSymbol returns the feed's symbol named name, creating it when it is
// new: a reserved name becomes the feed's symbol with the same pointer and
// id, so that its subscribers simply get its changes. It returns ErrFull
// when the store already holds its maximum of feed symbols.
func (s *Store) feedSymbol(name []byte) (*Symbol, error) {
	if sym := s.Lookup(name); sym != nil {
		return sym, nil
	}
	sh := s.shardOf(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.syms.Load()
	if sym := old[string(name)]; sym != nil {
		return sym, nil
	}
	s.mu.Lock()
	feed := *s.feed.Load()
	if s.max > 0 && len(feed) >= s.max {
		s.mu.Unlock()
		return nil, ErrFull
	}
	var sym *Symbol
	if r := s.reserved[string(name)]; r != nil {
		sym = r.sym
		delete(s.reserved, sym.Name)
	} else {
		sym = &Symbol{ID: s.newID(), Name: string(name)}
		sym.state.Store(emptyState)
	}
	// Appending past len is safe for readers: they never read beyond the
	// length of the slice they loaded.
	feed = append(feed, sym)
	s.feed.Store(&feed)
	s.mu.Unlock()

	m := make(map[string]*Symbol, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[sym.Name] = sym
	sh.syms.Store(&m)
	return sym, nil
}

// Apply applies an update of the feed: fields it carries take their new
// value, the others keep theirs. When any value changed, the symbol's seq
// grows by one and the observer is told of the change; an update that
// changes nothing leaves seq as it was (and creates no symbol). It returns
// ErrFull, and changes nothing, when the symbol is new and the store is
// full. Ingest hands it the update of every record.
func (s *Store) Apply(u *codec.Update) error {
	sym := s.Lookup(u.Sym)
	if sym == nil {
		if u.Mask == 0 {
			return nil
		}
		var err error
		if sym, err = s.feedSymbol(u.Sym); err != nil {
			return err
		}
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
		return nil
	}
	next := &State{Seq: prev.Seq + 1, Mask: prev.Mask | u.Mask, Values: prev.Values}
	for f := 0; f < codec.NumFields; f++ {
		if changed.Has(f) {
			next.Values[f] = u.Values[f]
		}
	}
	sym.state.Store(next)
	if s.observer != nil {
		s.observer.Publish(Change{Symbol: sym, Prev: prev, Next: next, Mask: changed, Carried: u.Mask})
	}
	return nil
}

// Restore sets a feed symbol's state as it was saved (a warm restart),
// replacing what the store holds. It does not notify the observer:
// restoring happens before anyone subscribes. It returns ErrFull when the
// symbol is new and the store is full.
func (s *Store) Restore(name []byte, st State) error {
	sym, err := s.feedSymbol(name)
	if err != nil {
		return err
	}
	sym.mu.Lock()
	defer sym.mu.Unlock()
	sym.state.Store(&st)
	return nil
}

// Range calls fn for every feed symbol, in the order they were created,
// until fn returns false.
func (s *Store) Range(fn func(*Symbol) bool) {
	for _, sym := range *s.feed.Load() {
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

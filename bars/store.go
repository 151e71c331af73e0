// Package bars builds OHLCV bars of every symbol from the changes of the
// snapshot store, at a few configured intervals, in bounded memory.
//
// A Store is the snapshot store's observer: it updates the bars of each
// change, then hands the same change to its own next observer (the fanout
// hub), so that the hub's reads of the bars inside Publish see the bars of
// that change. Bars follow event time — a change's bar starts at
// floor(ts / interval) × interval, ts being the symbol's ts after the
// change — so every node that reads the same log builds the same bars.
//
// The rules:
//   - A change whose record carried last is a trade: price last, size
//     lastSize when the record carried it, else 0. Open is the interval's
//     first trade price, high, low and close follow, volume sums the
//     sizes (a sum past the largest double stays the largest) and trades
//     counts them.
//   - A symbol that has never traded (quotes only: FX, indices) gets bars
//     of its mid price (bid+ask)/2, one point per change whose record
//     carried bid or ask once both are known; volume 0, trades counts the
//     quotes. Its first trade switches it to trade bars for good: the bar
//     in progress restarts from the trade, earlier bars stay.
//   - A record whose ts falls before the newest bar of an interval is
//     late: it counts into the newest bar (bars never reopen) and in
//     Stats.Late.
//   - An interval without a trade (or quote) has no bar: bars are sparse.
//   - Each symbol keeps at most Interval.Keep bars per interval, in a ring
//     that grows as bars come; all rings together hold at most
//     Config.MaxBytes, past which a ring that would grow overwrites its
//     own oldest bar instead (Stats.Capped).
package bars

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/config"
	"github.com/tickstream/tickstream/snapshot"
)

// Bar is one interval's OHLCV bar: the wire's (codec.Bar), so that the
// hub encodes what AppendHistory returns as it is.
type Bar = codec.Bar

// Config configures a Store. Zero fields take their DefaultConfig value.
type Config struct {
	// Intervals are the bar lengths and retentions, shortest first
	// (default ParseIntervals(DefaultIntervals)).
	Intervals []Interval
	// MaxBytes bounds the memory of every symbol's bars together (default
	// 256 MiB): BytesPerBar per retained bar.
	MaxBytes int64
	// Logger receives the store's logs (default slog.Default()).
	Logger *slog.Logger
}

// DefaultMaxBytes is the default memory bound of all bars: a full day of
// the default intervals (112 KB of rings each) for about 2,390 symbols.
const DefaultMaxBytes = 256 << 20

// DefaultConfig returns the default settings, those a zero field of
// Config takes.
func DefaultConfig() Config {
	ivs, err := ParseIntervals(DefaultIntervals)
	if err != nil {
		panic(err)
	}
	return Config{Intervals: ivs, MaxBytes: DefaultMaxBytes, Logger: slog.Default()}
}

// Validate reports the first setting out of range as a config.FieldError.
func (c Config) Validate() error {
	ivErr := checkIntervals(c.Intervals)
	want := ""
	if ivErr != nil {
		want = ivErr.Error()
	}
	return config.First(
		config.Check(ivErr == nil, "Intervals", FormatIntervals(c.Intervals), want),
		config.Check(c.MaxBytes >= BytesPerBar, "MaxBytes", c.MaxBytes, fmt.Sprintf("at least %d (one bar)", BytesPerBar)),
	)
}

// slot is a retained bar: its start in seconds, which fits 32 bits until
// 2106, keeps it at 48 bytes.
type slot struct {
	sec           uint32
	trades        uint32
	o, h, l, c, v float64
}

// BytesPerBar is the memory of one retained bar.
const BytesPerBar = int64(unsafe.Sizeof(slot{}))

// minSlots is the capacity of a ring's first allocation; rings double from
// it up to their interval's Keep.
const minSlots = 8

// ring holds one symbol's bars of one interval, oldest first from head;
// the start times strictly increase.
type ring struct {
	slots []slot
	head  int // index of the oldest bar
	n     int // bars held
	// pushed counts the bars ever added (restored ones included), so that
	// a checkpoint's Mark finds its bars again once more have come.
	pushed uint64
	// dropped is the start of the last bar a ring without a slot had no
	// room for (0: none), so that its later changes are not counted again.
	dropped uint32
}

// at returns the k-th oldest bar, 0 <= k < r.n; it compares where a
// modulo would divide, on every change.
func (r *ring) at(k int) *slot {
	i := r.head + k
	if i >= len(r.slots) {
		i -= len(r.slots)
	}
	return &r.slots[i]
}

func (r *ring) newest() *slot { return r.at(r.n - 1) }

// series is one symbol's bars.
type series struct {
	mu  sync.Mutex // the symbol's writer holds it while it updates; readers while they read
	sym *snapshot.Symbol
	// seq is the last change of the symbol the bars reflect; touched the
	// last one that moved them.
	seq, touched uint64
	trades       bool // the symbol has traded: trade bars for good
	rings        []ring
}

// Stats are a store's counters.
type Stats struct {
	// Bytes is the memory the rings hold now, at most Config.MaxBytes.
	Bytes int64
	// Late counts, per interval, the changes whose ts fell before the
	// newest bar's start and went into the newest bar.
	Late []uint64
	// Capped counts the bars that overwrote their ring's oldest bar before
	// its retention because the memory bound was reached (or were dropped,
	// for a symbol whose ring had no room at all).
	Capped uint64
}

// Store builds and holds the bars of every symbol. The zero value is not
// usable: call New.
type Store struct {
	ivs    []Interval
	secs   []int64 // interval lengths in seconds
	max    int64
	log    *slog.Logger
	next   snapshot.Observer
	used   atomic.Int64
	late   []atomic.Uint64
	capped atomic.Uint64
	warned atomic.Bool

	tableMu sync.Mutex                               // serializes the table's growth
	table   atomic.Pointer[[]atomic.Pointer[series]] // by symbol id
}

// New returns a store with no bars. Zero fields of cfg take their
// DefaultConfig value; New refuses a Config that Validate refuses then.
func New(cfg Config) (*Store, error) {
	config.FillZero(&cfg, DefaultConfig())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bars: %w", err)
	}
	s := &Store{
		ivs:  append([]Interval(nil), cfg.Intervals...),
		secs: make([]int64, len(cfg.Intervals)),
		max:  cfg.MaxBytes,
		log:  cfg.Logger,
		late: make([]atomic.Uint64, len(cfg.Intervals)),
	}
	for i, iv := range s.ivs {
		s.secs[i] = iv.Seconds()
	}
	table := make([]atomic.Pointer[series], 1024)
	s.table.Store(&table)
	return s, nil
}

// SetObserver makes next the observer the store hands every change to,
// after it updated the change's bars. Set it before the first change.
func (s *Store) SetObserver(next snapshot.Observer) { s.next = next }

// Intervals returns the store's intervals, shortest first. The index of
// an interval in it is what the other methods take.
func (s *Store) Intervals() []Interval { return s.ivs }

// IntervalIndex returns the index of the interval named name.
func (s *Store) IntervalIndex(name string) (int, bool) {
	for i, iv := range s.ivs {
		if iv.Name == name {
			return i, true
		}
	}
	return 0, false
}

// IntervalNames lists the interval names for messages: "1s, 1m".
func (s *Store) IntervalNames() string {
	names := make([]string, len(s.ivs))
	for i, iv := range s.ivs {
		names[i] = iv.Name
	}
	return strings.Join(names, ", ")
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{Bytes: s.used.Load(), Capped: s.capped.Load(), Late: make([]uint64, len(s.late))}
	for i := range s.late {
		st.Late[i] = s.late[i].Load()
	}
	return st
}

// Publish updates the bars of change c and hands c to the next observer.
// The store calls it under the symbol's writer lock, in seq order per
// symbol (snapshot.Observer): it takes only the symbol's own lock and
// allocates only when a ring grows.
func (s *Store) Publish(c snapshot.Change) {
	s.update(&c)
	if s.next != nil {
		s.next.Publish(c)
	}
}

const (
	quoteFields = 1<<codec.FieldBid | 1<<codec.FieldAsk
	maxSec      = math.MaxUint32
)

func (s *Store) update(c *snapshot.Change) {
	next := c.Next
	trade := c.Carried.Has(codec.FieldLast)
	quote := !trade && c.Carried&quoteFields != 0 && next.Mask&quoteFields == quoteFields
	se := s.series(c.Symbol, trade || quote)
	if se == nil {
		return
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	se.seq = next.Seq
	if !trade && (!quote || se.trades) || !next.Mask.Has(codec.FieldTS) {
		return
	}
	sec := int64(next.Values[codec.FieldTS]) / 1e6
	if sec > maxSec {
		return // after 2106: the codec's ts bound allows it, a bar cannot hold it
	}
	var price, size float64
	restart := false
	if trade {
		price = next.Values[codec.FieldLast]
		if c.Carried.Has(codec.FieldLastSize) {
			size = next.Values[codec.FieldLastSize]
		}
		restart = !se.trades
		se.trades = true
	} else {
		price = mid(next.Values[codec.FieldBid], next.Values[codec.FieldAsk])
	}
	se.touched = next.Seq
	for i := range se.rings {
		r := &se.rings[i]
		start := uint32(sec - sec%s.secs[i])
		if r.n == 0 || start > r.newest().sec {
			if r.n == 0 && start <= r.dropped {
				continue // a bar already dropped for want of room
			}
			if b := s.push(r, i, c.Symbol); b != nil {
				*b = slot{sec: start, trades: 1, o: price, h: price, l: price, c: price, v: size}
			} else {
				r.dropped = start
			}
			continue
		}
		b := r.newest()
		if start < b.sec {
			s.late[i].Add(1)
		}
		if restart {
			*b = slot{sec: b.sec, trades: 1, o: price, h: price, l: price, c: price, v: size}
			continue
		}
		b.h = max(b.h, price)
		b.l = min(b.l, price)
		b.c = price
		b.v = sum(b.v, size)
		if b.trades < math.MaxUint32 {
			b.trades++
		}
	}
}

// mid returns (bid+ask)/2, also for two quotes whose sum a double cannot
// hold.
func mid(bid, ask float64) float64 {
	if m := (bid + ask) / 2; !math.IsInf(m, 0) {
		return m
	}
	return bid/2 + ask/2
}

// sum returns v+size, or the largest double of its sign when a double
// cannot hold it (an absurd feed's sizes): bar values stay finite, as JSON
// and docs/PROTOCOL.md want them.
func sum(v, size float64) float64 {
	if t := v + size; !math.IsInf(t, 0) {
		return t
	}
	return math.Copysign(math.MaxFloat64, v+size)
}

// push returns the slot of a new newest bar of ring r (interval i): a
// free one, one of a grown ring, or — at the ring's retention or the
// memory bound — its oldest bar's. It returns nil when the ring has no
// slot and the bound leaves no room for one.
func (s *Store) push(r *ring, i int, sym *snapshot.Symbol) *slot {
	if r.n == len(r.slots) && len(r.slots) < s.ivs[i].Keep {
		s.grow(r, i, sym)
	}
	if r.n < len(r.slots) {
		r.n++
		r.pushed++
		return r.newest()
	}
	if len(r.slots) == 0 {
		return nil
	}
	r.pushed++
	b := &r.slots[r.head]
	r.head = (r.head + 1) % len(r.slots)
	return b
}

// grow doubles ring r (up to its retention) when the memory bound allows,
// else counts and logs (once) that the bound is reached.
func (s *Store) grow(r *ring, i int, sym *snapshot.Symbol) {
	size := min(max(2*len(r.slots), minSlots), s.ivs[i].Keep)
	if !s.take(int64(size - len(r.slots))) {
		s.capped.Add(1)
		s.warnCapped(sym, i)
		return
	}
	slots := make([]slot, size)
	for k := 0; k < r.n; k++ {
		slots[k] = *r.at(k)
	}
	r.slots, r.head = slots, 0
}

// take reserves the memory of n more slots, or reports that the bound
// leaves no room for them.
func (s *Store) take(n int64) bool {
	for {
		used := s.used.Load()
		if used+n*BytesPerBar > s.max {
			return false
		}
		if s.used.CompareAndSwap(used, used+n*BytesPerBar) {
			return true
		}
	}
}

// takeSlots reserves the memory of up to n slots and returns how many it
// got.
func (s *Store) takeSlots(n int) int {
	for {
		used := s.used.Load()
		got := min(int64(n), (s.max-used)/BytesPerBar)
		if got <= 0 {
			return 0
		}
		if s.used.CompareAndSwap(used, used+got*BytesPerBar) {
			return int(got)
		}
	}
}

// warnCapped logs, once per store, that the memory bound was reached.
func (s *Store) warnCapped(sym *snapshot.Symbol, i int) {
	if !s.warned.Swap(true) {
		s.log.Warn("bars: memory bound reached: rings that would grow overwrite their oldest bars instead (shorter retention)",
			"max_bytes", s.max, "symbol", sym.Name, "interval", s.ivs[i].Name)
	}
}

// series returns the series of sym, creating it when create is set and it
// has none yet; else nil.
func (s *Store) series(sym *snapshot.Symbol, create bool) *series {
	if t := *s.table.Load(); int(sym.ID) < len(t) {
		if se := t[sym.ID].Load(); se != nil || !create {
			return se
		}
	} else if !create {
		return nil
	}
	s.tableMu.Lock()
	defer s.tableMu.Unlock()
	t := *s.table.Load()
	if int(sym.ID) >= len(t) {
		grown := make([]atomic.Pointer[series], max(int(sym.ID)+1, 2*len(t)))
		for i := range t {
			grown[i].Store(t[i].Load())
		}
		s.table.Store(&grown)
		t = grown
	}
	if se := t[sym.ID].Load(); se != nil {
		return se
	}
	se := &series{sym: sym, rings: make([]ring, len(s.ivs))}
	t[sym.ID].Store(se)
	return se
}

// lookup returns the series of sym for a reader, or nil when it has none.
func (s *Store) lookup(sym *snapshot.Symbol) *series {
	if sym == nil {
		return nil
	}
	se := s.series(sym, false)
	if se == nil || se.sym != sym {
		return nil // an id reused by another symbol: sym never had bars
	}
	return se
}

func (b *slot) bar() Bar {
	return Bar{T: int64(b.sec) * 1e6, Open: b.o, High: b.h, Low: b.l, Close: b.c, Volume: b.v, Trades: b.trades}
}

// AppendHistory appends to dst the bars of sym at interval i (an index of
// Intervals) that start at or after since (unix µs; 0: all) — at most the
// n newest of them (0: no limit) — oldest first, and returns them with the
// seq of sym's last change the bars reflect (0 when sym has no bars). The
// newest bar may still be forming. It is safe at any time from any
// goroutine; inside the next observer's Publish it sees the bars of the
// change being published.
func (s *Store) AppendHistory(dst []Bar, sym *snapshot.Symbol, i int, since int64, n int) ([]Bar, uint64) {
	return s.AppendRange(dst, sym, i, since, math.MaxInt64, n)
}

// AppendRange is AppendHistory for the bars that start in [from, to).
func (s *Store) AppendRange(dst []Bar, sym *snapshot.Symbol, i int, from, to int64, n int) ([]Bar, uint64) {
	se := s.lookup(sym)
	if se == nil {
		return dst, 0
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	r := &se.rings[i]
	lo, hi := r.search(from), r.search(to)
	if n > 0 && hi-lo > n {
		lo = hi - n
	}
	for k := lo; k < hi; k++ {
		dst = append(dst, r.at(k).bar())
	}
	return dst, se.seq
}

// search returns the index of r's first bar that starts at or after t
// (unix µs), r.n when none does: start times increase, so by bisection.
func (r *ring) search(t int64) int {
	lo, hi := 0, r.n
	for lo < hi {
		mid := (lo + hi) / 2
		if int64(r.at(mid).sec)*1e6 < t {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Last returns the newest bar of sym at interval i, which may still be
// forming, with the seq of AppendHistory; ok is false when sym has no bar
// of the interval.
func (s *Store) Last(sym *snapshot.Symbol, i int) (b Bar, seq uint64, ok bool) {
	se := s.lookup(sym)
	if se == nil {
		return Bar{}, 0, false
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	r := &se.rings[i]
	if r.n == 0 {
		return Bar{}, se.seq, false
	}
	return r.newest().bar(), se.seq, true
}

// Touched reports whether change c moved its symbol's bars (those of
// every interval move together). Call it inside the next observer's
// Publish of c; later it reports false once another change moved them.
func (s *Store) Touched(c snapshot.Change) bool {
	se := s.lookup(c.Symbol)
	if se == nil {
		return false
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.touched == c.Next.Seq
}

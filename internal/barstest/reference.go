// Package barstest computes bars from a log of updates the slow, obvious
// way — whole lists, no rings, no locks, no store — so that tests can hold
// the bars package, and the bars a server serves, to an independent
// reference of the rules in docs/PROTOCOL.md §17.
package barstest

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// Reference replays updates, in order, as a node's store would apply them,
// and builds every symbol's bars at each interval. Memory is unbounded:
// only each interval's Keep bound applies.
type Reference struct {
	ivs  []bars.Interval
	syms map[string]*refSymbol
}

type refSymbol struct {
	values map[int]float64
	seq    uint64
	traded bool
	bars   [][]bars.Bar // per interval, every bar ever made, oldest first
	late   []int
}

// NewReference returns a reference with no symbols.
func NewReference(ivs []bars.Interval) *Reference {
	return &Reference{ivs: ivs, syms: map[string]*refSymbol{}}
}

// Replay returns the reference of a log of Kafka records as ingest hands
// them to the store: the records it refuses are skipped, and a record
// without ts gets the time it is read (a change, then, whatever else it
// carries: a node's bars from such records depend on when it read them).
func Replay(ivs []bars.Interval, log []kafka.Message) *Reference {
	r := NewReference(ivs)
	var u codec.Update
	for _, m := range log {
		if codec.DecodeRecord(m.Key, m.Value, &u) != nil {
			continue
		}
		if !u.Mask.Has(codec.FieldTS) {
			u.Set(codec.FieldTS, float64(time.Now().UnixMicro()))
		}
		r.Apply(&u)
	}
	return r
}

// Apply replays one update.
func (r *Reference) Apply(u *codec.Update) {
	name := string(u.Sym)
	s := r.syms[name]
	if s == nil {
		s = &refSymbol{values: map[int]float64{}, bars: make([][]bars.Bar, len(r.ivs)), late: make([]int, len(r.ivs))}
	}
	changed := false
	for f := range codec.NumFields {
		if !u.Mask.Has(f) {
			continue
		}
		if old, has := s.values[f]; !has || old != u.Values[f] {
			changed = true
		}
		s.values[f] = u.Values[f]
	}
	if !changed {
		return // a record that changes nothing is no change: not a trade either
	}
	r.syms[name] = s
	s.seq++
	ts, hasTS := s.values[codec.FieldTS]
	if !hasTS {
		return
	}
	bid, hasBid := s.values[codec.FieldBid]
	ask, hasAsk := s.values[codec.FieldAsk]
	var price, size float64
	firstTrade := false
	switch {
	case u.Mask.Has(codec.FieldLast):
		price = u.Values[codec.FieldLast]
		if u.Mask.Has(codec.FieldLastSize) {
			size = u.Values[codec.FieldLastSize]
		}
		firstTrade = !s.traded
		s.traded = true
	case !s.traded && (u.Mask.Has(codec.FieldBid) || u.Mask.Has(codec.FieldAsk)) && hasBid && hasAsk:
		price = (bid + ask) / 2
		if math.IsInf(price, 0) { // two huge quotes: the mid of their halves
			price = bid/2 + ask/2
		}
	default:
		return
	}
	for i, iv := range r.ivs {
		length := iv.Len.Microseconds()
		start := int64(ts) / length * length
		list := s.bars[i]
		last := len(list) - 1
		fresh := bars.Bar{T: start, Open: price, High: price, Low: price, Close: price, Volume: size, Trades: 1}
		switch {
		case last < 0 || start > list[last].T:
			s.bars[i] = append(list, fresh)
		case firstTrade:
			if start < list[last].T {
				s.late[i]++
			}
			fresh.T = list[last].T
			list[last] = fresh
		default:
			if start < list[last].T {
				s.late[i]++
			}
			b := &list[last]
			if price > b.High {
				b.High = price
			}
			if price < b.Low {
				b.Low = price
			}
			b.Close = price
			b.Volume += size
			if math.IsInf(b.Volume, 0) { // past the largest double: the largest
				b.Volume = math.Copysign(math.MaxFloat64, b.Volume)
			}
			b.Trades++
		}
	}
}

// Bars returns the bars of sym at interval i that a store keeps: the Keep
// newest.
func (r *Reference) Bars(sym string, i int) []bars.Bar {
	s := r.syms[sym]
	if s == nil {
		return nil
	}
	list := s.bars[i]
	if keep := r.ivs[i].Keep; len(list) > keep {
		list = list[len(list)-keep:]
	}
	return append([]bars.Bar(nil), list...)
}

// Seq returns the seq of sym after the updates applied so far.
func (r *Reference) Seq(sym string) uint64 {
	if s := r.syms[sym]; s != nil {
		return s.seq
	}
	return 0
}

// Late returns how many changes of sym were late at interval i.
func (r *Reference) Late(sym string, i int) int {
	if s := r.syms[sym]; s != nil {
		return s.late[i]
	}
	return 0
}

// Count returns how many bars the reference holds, all symbols and
// intervals together, so that a test can tell it compared something.
func (r *Reference) Count() int {
	n := 0
	for name := range r.syms {
		for i := range r.ivs {
			n += len(r.Bars(name, i))
		}
	}
	return n
}

// Symbols returns the names of the symbols with at least one change.
func (r *Reference) Symbols() []string {
	names := make([]string, 0, len(r.syms))
	for n := range r.syms {
		names = append(names, n)
	}
	return names
}

// Diff describes how the bars of b, whose store is snap, differ from the
// reference's (at most a few lines), or returns "" when every symbol's
// bars at every interval are equal. b must have the reference's intervals.
func (r *Reference) Diff(b *bars.Store, snap *snapshot.Store) string {
	var diffs []string
	names := r.Symbols()
	sort.Strings(names)
	for _, name := range names {
		sym := snap.Lookup([]byte(name))
		for i, iv := range r.ivs {
			want := r.Bars(name, i)
			var got []bars.Bar
			if sym != nil {
				got, _ = b.AppendHistory(nil, sym, i, 0, 0)
			}
			if !slices.Equal(got, want) {
				diffs = append(diffs, fmt.Sprintf("%s %s: %d bars, want %d; newest %v, want %v", name, iv.Name, len(got), len(want), last(got), last(want)))
			}
		}
		if len(diffs) >= 5 {
			break
		}
	}
	return strings.Join(diffs, "\n")
}

func last(bs []bars.Bar) any {
	if len(bs) == 0 {
		return "none"
	}
	return bs[len(bs)-1]
}

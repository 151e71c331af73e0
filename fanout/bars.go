package fanout

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// Bars: a subscription with the SUB option bars also gets the symbol's
// OHLCV bars of one interval (PROTOCOL.md §6.10, §6.11, §17): its history
// as one BARS after the SNAPSHOT when asked for, and BAR messages as the
// bars move. The engine builds no bars: it reads them from a BarSource,
// the node's bars store, which sits between the snapshot store and the hub
// (snapshot → bars → fanout) and has applied each change before the hub
// publishes it.
//
// A BAR goes out on the publish path, encoded once per (format, interval)
// of the change and right after the change's DELTA, while the subscription
// is in step; otherwise (maxHz, a congested connection, a snapshot that
// raced the change) the subscription's bars are marked due and the writer
// sends them with the merged DELTA, reading the bars from the source then:
// the client's newest bar again if it changed since (its final state), and
// every later bar once, oldest first. So the client's bars never miss a
// bar the source has, and a bar's final state always comes before the
// next bar.

// BarSource is where the hub reads bars: the node's bars store. Its reads
// may be called from any goroutine, with a client's lock held: they must
// never wait for a lock that the source holds while it calls the hub's
// Publish.
type BarSource interface {
	// IntervalIndex returns the index of the interval named name, and
	// false when the source keeps no interval of that name.
	IntervalIndex(name string) (int, bool)
	// IntervalNames lists the names of the intervals for people, such as
	// "1s, 1m".
	IntervalNames() string
	// AppendHistory appends to dst the bars of sym at interval i with
	// T >= since (0: all) and at most the last n (0: no limit), oldest
	// first, and returns the seq of sym they are complete up to, which
	// never decreases.
	AppendHistory(dst []codec.Bar, sym *snapshot.Symbol, i int, since int64, n int) ([]codec.Bar, uint64)
	// Last returns the newest bar of sym at interval i, the seq as
	// AppendHistory does, and false when sym has no bar yet.
	Last(sym *snapshot.Symbol, i int) (b codec.Bar, seq uint64, ok bool)
	// Touched reports whether change c moved sym's bars (at every
	// interval). It is asked only while the source publishes c. c is
	// passed by value: a pointer handed to an interface would make every
	// change the hub publishes escape to the heap.
	Touched(c snapshot.Change) bool
}

// barRequest is what a SUB asks for in bars, its options resolved against
// the hub's BarSource; iv is -1 when it asks for none.
type barRequest struct {
	iv       int
	name     string
	count    int
	since    int64
	hasSince bool
}

// errBarsOff refuses a SUB asking for bars of a hub without a BarSource.
var errBarsOff = errors.New("bars are off on this server")

// CheckBars reports why the hub would refuse a subscription with options
// o for its bars (no such interval, or bars off), as the ERROR 400 of a
// SUB says it after "bad request: "; nil when it would not. The server
// checks the subscription of an upgrade URL with it before upgrading.
func (h *Hub) CheckBars(o *codec.SubOptions) error {
	_, err := h.barRequestOf(o)
	return err
}

// barRequestOf checks a SUB's bar options against the hub's source, and
// returns the reason that refuses the whole SUB when they do not hold.
func (h *Hub) barRequestOf(o *codec.SubOptions) (barRequest, error) {
	r := barRequest{iv: -1}
	if o.Bars == "" {
		return r, nil
	}
	if h.cfg.Bars == nil {
		return r, errBarsOff
	}
	iv, ok := h.cfg.Bars.IntervalIndex(o.Bars)
	if !ok {
		return r, fmt.Errorf("option bars: unknown interval %q (this server has %s)", o.Bars, h.cfg.Bars.IntervalNames())
	}
	r.iv, r.name = iv, o.Bars
	r.count, r.since, r.hasSince = o.BarCount, o.BarSince, o.HasBarSince
	return r, nil
}

// subBars is the bar side of a subscription: what it asked for and what
// its client holds. Guarded by client.mu.
type subBars struct {
	barRequest
	// seq is the seq of the bars the client holds: the last BARS's or
	// BAR's.
	seq uint64
	// last is the newest bar the client holds, when has.
	last codec.Bar
	has  bool
	// complete: the client holds every bar from its history on (a BARS
	// came), so the writer sends every bar it has not, not only the
	// newest.
	complete bool
	// due: a change moved the bars past seq and the client has not got
	// them yet; the writer sends them with the subscription's next DELTA.
	due bool
	// historyDue: the BARS of a SUB with snap false is owed, put off
	// because the connection was congested.
	historyDue bool
}

func (r *barRequest) wantsHistory() bool { return r.count > 0 || r.hasSince }

// barsInStep reports whether s has no bars, or none owed: a change may
// then go out on the publish path.
func (s *subscription) barsInStep() bool {
	return s.bars == nil || !s.bars.due && !s.bars.historyDue
}

// barsDue reports whether s owes its client bars.
func (s *subscription) barsDue() bool { return s.bars != nil && s.bars.due }

// setBarsLocked gives s the bars of a SUB: a new interval starts afresh,
// the same interval keeps what the client holds, none ends them. c.mu is
// held.
func (c *Client) setBarsLocked(s *subscription, r *barRequest) {
	switch {
	case r.iv < 0:
		s.bars = nil
	case s.bars != nil && s.bars.iv == r.iv:
		s.bars.barRequest = *r
		// A BARS put off for an earlier SUB is owed no more: this SUB's
		// answer says what the client gets.
		s.bars.historyDue = s.bars.historyDue && r.wantsHistory()
	default:
		s.bars = &subBars{barRequest: *r}
	}
}

// barsMoved reports whether change ch moved the bars of s past what its
// client holds. c.mu is held.
func (c *Client) barsMoved(s *subscription, ch *snapshot.Change, enc *encoder) bool {
	return ch.Next.Seq > s.bars.seq && enc.bars.touched(c.hub.cfg.Bars, ch)
}

// owesBarsLocked marks the bars of s due after a change the publish path
// did not send them for, and has the writer send them when the
// subscription is due. c.mu is held.
func (c *Client) owesBarsLocked(s *subscription) {
	s.bars.due = true
	c.markDirty(s)
	if s.sent == nil || s.snapDue {
		return // the SUB or the put-off SNAPSHOT in progress sends them
	}
	c.wakeWhenDue(s, s.interval > 0 && !c.congested())
}

// queueLiveBarLocked queues the BAR of change ch for s, on the publish
// path: the bars are in step, so only the newest bar moved. c.mu is held.
func (c *Client) queueLiveBarLocked(s *subscription, ch *snapshot.Change, enc *encoder) {
	b := s.bars
	msg, bar := enc.bars.bar(c.hub.cfg.Bars, ch, c.format, b.iv, b.name)
	if bar == nil {
		return
	}
	c.queue(msg)
	c.wake()
	b.last, b.has, b.seq = *bar, true, ch.Next.Seq
}

// afterSnapshotLocked queues, right after a SNAPSHOT of s, its BARS when
// the subscription asks for history, else the bars that moved since the
// client's last BAR: a SNAPSHOT takes s past changes whose bars it did not
// see (the changes of a parked subscription, or those that raced it).
// c.mu is held.
func (c *Client) afterSnapshotLocked(s *subscription) {
	if s.bars.wantsHistory() {
		c.queueHistoryLocked(s)
		return
	}
	s.bars.due = true
	c.flushBarsLocked(s)
}

// historyAfterAckLocked queues the BARS of a SUB with snap false, which
// follows the ACK; on a congested connection the writer sends it when it
// drains. c.mu is held.
func (c *Client) historyAfterAckLocked(s *subscription) {
	if s.bars == nil || !s.bars.wantsHistory() || s.snapDue {
		return // a SNAPSHOT put off for an earlier SUB is owed: its BARS follows it
	}
	if c.congested() {
		s.bars.historyDue = true
		c.markDirty(s)
		return
	}
	c.queueHistoryLocked(s)
}

// queueHistoryLocked queues the BARS of s: the history it asked for, as
// the source has it now. c.mu is held.
func (c *Client) queueHistoryLocked(s *subscription) {
	b := s.bars
	since, n := int64(0), b.count
	if b.hasSince {
		since, n = b.since, codec.MaxBarHistory
	}
	buf := getBarBuf()
	bars, seq := c.hub.cfg.Bars.AppendHistory((*buf)[:0], s.sym, b.iv, since, n)
	c.scratch = c.format.AppendBars(c.scratch[:0], s.sym.ID, seq, b.name, bars)
	c.queue(c.scratch)
	b.seq = max(b.seq, seq)
	b.has = len(bars) > 0
	if b.has {
		b.last = bars[len(bars)-1]
	}
	b.complete = true
	b.due, b.historyDue = false, false
	putBarBuf(buf, bars)
}

// flushBarsLocked queues the BARs s owes, reading the bars from the source
// now: the client's newest bar if it changed since it was sent, then every
// later bar, oldest first (only the newest for a client that holds none
// and asked for no history). It reports whether it queued any. c.mu is
// held.
func (c *Client) flushBarsLocked(s *subscription) bool {
	b := s.bars
	if !b.due {
		return false
	}
	b.due = false
	since, n := int64(0), 0
	switch {
	case b.has:
		since = b.last.T
	case !b.complete:
		n = 1
	case b.hasSince:
		since = b.since
	}
	buf := getBarBuf()
	bars, seq := c.hub.cfg.Bars.AppendHistory((*buf)[:0], s.sym, b.iv, since, n)
	queued := false
	for i := range bars {
		bar := &bars[i]
		if b.has && (bar.T < b.last.T || *bar == b.last) {
			continue // what the client holds already
		}
		c.scratch = c.format.AppendBar(c.scratch[:0], s.sym.ID, max(seq, b.seq), b.name, bar)
		c.queue(c.scratch)
		b.last, b.has = *bar, true
		queued = true
	}
	b.seq = max(b.seq, seq)
	putBarBuf(buf, bars)
	return queued
}

// barBufs holds the buffers bars are read into from the source.
var barBufs = sync.Pool{New: func() any { return new([]codec.Bar) }}

func getBarBuf() *[]codec.Bar { return barBufs.Get().(*[]codec.Bar) }

// putBarBuf returns a buffer to the pool, unless a long history made it
// large: most reads are of a bar or two.
func putBarBuf(buf *[]codec.Bar, used []codec.Bar) {
	if cap(used) <= 1024 {
		*buf = used[:0]
		barBufs.Put(buf)
	}
}

// barCache is the publish path's share of bars for one change: whether it
// moved the bars, and the BAR of each (format, interval) encoded once.
type barCache struct {
	state   uint8 // barsUnknown, barsMoved or barsStill
	buf     []byte
	entries [4]barEntry
	n       int
	spare   barEntry // the bar when entries is full
}

const (
	barsUnknown uint8 = iota
	barsMoved
	barsStill
)

type barEntry struct {
	format   codec.Format
	iv       int
	bar      codec.Bar
	ok       bool
	from, to int
}

func (b *barCache) reset() {
	b.state = barsUnknown
	b.buf = b.buf[:0]
	b.n = 0
}

// touched reports whether ch moved the bars, asking src once per change.
func (b *barCache) touched(src BarSource, ch *snapshot.Change) bool {
	if b.state == barsUnknown {
		b.state = barsStill
		if src.Touched(*ch) {
			b.state = barsMoved
		}
	}
	return b.state == barsMoved
}

// bar returns the BAR of change ch at interval iv in format f, and the
// bar, valid until the cache is reset; bar is nil when the symbol has no
// bar at iv.
func (b *barCache) bar(src BarSource, ch *snapshot.Change, f codec.Format, iv int, name string) (msg []byte, bar *codec.Bar) {
	for i := 0; i < b.n; i++ {
		if e := &b.entries[i]; e.format == f && e.iv == iv {
			if !e.ok {
				return nil, nil
			}
			return b.buf[e.from:e.to], &e.bar
		}
	}
	e := &b.spare
	if b.n < len(b.entries) {
		e = &b.entries[b.n]
		b.n++
	}
	// Inside the source's publish of ch, its bars are those after ch, at
	// ch's seq, as the DELTA before the BAR.
	*e = barEntry{format: f, iv: iv, from: len(b.buf)}
	e.bar, _, e.ok = src.Last(ch.Symbol, iv)
	if !e.ok {
		return nil, nil
	}
	b.buf = f.AppendBar(b.buf, ch.Symbol.ID, ch.Next.Seq, name, &e.bar)
	e.to = len(b.buf)
	return b.buf[e.from:e.to], &e.bar
}

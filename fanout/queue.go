package fanout

import (
	"fmt"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// queue appends one encoded message to the outbound buffer. Messages are
// packed into frames of at most MaxFrameSize (a larger message gets a frame
// of its own). c.mu is held.
//
// Deltas and snapshots are conflated past the soft limit (see congested),
// so only the replies that are never merged or dropped (ACK, ERROR, PONG,
// STATUS, HEARTBEAT) can take the backlog to the hard limit: a client that
// sends requests and does not read their answers. Such a client is closed
// with 4008 at once rather than held, so the backlog never passes the hard
// limit by more than one message.
func (c *Client) queue(msg []byte) {
	if c.closed {
		return
	}
	if c.closing {
		c.hub.stats.dropped.Add(1)
		return
	}
	if c.backlog() > c.hub.cfg.HardLimit {
		c.hub.stats.dropped.Add(1)
		c.startClosing(codec.CloseSlowConsumer, "slow consumer")
		// close takes c.mu, which the caller holds.
		go c.close(codec.CloseSlowConsumer, "slow consumer")
		return
	}
	room := int(c.room)
	need := len(msg) + 1 + room // a separator, or the room of a new frame
	if c.out == nil {
		c.out = c.hub.bufs.get(need)
		c.out.b = c.out.b[:room] // the transport's, before the first frame
		c.frameStart = room
		c.queuedAt = c.hub.clock.Load()
	} else if n := len(c.out.b) + need; n > cap(c.out.b) {
		c.growOut(n)
	}
	ob := c.out
	if len(ob.b) > c.frameStart && len(ob.b)-c.frameStart+len(msg) > c.hub.cfg.MaxFrameSize {
		ob.cuts = append(ob.cuts, len(ob.b))
		ob.b = ob.b[:len(ob.b)+room]
		c.frameStart = len(ob.b)
	}
	if len(ob.b) > c.frameStart {
		ob.b = c.format.AppendSeparator(ob.b)
	}
	ob.b = append(ob.b, msg...)
	c.bufMsgs++
	c.hub.stats.messages.Add(1)
}

// growOut moves what is queued to a pooled buffer of the size class that
// holds n bytes, and gives the old one back. c.mu is held.
func (c *Client) growOut(n int) {
	// Double at least, so that a buffer past the classes still grows
	// geometrically.
	bigger := c.hub.bufs.get(max(n, 2*cap(c.out.b)))
	bigger.b = append(bigger.b, c.out.b...)
	bigger.cuts = append(bigger.cuts, c.out.cuts...)
	c.hub.bufs.put(c.out)
	c.out = bigger
}

// buffered is the number of bytes queued for the writer. c.mu is held.
func (c *Client) buffered() int {
	if c.out == nil {
		return 0
	}
	return len(c.out.b)
}

// startClosing puts the client in its closing state: nothing more is
// queued, requests are ignored, and the client is closed with code once
// its writer has sent what is queued, or after SlowGrace whatever
// happens. c.mu is held.
func (c *Client) startClosing(code codec.CloseCode, reason string) {
	c.closing = true
	c.closeCode, c.closeReason = code, reason
	c.closingSince = c.hub.clock.Load()
}

// writerState says whether a client is in the hands of the writer pool.
type writerState uint8

const (
	writerNone writerState = iota // not queued for a worker
	writerBusy                    // queued for a worker, or being written
)

// backlog is the number of bytes queued or being written. c.mu is held.
func (c *Client) backlog() int { return c.buffered() + c.inflight }

// ConflationCause is what switched a client to conflated delivery.
type ConflationCause int

// The causes of conflated delivery, Config's three limits.
const (
	// ConflatedForStaleness: the oldest message its socket has not taken
	// was older than MaxStaleness.
	ConflatedForStaleness ConflationCause = iota
	// ConflatedForBacklog: its backlog passed SoftLimit.
	ConflatedForBacklog
	// ConflatedForLag: its socket had not taken a frame for SoftLag.
	ConflatedForLag
)

// ConflationCauses is the number of ConflationCause values.
const ConflationCauses = 3

// String returns the cause's name: staleness, backlog or lag.
func (c ConflationCause) String() string {
	switch c {
	case ConflatedForStaleness:
		return "staleness"
	case ConflatedForBacklog:
		return "backlog"
	case ConflatedForLag:
		return "lag"
	}
	return fmt.Sprintf("ConflationCause(%d)", int(c))
}

// congested reports whether the client gets conflated delivery: its
// backlog passed the soft limit, its socket has not taken a frame for
// SoftLag, or the oldest message its socket has not taken is older than
// MaxStaleness. It stays so until a write ends with the backlog under half
// the soft limit and what is still queued under half MaxStaleness old.
// c.mu is held.
func (c *Client) congested() bool {
	if c.conflating {
		return true
	}
	cfg := &c.hub.cfg
	now := c.hub.clock.Load()
	switch {
	case c.backlog() > cfg.SoftLimit:
		c.startConflating(ConflatedForBacklog)
	case c.inflight > 0 && time.Duration(now-c.writeStart.Load()) > cfg.SoftLag:
		c.startConflating(ConflatedForLag)
	case c.staleness(now) > cfg.MaxStaleness:
		c.startConflating(ConflatedForStaleness)
	}
	return c.conflating
}

// staleness is the age at hub clock now of the oldest message queued that
// the socket has not taken: the oldest of the write in flight, else of
// the buffer; 0 when nothing is. c.mu is held.
func (c *Client) staleness(now int64) time.Duration {
	switch {
	case c.inflight > 0:
		return time.Duration(now - c.inflightAt)
	case c.out != nil:
		return time.Duration(now - c.queuedAt)
	}
	return 0
}

// startConflating switches the client to conflated delivery. c.mu is held.
func (c *Client) startConflating(cause ConflationCause) {
	c.conflating = true
	c.hub.stats.conflationStarts[cause].Add(1)
	c.hub.stats.conflating.Add(1)
}

// stopConflating switches the client back to delivering every change.
// c.mu is held.
func (c *Client) stopConflating() {
	c.conflating = false
	c.hub.stats.conflating.Add(-1)
}

// deliver hands one published change to one subscription. It runs on the
// publishing goroutine and never blocks on the network.
func (c *Client) deliver(s *subscription, ch *snapshot.Change, enc *encoder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.removed || s.parked || c.closed || c.closing {
		return
	}
	barsMoved := s.bars != nil && c.barsMoved(s, ch, enc)
	if s.sent != nil && ch.Next.Seq <= s.sent.Seq {
		if barsMoved {
			c.owesBarsLocked(s) // a SNAPSHOT raced ahead of the change; its bars did not
		}
		return
	}
	if s.snapDue {
		// The SNAPSHOT the writer sends when it drains carries this change.
		c.hub.stats.conflated.Add(1)
		if barsMoved {
			s.bars.due = true
		}
		return
	}
	conflating := c.congested()
	if s.sent == ch.Prev && s.pending == nil && s.interval == 0 && !conflating && s.barsInStep() {
		if m := ch.Mask & s.fields; m != 0 {
			c.queue(enc.delta(ch, c.format, m))
			c.wake()
		}
		if barsMoved {
			c.queueLiveBarLocked(s, ch, enc)
		}
		s.sent = ch.Next
		return
	}
	if barsMoved {
		s.bars.due = true
	}
	// Merge into the pending state: the writer sends one DELTA from what
	// the client holds to the newest state when the subscription is due.
	if s.pending != nil && ch.Next.Seq > s.pending.Seq {
		c.hub.stats.conflated.Add(1)
	}
	if s.pending == nil || ch.Next.Seq > s.pending.Seq {
		s.pending = ch.Next
	}
	c.markDirty(s)
	if s.sent == nil {
		return // the SUB in progress sends the snapshot
	}
	c.wakeWhenDue(s, s.interval > 0 && !conflating)
}

// wakeWhenDue has the writer send what s owes: at once, or, when paced
// (maxHz on a client that is not congested), once s is due. c.mu is held.
func (c *Client) wakeWhenDue(s *subscription, paced bool) {
	if paced && c.hub.mono(time.Now()) < s.nextDue {
		c.armTimer(c.hub.monoTime(s.nextDue))
		return
	}
	c.wake()
}

// park takes the subscriptions of a client whose socket has taken nothing
// for SoftLag off their topics' lists, so that publishing pays nothing for
// it while it is stuck: a conflated delivery still costs the publisher the
// client's lock, and a thousand stuck clients of 200 symbols each are 400
// of them per change of a 500-symbol feed. unpark puts them back when the
// socket takes a write. A subscription that has sent nothing yet (its
// SNAPSHOT put off or in progress) stays: there is nothing to measure its
// changes from. c.mu is held.
func (c *Client) park() {
	c.parked = true
	c.hub.stats.stuck.Add(1)
	for _, s := range c.subs {
		if !s.parked && !s.removed && s.sent != nil {
			s.parked = true
			s.list().remove(s)
		}
	}
}

// unpark puts a parked client's subscriptions back on their topics, and
// marks each whose symbol changed meanwhile for one DELTA to its newest
// state. The state is read after the subscription is back on the list, so
// a change is either in it or delivered after it. c.mu is held.
func (c *Client) unpark() {
	c.parked = false
	c.hub.stats.stuck.Add(-1)
	for _, s := range c.subs {
		if !s.parked {
			continue
		}
		s.parked = false
		s.list().add(s)
		if s.bars != nil {
			// A SNAPSHOT while parked may have taken s past the changes
			// it did not see: the writer sends what moved, if anything.
			s.bars.due = true
			c.markDirty(s)
		}
		st := s.sym.Load()
		base := s.sent
		if s.pending != nil {
			base = s.pending
		}
		if st.Seq <= base.Seq {
			continue
		}
		// Every update since base merges into one DELTA (seqs of a
		// symbol are consecutive).
		merged := st.Seq - base.Seq
		if s.pending == nil {
			merged--
		}
		c.hub.stats.conflated.Add(merged)
		s.pending = st
		c.markDirty(s)
	}
}

// markDirty lists s for the writer's next flushDirty. c.mu is held.
func (c *Client) markDirty(s *subscription) {
	if !s.dirty {
		s.dirty = true
		c.dirty = append(c.dirty, s)
	}
}

// flushDirty queues one merged DELTA for every pending subscription that is
// due, and one SNAPSHOT of the newest state for every snapshot put off
// while the client was congested; it arms the timer for the earliest
// subscription that is not due. It stops once the buffer holds more than
// the soft limit, leaving the rest for the writer's next round, so that
// the backlog stays within the soft limit and one message. c.mu is held.
func (c *Client) flushDirty(now time.Time) {
	if len(c.dirty) == 0 {
		return
	}
	var next int64 // the earliest nextDue not reached, on Hub.mono; 0: none
	nowMono := c.hub.mono(now)
	keep := c.dirty[:0]
	for i, s := range c.dirty {
		if c.buffered() > c.hub.cfg.SoftLimit {
			keep = append(keep, c.dirty[i:]...)
			break
		}
		switch {
		case s.removed:
			s.dirty, s.snapDue = false, false
		case s.snapDue:
			c.queueSnapshot(s, now)
			s.snapDue = false
			s.dirty = false
		case s.bars != nil && s.bars.historyDue:
			// A BARS put off by congestion is a reply, not paced by
			// maxHz; what is pending goes in the next round.
			c.queueHistoryLocked(s)
			keep = append(keep, s)
		case s.pending == nil && !s.barsDue():
			s.dirty = false
		case s.sent == nil:
			keep = append(keep, s)
		case s.interval > 0 && nowMono < s.nextDue:
			keep = append(keep, s)
			if next == 0 || s.nextDue < next {
				next = s.nextDue
			}
		default:
			if s.pending != nil {
				if m := s.sent.Diff(s.pending) & s.fields; m != 0 {
					c.scratch = c.format.AppendState(c.scratch[:0], codec.OpDelta, s.sym.ID, s.pending.Seq, m, &s.pending.Values)
					c.queue(c.scratch)
					if s.interval > 0 {
						s.nextDue = nowMono + int64(s.interval)
					}
				}
				s.sent = s.pending
				s.pending = nil
			}
			if s.bars != nil && c.flushBarsLocked(s) && s.interval > 0 {
				s.nextDue = nowMono + int64(s.interval)
			}
			s.dirty = false
		}
	}
	clear(c.dirty[len(keep):])
	c.dirty = keep
	if next != 0 {
		c.armTimer(c.hub.monoTime(next))
	}
}

// armTimer makes sure the writer runs at t. c.mu is held.
func (c *Client) armTimer(t time.Time) {
	if c.timer != nil && !c.timerAt.IsZero() && !c.timerAt.After(t) {
		return
	}
	c.timerAt = t
	d := time.Until(t)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.onTimer)
		return
	}
	c.timer.Reset(d)
}

func (c *Client) onTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timerAt = time.Time{}
	if len(c.dirty) > 0 {
		c.wake()
	}
}

func (c *Client) writeFrames(out *outBuf) error {
	from := 0
	for i := 0; i <= len(out.cuts); i++ {
		to := len(out.b)
		if i < len(out.cuts) {
			to = out.cuts[i]
		}
		if to == from {
			continue
		}
		if err := c.t.WriteFrame(out.b[from:to]); err != nil {
			return err
		}
		// The socket took a frame: a stuck write is one that takes none,
		// not a long buffer that a slow link takes frame by frame.
		c.writeStart.Store(c.hub.clock.Load())
		c.hub.stats.frames.Add(1)
		c.hub.stats.bytes.Add(uint64(to - from - int(c.room)))
		from = to
	}
	return nil
}

// tick runs on the hub's heartbeat goroutine: it sends a HEARTBEAT to an
// idle client and closes one that stayed too long over its hard limit or
// whose socket has not taken a write for SlowGrace, or that has been
// closing (CloseAfterFlush) for SlowGrace.
func (c *Client) tick(now time.Time) {
	cfg := &c.hub.cfg
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.closing {
		expired := time.Duration(now.UnixNano()-c.closingSince) > cfg.SlowGrace
		code, reason := c.closeCode, c.closeReason
		c.mu.Unlock()
		if expired {
			c.close(code, reason)
		}
		return
	}
	slow := false
	if c.backlog() > cfg.HardLimit {
		if c.overSince.IsZero() {
			c.overSince = now
		}
		slow = now.Sub(c.overSince) > cfg.SlowGrace
	} else {
		c.overSince = time.Time{}
	}
	// writeStart and lastWrite come from the hub's clock, which lags the
	// real time by less than a tick: a write is declared stuck only after
	// SlowGrace for sure, and after a data frame a HEARTBEAT may come up to
	// one tick early, never late.
	nowNs := now.UnixNano()
	if c.inflight > 0 && time.Duration(nowNs-c.writeStart.Load()) > cfg.SlowGrace+c.hub.period {
		slow = true
	}
	if !slow && !c.parked && c.inflight > 0 && time.Duration(nowNs-c.writeStart.Load()) > cfg.SoftLag {
		c.park()
	}
	idle := time.Duration(nowNs - c.lastWrite)
	if !slow && c.wstate != writerBusy && c.out == nil && idle >= cfg.Heartbeat {
		c.scratch = c.format.AppendHeartbeat(c.scratch[:0], now.UnixMicro())
		c.queue(c.scratch)
		c.lastWrite = nowNs
		c.wake()
	} else if c.wstate != writerBusy && c.out == nil && idle >= cfg.Heartbeat/2 {
		// An idle connection gives its scratch buffer back: with tens of
		// thousands of quiet subscribers it is a large part of the
		// memory, and a busy connection never gets here.
		c.scratch = nil
	}
	c.mu.Unlock()
	if slow {
		c.close(codec.CloseSlowConsumer, "slow consumer")
	}
}

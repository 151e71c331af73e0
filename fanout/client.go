package fanout

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// Transport is a client's connection as the engine sees it.
type Transport interface {
	// WriteFrame writes one whole frame: a binary frame for codec.Binary,
	// a text frame for codec.JSON. p begins with the client's FrameRoom
	// bytes (ClientOptions), which the transport may overwrite with its
	// own header; the frame's messages follow. It may block; p is valid
	// only during the call.
	WriteFrame(p []byte) error
	// Close closes the connection with a WebSocket close code and reason,
	// unblocking a WriteFrame in progress. It may be called more than once.
	Close(code codec.CloseCode, reason string)
}

// ClientOptions describe a connecting client.
type ClientOptions struct {
	// Format is the connection's encoding.
	Format codec.Format
	// Entitled reports whether the client may receive sym; nil allows
	// every symbol.
	Entitled func(sym string) bool
	// Admit is asked before each request from the client is handled,
	// malformed ones included; a false result answers the request with
	// ERROR 429 instead. It may close the client. nil admits every request.
	Admit func() bool
	// Authenticate takes the token of an AUTH request: it returns the
	// token's expiry (zero for none) once it has made it the connection's
	// credential, so that Entitled answers by the new grant from then on,
	// or an error that the client gets as ERROR 401. nil takes every
	// AUTH without reading it (a node that does not authenticate).
	Authenticate func(token []byte) (expires time.Time, err error)
	// FrameRoom is how many bytes the transport wants free in front of
	// each frame it is given, at most MaxFrameRoom: it writes its header
	// there and the frame goes to the socket in one write, without a copy.
	FrameRoom int
}

// MaxFrameRoom is the most room a transport may ask for in front of a
// frame: a WebSocket header from the server (no mask) takes at most 10
// bytes.
const MaxFrameRoom = 10

// Client is one connected client: its protocol session, subscriptions and
// outbound buffer. Its methods are safe for concurrent use.
type Client struct {
	// The fields that every delivery (the publisher) and every write (a
	// worker) touch come first, in the struct's first two cache lines:
	// at 10 000 connections each line touched is a cache miss
	// (TestClientHotFields).
	hub    *Hub
	t      Transport
	mu     sync.Mutex
	format codec.Format
	closed bool
	// closing: the client is closed with closeCode once what is queued is
	// written (CloseAfterFlush, or a backlog over the hard limit);
	// closingSince is the hub clock when it began.
	closing bool
	// parked: the client's socket took nothing for SoftLag and its
	// subscriptions are off their topics' lists (park).
	parked     bool
	conflating bool
	wstate     writerState
	room       uint8 // ClientOptions.FrameRoom
	// out holds the messages waiting for the writer, nil when none do
	// (outBuf).
	out        *outBuf
	bufMsgs    int // how many messages out holds
	frameStart int // where the frame being filled begins in out
	inflight   int // bytes handed to the transport and not yet written
	// queuedAt and inflightAt are the hub clock (unix ns) when the oldest
	// message of out, and of the write in flight, was queued (staleness).
	queuedAt, inflightAt int64
	lastWrite            int64 // hub clock (unix ns) when the last write ended
	// writeStart is the hub clock (unix ns) when the write in flight began
	// or last had a frame taken; the writer stores it without c.mu.
	writeStart atomic.Int64
	dirty      []*subscription

	entitled func(string) bool
	admit    func() bool
	authn    func([]byte) (time.Time, error)

	subs subSet
	// held are the names without data the client holds in the store, at
	// most Config.MaxReserved; idle lists those no subscription uses,
	// oldest first, to forget first.
	held         map[string]*heldName
	idle         list.List
	scratch      []byte
	overSince    time.Time
	timer        *time.Timer
	timerAt      time.Time
	closeCode    codec.CloseCode
	closeReason  string
	closingSince int64

	cmd codec.Command // used only by the reading goroutine (HandleFrame)
}

// Register connects a new client: it queues HELLO (and STATUS when the feed
// is not live) and returns the client. The caller feeds it every frame it
// receives with HandleFrame and calls Close when the connection ends.
func (h *Hub) Register(t Transport, opts ClientOptions) *Client {
	c := &Client{
		hub:       h,
		t:         t,
		format:    opts.Format,
		entitled:  opts.Entitled,
		admit:     opts.Admit,
		authn:     opts.Authenticate,
		room:      uint8(min(max(opts.FrameRoom, 0), MaxFrameRoom)),
		lastWrite: h.clock.Load(),
	}
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	c.mu.Lock()
	c.scratch = c.format.AppendHello(c.scratch[:0], h.cfg.ServerID, int(h.cfg.Heartbeat/time.Millisecond))
	c.queue(c.scratch)
	if st := h.status.Load(); st.state != codec.StatusLive {
		c.scratch = c.format.AppendStatus(c.scratch[:0], st.state, st.detail)
		c.queue(c.scratch)
	}
	c.wake()
	c.mu.Unlock()
	h.clientsMu.Lock()
	h.clients[c] = struct{}{}
	h.clientsMu.Unlock()
	h.stats.clients.Add(1)
	return c
}

// Format returns the client's encoding.
func (c *Client) Format() codec.Format { return c.format }

// Close ends the client's session: its subscriptions are dropped and the
// transport is closed with code and reason. It is idempotent.
func (c *Client) Close(code codec.CloseCode, reason string) { c.close(code, reason) }

// CloseAfterFlush ends the client's session as Close does, once the writer
// has sent what is already queued (the replies the client is owed, such as
// the ERROR 429s before a flood close). Nothing new is queued or handled
// meanwhile, and a client whose socket does not take the rest is closed
// anyway after SlowGrace.
func (c *Client) CloseAfterFlush(code codec.CloseCode, reason string) {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	c.startClosing(code, reason)
	if c.wstate == writerBusy {
		c.mu.Unlock() // the writer closes the client when it has drained
		return
	}
	c.mu.Unlock()
	c.close(code, reason) // nothing is queued: a busy writer is the only one with work
}

func (c *Client) close(code codec.CloseCode, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.parked {
		c.parked = false
		c.hub.stats.stuck.Add(-1)
	}
	if c.conflating {
		c.stopConflating()
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	subs := make([]*subscription, 0, len(c.subs))
	release := make([]*snapshot.Symbol, 0, len(c.held))
	for _, h := range c.held {
		release = append(release, h.sym)
	}
	dropped := c.bufMsgs + len(c.dirty)
	for _, s := range c.subs {
		s.removed = true
		subs = append(subs, s)
		if s.parked && !s.dirty && s.sym.Load().Seq > s.sent.Seq {
			dropped++ // the DELTA it was owed when its client got stuck
		}
	}
	// What never reached the socket is counted: a slow consumer's backlog
	// and the deltas its subscriptions still had pending.
	if dropped > 0 {
		c.hub.stats.dropped.Add(uint64(dropped))
	}
	c.subs = nil
	c.held = nil
	c.dirty = nil
	if c.out != nil {
		c.hub.bufs.put(c.out)
		c.out, c.bufMsgs = nil, 0
	}
	c.mu.Unlock()

	for _, s := range subs {
		s.list().remove(s)
	}
	// After the topics: a released name may be forgotten and its sid
	// given to another, whose topic must not hold these subscriptions.
	for _, sym := range release {
		c.hub.store.Release(sym)
	}
	c.hub.stats.subs.Add(-int64(len(subs)))
	c.hub.clientsMu.Lock()
	delete(c.hub.clients, c)
	c.hub.clientsMu.Unlock()
	c.hub.stats.clients.Add(-1)
	if code == codec.CloseSlowConsumer {
		c.hub.stats.slow.Add(1)
	}
	c.t.Close(code, reason)
}

// HandleFrame handles one frame received from the client: every message
// in it, in order. Bad messages get an ERROR; the session goes on.
func (c *Client) HandleFrame(frame []byte) {
	c.format.DecodeCommands(frame, &c.cmd, func(cmd *codec.Command, err error) {
		if c.ending() {
			return // a closing client's requests get no answer
		}
		var id uint64
		if err == nil {
			id = cmd.ID
		} else if ce, ok := err.(*codec.CommandError); ok {
			id = ce.ID
		}
		if c.admit != nil && !c.admit() {
			c.sendError(id, 429, "too many requests", nil)
			return
		}
		if err != nil {
			c.sendError(id, 400, err.Error(), nil)
			return
		}
		switch cmd.Op {
		case codec.OpSub:
			c.subscribe(cmd.ID, cmd.Syms, cmd.Opts)
		case codec.OpUnsub:
			c.unsubscribe(cmd.ID, cmd.Syms)
		case codec.OpSnap:
			c.resnapshot(cmd.ID, cmd.Syms)
		case codec.OpPing:
			c.mu.Lock()
			c.scratch = c.format.AppendPong(c.scratch[:0], cmd.ID, cmd.T, time.Now().UnixMicro())
			c.queue(c.scratch)
			c.wake()
			c.mu.Unlock()
		case codec.OpAuth:
			c.renew(cmd.ID, cmd.Token)
		}
	})
	// The names decoded alias the frame, and a large SUB's list would stay
	// with the connection for good (0.85 KB for 20 symbols): only a short
	// one is kept for the next frame, emptied.
	if cap(c.cmd.Syms) > keptSyms {
		c.cmd.Syms = nil
	} else {
		clear(c.cmd.Syms[:cap(c.cmd.Syms)])
	}
}

// keptSyms bounds the symbol list a client keeps from one frame to the
// next for reuse.
const keptSyms = 4

// ending reports whether the client is closed or closing.
func (c *Client) ending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.closing
}

// Subscribe subscribes the client as a SUB with request id would; the
// server uses id 0 for the subscription made at connect (?symbols=).
func (c *Client) Subscribe(id uint64, syms []string, opts codec.SubOptions) {
	b := make([][]byte, len(syms))
	for i, s := range syms {
		b[i] = []byte(s)
	}
	c.subscribe(id, b, opts)
}

// subRefusals are the symbols of one SUB refused, by reason; their ERRORs
// go out in this order, before the ACK.
type subRefusals struct {
	invalid     []string // 400
	notEntitled []string // 403
	overLimit   []string // 413: over MaxSubscriptions or MaxReserved
	full        []string // 503: the store's reserved table is full
	// overSubs and overHeld say which limits overLimit hit.
	overSubs, overHeld bool
}

// queueLocked queues the ERRORs of the refusals. c.mu is held.
func (r *subRefusals) queueLocked(c *Client, id uint64) {
	cfg := &c.hub.cfg
	if len(r.invalid) > 0 {
		c.queueError(id, 400, "invalid symbol", r.invalid)
	}
	if len(r.notEntitled) > 0 {
		c.queueError(id, 403, "not entitled", r.notEntitled)
	}
	if len(r.overLimit) > 0 {
		var msg string
		switch {
		case r.overSubs && r.overHeld:
			msg = fmt.Sprintf("too many subscriptions (limit %d) or symbols without data (limit %d)", cfg.MaxSubscriptions, cfg.MaxReserved)
		case r.overSubs:
			msg = fmt.Sprintf("too many subscriptions (limit %d)", cfg.MaxSubscriptions)
		default:
			msg = fmt.Sprintf("too many symbols without data (limit %d)", cfg.MaxReserved)
		}
		c.queueError(id, 413, msg, r.overLimit)
	}
	if len(r.full) > 0 {
		c.queueError(id, 503, "symbol table full", r.full)
	}
}

// subPick is one symbol a SUB accepted: an existing subscription, whose
// options it replaces, or a new one (sub nil until it joins its topic).
type subPick struct {
	sym *snapshot.Symbol
	sub *subscription
}

// subscribe handles a SUB: it sorts the names into refusals and picks,
// makes the new subscriptions join their topics, then answers.
func (c *Client) subscribe(id uint64, names [][]byte, opts codec.SubOptions) {
	bars, err := c.hub.barRequestOf(&opts)
	if err != nil {
		c.sendError(id, 400, "bad request: "+err.Error(), nil) // the whole SUB: nothing changes
		return
	}
	picks, refused, ok := c.pickSymbols(names)
	if !ok {
		return // closed meanwhile
	}
	c.joinTopics(picks)
	c.answerSub(id, picks, &refused, opts, &bars)
}

// pickSymbols checks each name — valid, entitled, within the limits — and
// finds or reserves its symbol. A name the feed has not sent is reserved,
// apart from the feed's symbols and bounded per client and in all:
// subscriptions never create feed state. ok is false when the client
// closed meanwhile.
func (c *Client) pickSymbols(names [][]byte) (picks []subPick, refused subRefusals, ok bool) {
	cfg := &c.hub.cfg
	seen := make(map[string]struct{}, len(names))
	picks = make([]subPick, 0, len(names))
	var swept bool
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, refused, false
	}
	count := len(c.subs)
	c.mu.Unlock()
	for _, n := range names {
		if !codec.ValidSymbol(n) {
			refused.invalid = append(refused.invalid, string(n))
			continue
		}
		if _, dup := seen[string(n)]; dup {
			continue
		}
		seen[string(n)] = struct{}{}
		if c.entitled != nil && !c.entitled(string(n)) {
			refused.notEntitled = append(refused.notEntitled, string(n))
			continue
		}
		c.mu.Lock()
		existing := c.subs.get(string(n))
		c.mu.Unlock()
		if existing != nil {
			picks = append(picks, subPick{sym: existing.sym, sub: existing})
			continue
		}
		if count >= cfg.MaxSubscriptions {
			refused.overLimit = append(refused.overLimit, string(n))
			refused.overSubs = true
			continue
		}
		sym := c.hub.store.Lookup(n)
		if sym == nil {
			var err error
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return nil, refused, false
			}
			sym, err = c.holdLocked(n, &swept)
			c.mu.Unlock()
			switch {
			case errors.Is(err, errHeldFull):
				refused.overLimit = append(refused.overLimit, string(n))
				refused.overHeld = true
				continue
			case err != nil:
				refused.full = append(refused.full, string(n))
				continue
			}
		}
		count++
		picks = append(picks, subPick{sym: sym})
	}
	return picks, refused, true
}

// joinTopics makes each new pick a subscription in its symbol's topic.
// New subscriptions join their topic before their snapshot is taken: a
// change that lands in between is then either in the snapshot or
// delivered after it, never lost. They join it before the client lists
// them, so that a close in between cannot leave one behind in its topic.
func (c *Client) joinTopics(picks []subPick) {
	var added int64
	for i := range picks {
		p := &picks[i]
		if p.sub != nil {
			continue
		}
		t := c.hub.topic(p.sym.ID, true)
		s := &subscription{client: c, sym: p.sym}
		t.add(s)
		c.mu.Lock()
		old := c.subs.get(p.sym.Name)
		if c.closed || old != nil {
			// The client closed (and released what it held), or a
			// concurrent SUB of the same symbol won the race.
			s.removed = true
			c.mu.Unlock()
			t.remove(s)
			p.sub = old
			continue
		}
		c.subs.put(s)
		c.mu.Unlock()
		p.sub = s
		added++
	}
	c.hub.stats.subs.Add(added)
}

// answerSub queues a SUB's answer: the ERRORs of its refusals, the ACK of
// its picks, then their SNAPSHOTs (unless snap is false for a
// subscription that already has its state), each with its BARS when bars
// asks for history. A pick without a subscription is left only by a
// close, which the closed check sees first.
func (c *Client) answerSub(id uint64, picks []subPick, refused *subRefusals, opts codec.SubOptions, bars *barRequest) {
	interval := time.Duration(0)
	if opts.MaxHz > 0 {
		interval = time.Duration(float64(time.Second) / opts.MaxHz)
	}
	acks := make([]codec.SymbolID, 0, len(picks))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	refused.queueLocked(c, id)
	for _, p := range picks {
		if !p.sub.removed {
			acks = append(acks, codec.SymbolID{Sym: p.sym.Name, SID: p.sym.ID})
		}
	}
	c.scratch = c.format.AppendAck(c.scratch[:0], id, acks)
	c.queue(c.scratch)
	now := time.Now()
	for _, p := range picks {
		s := p.sub
		if s.removed {
			continue
		}
		s.fields = opts.Fields
		s.interval = interval
		c.setBarsLocked(s, bars)
		if opts.Snap || s.sent == nil {
			c.snapshotLocked(s, opts.Snap, now)
		}
		if !opts.Snap {
			c.historyAfterAckLocked(s)
		}
	}
	c.wake()
}

// snapshotLocked brings s up to the symbol's current state: with send, a
// SNAPSHOT is queued; without, the client is taken to hold that state
// already (SUB with snap false). A congested client's SNAPSHOT is put off
// until its writer drains, and then carries the newest state: a client
// that asks again and again for snapshots it does not read gets one per
// symbol, not a copy per request.
func (c *Client) snapshotLocked(s *subscription, send bool, now time.Time) {
	if send && c.congested() {
		s.snapDue = true
		s.pending = nil
		c.markDirty(s)
		return
	}
	if send {
		c.queueSnapshot(s, now)
		return
	}
	c.sentLocked(s, s.sym.Load(), now)
}

// queueSnapshot queues the SNAPSHOT of the symbol's current state for s.
// c.mu is held.
func (c *Client) queueSnapshot(s *subscription, now time.Time) {
	st := s.sym.Load()
	c.scratch = c.format.AppendState(c.scratch[:0], codec.OpSnapshot, s.sym.ID, st.Seq, st.Mask&s.fields, &st.Values)
	c.queue(c.scratch)
	c.sentLocked(s, st, now)
	if s.bars != nil {
		c.afterSnapshotLocked(s)
	}
}

// sentLocked records that the client holds state st of s from now on: a
// merged DELTA pending up to st is owed no more, and a paced subscription
// is due again one interval after now. c.mu is held.
func (c *Client) sentLocked(s *subscription, st *snapshot.State, now time.Time) {
	s.sent = st
	if s.pending != nil && s.pending.Seq <= st.Seq {
		s.pending = nil
	}
	if s.interval > 0 {
		s.nextDue = c.hub.mono(now) + int64(s.interval)
	}
}

// unsubscribe drops the named subscriptions. Symbols not subscribed are
// ignored, as the contract says; a malformed one is still a 400, so that a
// client bug does not pass for a successful UNSUB.
func (c *Client) unsubscribe(id uint64, names [][]byte) {
	var gone []*subscription
	var invalid []string
	c.mu.Lock()
	for _, n := range names {
		if !codec.ValidSymbol(n) {
			invalid = append(invalid, string(n))
			continue
		}
		if s := c.subs.get(string(n)); s != nil {
			s.removed = true
			s.pending = nil
			c.subs.remove(s.sym.Name)
			c.idleLocked(s.sym.Name)
			gone = append(gone, s)
		}
	}
	if len(invalid) > 0 {
		c.queueError(id, 400, "invalid symbol", invalid)
		c.wake()
	}
	c.mu.Unlock()
	for _, s := range gone {
		s.list().remove(s)
	}
	c.hub.stats.subs.Add(-int64(len(gone)))
}

func (c *Client) resnapshot(id uint64, names [][]byte) {
	var missing []string
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		s := c.subs.get(string(n))
		if s == nil {
			missing = append(missing, string(n))
			continue
		}
		c.snapshotLocked(s, true, now)
	}
	if len(missing) > 0 {
		c.queueError(id, 400, "not subscribed", missing)
	}
	c.wake()
}

func (c *Client) sendError(id uint64, code int, msg string, syms []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.queueError(id, code, msg, syms)
	c.wake()
}

// queueError counts and queues an ERROR. c.mu is held.
func (c *Client) queueError(id uint64, code int, msg string, syms []string) {
	c.hub.countError(code)
	c.scratch = c.format.AppendError(c.scratch[:0], id, code, msg, syms)
	c.queue(c.scratch)
}

func (c *Client) sendStatus(state, detail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scratch = c.format.AppendStatus(c.scratch[:0], state, detail)
	c.queue(c.scratch)
	c.wake()
}

package client

import (
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/codec"
)

// Hello is what the server announced in HELLO.
type Hello struct {
	Version  int
	ServerID string
	// Heartbeat is the interval after which an idle server sends a
	// HEARTBEAT; 0 when it announced none.
	Heartbeat time.Duration
	// FieldNames is the server's field table: field i of SNAPSHOT and DELTA
	// is FieldNames[i]. It may be longer than the v1 table.
	FieldNames []string
}

// ServerError is an ERROR message from the server.
type ServerError struct {
	ID   uint64   // the request that caused it; 0 when none did
	Code int      // HTTP-like: 400, 401, 403, 404, 413, 429, 500, 503
	Text string   // human-readable message
	Syms []string // the symbols concerned, if any
}

// Error implements error: the code, the request id, the message and the symbols concerned.
func (e *ServerError) Error() string {
	s := fmt.Sprintf("server error %d (request %d): %s", e.Code, e.ID, e.Text)
	if len(e.Syms) > 0 {
		s += " [" + strings.Join(e.Syms, " ") + "]"
	}
	return s
}

// ViolationKind classifies a breach of the protocol contract.
type ViolationKind uint8

// The kinds of violation a Book detects.
const (
	// ViolationHello: the first message is not HELLO, HELLO comes twice, or
	// it announces another version or a field table that is not an
	// extension of v1's.
	ViolationHello ViolationKind = iota + 1
	// ViolationBadFrame: a frame that does not decode.
	ViolationBadFrame
	// ViolationUnknownSID: a SNAPSHOT or DELTA whose sid no ACK announced.
	ViolationUnknownSID
	// ViolationNotSubscribed: a SNAPSHOT or DELTA for a symbol that is not
	// subscribed (its UNSUB was processed, or it was never subscribed).
	ViolationNotSubscribed
	// ViolationDeltaBeforeSnapshot: a DELTA after a SUB's ACK but before the
	// SNAPSHOT that the SUB asked for.
	ViolationDeltaBeforeSnapshot
	// ViolationSeq: a DELTA whose seq is not above the previous message's,
	// or a SNAPSHOT whose seq is below it.
	ViolationSeq
	// ViolationExtraSnapshot: a SNAPSHOT that no SUB or SNAP asked for.
	ViolationExtraSnapshot
	// ViolationAck: an ACK of no pending SUB, or a SUB answered by neither
	// ACK nor ERROR before the reply to a later request.
	ViolationAck
	// ViolationSID: a symbol's sid changed, or one sid names two symbols.
	ViolationSID
	// ViolationBars: a breach of guarantee 5 (PROTOCOL.md §7): a BARS
	// before its SNAPSHOT or that no SUB asked for, a DELTA or BAR before
	// the BARS, a BAR whose t or seq went back, bars out of order, or bars
	// of an interval the subscription does not ask for.
	ViolationBars
)

var violationNames = [...]string{
	ViolationHello:               "hello",
	ViolationBadFrame:            "bad frame",
	ViolationUnknownSID:          "unknown sid",
	ViolationNotSubscribed:       "not subscribed",
	ViolationDeltaBeforeSnapshot: "delta before snapshot",
	ViolationSeq:                 "seq",
	ViolationExtraSnapshot:       "extra snapshot",
	ViolationAck:                 "ack",
	ViolationSID:                 "sid",
	ViolationBars:                "bars",
}

// String names the kind of violation.
func (k ViolationKind) String() string {
	if int(k) < len(violationNames) && violationNames[k] != "" {
		return violationNames[k]
	}
	return fmt.Sprintf("ViolationKind(%d)", k)
}

// Violation is one breach of the contract, as the Book saw it.
type Violation struct {
	Kind    ViolationKind
	Op      codec.Op // op of the offending message
	Symbol  string   // "" when it names none, or an unknown sid
	SID     uint32   // SNAPSHOT, DELTA, ACK
	Seq     uint64   // SNAPSHOT, DELTA: the message's seq
	PrevSeq uint64   // ViolationSeq: the seq of the symbol's previous message
	Detail  string   // what went wrong, in words
}

// String describes the violation for people.
func (v Violation) String() string {
	s := v.Kind.String()
	if v.Symbol != "" {
		s += " " + v.Symbol
	}
	return s + ": " + v.Detail
}

// MaxViolations bounds the violations a Book keeps, so that a broken server
// cannot make a benchmark with thousands of connections grow without bound;
// Stats.Violations still counts them all.
const MaxViolations = 1000

// Entry is the rebuilt state of one symbol.
type Entry struct {
	Seq     uint64
	Mask    codec.FieldMask          // fields that have a value
	Values  [codec.NumFields]float64 // by field index; valid where Mask has the field
	Updated time.Time                // when the last SNAPSHOT or DELTA for it was fed
}

// Value returns field f's value and whether it has one.
func (e *Entry) Value(f int) (float64, bool) {
	if f < 0 || f >= codec.NumFields || !e.Mask.Has(f) {
		return 0, false
	}
	return e.Values[f], true
}

// Stats are a Book's counters.
type Stats struct {
	Frames   uint64              // frames fed
	Bytes    uint64              // bytes of those frames, after decompression
	Messages map[codec.Op]uint64 // messages decoded, by op, unknown ops included
	// Late counts the SNAPSHOTs and DELTAs that arrived for a symbol whose
	// UNSUB the server had not processed yet: expected, and ignored.
	Late       uint64
	Errors     map[int]uint64 // ERROR messages by code
	LastError  *ServerError   // the last ERROR, nil when none came
	Violations uint64         // every violation, including those past MaxViolations
}

// phase is where a symbol stands in its subscription's life.
type phase uint8

const (
	// idle: not subscribed, nothing expected.
	idle phase = iota
	// pending: a SUB was sent and its ACK has not come.
	pending
	// live: subscribed; its messages are applied and checked.
	live
	// leaving: an UNSUB was sent and the server has not processed it yet:
	// its messages may still come and are ignored.
	leaving
)

// symbol is the Book's record of one symbol. It outlives unsubscriptions:
// the sid and the last seq hold for the life of the connection.
type symbol struct {
	name    string
	sid     uint32
	hasSID  bool
	phase   phase
	subID   uint64 // the last SUB that named it
	unsubID uint64 // the UNSUB that made it leaving

	// awaitingSnap is set by the ACK of a SUB that asked for a SNAPSHOT:
	// until it comes, a DELTA is a violation.
	awaitingSnap bool
	// pendingSnaps counts the SNAPSHOTs asked for and not received yet.
	pendingSnaps int

	hasSeq bool // seq holds the seq of the last message, in any subscription
	seq    uint64

	hasState bool // a SNAPSHOT or DELTA was applied in this subscription
	mask     codec.FieldMask
	values   [codec.NumFields]float64
	updated  time.Time

	// The subscription's bars: barsInterval is its SUB's bars option (""
	// for none) and barsHistory whether it asked for a BARS.
	barsInterval string
	barsHistory  bool
	// awaitingBars: a BARS is owed (after the SNAPSHOT, or the ACK with
	// snap false) before any DELTA or BAR.
	awaitingBars bool
	hasBarSeq    bool // barSeq holds the seq of the last BARS or BAR
	barSeq       uint64
	bars         []codec.Bar // the bars held, oldest first
}

// drop forgets the state of s's subscription; the sid and seq stay.
func (b *Book) drop(s *symbol) {
	b.await(s, false)
	s.pendingSnaps = 0
	s.hasState, s.mask, s.values, s.updated = false, 0, [codec.NumFields]float64{}, time.Time{}
	s.barsInterval, s.barsHistory, s.awaitingBars = "", false, false
	s.hasBarSeq, s.barSeq, s.bars = false, 0, nil
}

// await sets whether s waits for the SNAPSHOT of its SUB, and keeps count of
// the symbols that wait, for Ready.
func (b *Book) await(s *symbol, wait bool) {
	switch {
	case wait && !s.awaitingSnap:
		b.awaiting++
	case !wait && s.awaitingSnap:
		b.awaiting--
	}
	s.awaitingSnap = wait
}

type subRequest struct {
	snap    bool
	errored bool // an ERROR answered it: the SUB may have failed to decode, so no ACK is owed
	syms    []string
	bars    string // the bars option
	history bool   // barCount or barSince
}

type unsubRequest struct {
	id   uint64
	syms []string
}

// numOps is the size of the array that counts messages by op: every op of
// v1 is below it; higher ones go to a map.
const numOps = 32

// A Book rebuilds the state of every symbol of one connection from the
// server's messages, and checks them against the contract. Messages are
// given to it with Feed or Apply, the requests sent with NoteSub, NoteUnsub
// and NoteSnap: the checks depend on what was asked for. Violations are
// recorded, never fatal.
//
// All methods are safe for concurrent use, except that Feed must not be
// called concurrently with itself. Create a Book with NewBook.
type Book struct {
	// log reports violations when set; the Book of a Conn uses the
	// connection's logger, a Book made by NewBook logs nothing.
	log *slog.Logger

	// scratch is Feed's decoded message, reused from frame to frame.
	scratch codec.Message

	mu         sync.Mutex
	hello      *Hello
	noHello    bool // a message came before HELLO (reported once)
	status     string
	detail     string
	byName     map[string]*symbol
	bySID      map[uint32]*symbol
	subs       map[uint64]*subRequest // SUBs whose ACK has not come
	unsubs     []unsubRequest         // UNSUBs not known to be processed, in id order
	frames     uint64
	bytes      uint64
	late       uint64
	ops        [numOps]uint64
	highOps    map[codec.Op]uint64
	errs       map[int]uint64
	lastErr    *ServerError
	nViolation uint64
	violations []Violation
	awaiting   int // symbols whose awaitingSnap is set

	// skipped is read without mu (Skipped), for a per-message callback.
	skipped atomic.Uint64
}

// NewBook returns an empty Book.
func NewBook() *Book {
	return &Book{
		byName: make(map[string]*symbol),
		bySID:  make(map[uint32]*symbol),
		subs:   make(map[uint64]*subRequest),
		errs:   make(map[int]uint64),
	}
}

// NoteSub records that SUB id was sent for syms with opts (nil for the
// defaults). Call it before sending, so that the reply cannot come first.
func (b *Book) NoteSub(id uint64, syms []string, opts *codec.SubOptions) {
	b.mu.Lock()
	defer b.mu.Unlock()
	req := &subRequest{snap: opts == nil || opts.Snap, syms: slices.Clone(syms)}
	if opts != nil {
		req.bars, req.history = opts.Bars, opts.WantsBarHistory()
	}
	b.subs[id] = req
	for _, name := range syms {
		s := b.symbol(name)
		s.subID = id
		if s.phase == idle {
			s.phase = pending
		}
	}
}

// NoteUnsub records that UNSUB id was sent for syms. Their state is dropped
// at once; messages for them are ignored until the server is known to have
// processed the UNSUB (see the package documentation), and are violations
// after that.
func (b *Book) NoteUnsub(id uint64, syms []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unsubs = append(b.unsubs, unsubRequest{id: id, syms: slices.Clone(syms)})
	for _, name := range syms {
		s := b.byName[name]
		if s == nil || s.phase == idle {
			continue
		}
		s.phase, s.unsubID = leaving, id
		b.drop(s)
	}
}

// NoteSnap records that SNAP id was sent for syms: each subscribed one is
// owed a SNAPSHOT, including one whose UNSUB and later SUB are both still
// on their way.
func (b *Book) NoteSnap(id uint64, syms []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, name := range syms {
		s := b.byName[name]
		if s != nil && (s.phase == pending || s.phase == live || s.phase == leaving && s.subID > s.unsubID) {
			s.pendingSnaps++
		}
	}
}

// Feed decodes every message of one frame, received at time at, applies
// each and then hands it to fn (which may be nil). The message passed to fn
// is reused: it is valid only during the call. A frame that does not decode
// is a violation, and the returned error; the messages before the broken one
// are applied.
func (b *Book) Feed(f codec.Format, frame []byte, at time.Time, fn func(*codec.Message)) error {
	b.mu.Lock()
	b.frames++
	b.bytes += uint64(len(frame))
	b.mu.Unlock()
	err := f.DecodeMessages(frame, &b.scratch, func(m *codec.Message) error {
		b.Apply(m, at)
		if fn != nil {
			fn(m)
		}
		return nil
	})
	if err != nil {
		b.mu.Lock()
		b.violate(Violation{Kind: ViolationBadFrame, Detail: err.Error()})
		b.mu.Unlock()
		return fmt.Errorf("client: %s frame of %d bytes: %w", f, len(frame), err)
	}
	return nil
}

// Apply applies one decoded message, received at time at.
func (b *Book) Apply(m *codec.Message, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.Op < numOps {
		b.ops[m.Op]++
	} else {
		if b.highOps == nil {
			b.highOps = make(map[codec.Op]uint64)
		}
		b.highOps[m.Op]++
	}
	if b.hello == nil && m.Op != codec.OpHello && !b.noHello {
		b.noHello = true
		b.violate(Violation{Kind: ViolationHello, Op: m.Op, Detail: fmt.Sprintf("first message is op %d, not HELLO", m.Op)})
	}
	switch m.Op {
	case codec.OpHello:
		b.applyHello(m)
	case codec.OpAck:
		b.reply(m.ID)
		b.applyAck(m)
	case codec.OpSnapshot, codec.OpDelta:
		b.applyState(m, at)
	case codec.OpBars, codec.OpBar:
		b.applyBars(m)
	case codec.OpPong:
		b.reply(m.ID)
	case codec.OpError:
		b.errs[m.Code]++
		b.lastErr = &ServerError{ID: m.ID, Code: m.Code, Text: m.Text, Syms: slices.Clone(m.Syms)}
		if req := b.subs[m.ID]; req != nil {
			req.errored = true
		}
		if m.ID != 0 {
			b.reply(m.ID)
		}
	case codec.OpStatus:
		b.status, b.detail = m.State, m.Detail
	}
	// HEARTBEAT only proves the connection alive, and unknown ops are
	// ignored, as the contract asks.
}

func (b *Book) applyHello(m *codec.Message) {
	if b.hello != nil {
		b.violate(Violation{Kind: ViolationHello, Op: m.Op, Detail: "second HELLO"})
		return
	}
	b.hello = &Hello{
		Version:    m.Version,
		ServerID:   m.ServerID,
		Heartbeat:  time.Duration(m.HeartbeatMs) * time.Millisecond,
		FieldNames: slices.Clone(m.FieldNames),
	}
	if m.Version != codec.ProtocolVersion {
		b.violate(Violation{Kind: ViolationHello, Op: m.Op, Detail: fmt.Sprintf("version %d, want %d", m.Version, codec.ProtocolVersion)})
	}
	if len(m.FieldNames) < codec.NumFields || !slices.Equal(m.FieldNames[:codec.NumFields], codec.FieldNames[:]) {
		b.violate(Violation{Kind: ViolationHello, Op: m.Op, Detail: fmt.Sprintf("field table %q does not start with v1's %q", m.FieldNames, codec.FieldNames)})
	}
}

// reply takes note that the server answered request r, and so processed
// every request before it: UNSUBs up to r took effect, and a SUB before r
// that got no ACK will never get one.
func (b *Book) reply(r uint64) {
	for len(b.unsubs) > 0 && b.unsubs[0].id <= r {
		u := b.unsubs[0]
		b.unsubs = b.unsubs[1:]
		for _, name := range u.syms {
			if s := b.byName[name]; s != nil && s.phase == leaving && s.unsubID == u.id {
				s.phase = idle
				if b.subs[s.subID] != nil && s.subID > u.id {
					// A SUB sent after the UNSUB waits for its ACK: a SNAP
					// sent now is owed its SNAPSHOT.
					s.phase = pending
				}
			}
		}
	}
	for id, req := range b.subs {
		if id >= r {
			continue
		}
		if !req.errored {
			b.violate(Violation{Kind: ViolationAck, Op: codec.OpAck, Detail: fmt.Sprintf("SUB %d got no ACK before the reply to request %d", id, r)})
		}
		b.abandon(id, req)
	}
}

// abandon forgets SUB id: its symbols that still wait for it are not
// subscribed.
func (b *Book) abandon(id uint64, req *subRequest) {
	delete(b.subs, id)
	for _, name := range req.syms {
		s := b.byName[name]
		if s == nil || s.phase != pending || s.subID != id {
			continue
		}
		s.phase = idle
		if !s.hasSID {
			delete(b.byName, name)
		}
	}
}

func (b *Book) applyAck(m *codec.Message) {
	req := b.subs[m.ID]
	if req == nil && m.ID != 0 {
		b.violate(Violation{Kind: ViolationAck, Op: m.Op, Detail: fmt.Sprintf("ACK %d answers no pending SUB", m.ID)})
	}
	// ACK 0 answers the subscription of the upgrade URL, which always asks
	// for snapshots; an unexpected ACK is taken at its word, so that one
	// violation does not cascade into many.
	snap := req == nil || req.snap
	for _, a := range m.Acks {
		s := b.symbol(a.Sym)
		b.mapSID(s, a.SID)
		if s.phase == leaving {
			// A later UNSUB, not processed yet, already ends it.
			continue
		}
		s.phase = live
		if snap {
			b.await(s, true)
			s.pendingSnaps++
		}
		var bars string
		var history bool
		if req != nil {
			bars, history = req.bars, req.history
		}
		if bars != s.barsInterval {
			s.bars, s.hasBarSeq, s.barSeq = nil, false, 0 // another interval starts afresh
		}
		s.barsInterval, s.barsHistory = bars, history
		// With snap the BARS follows the SNAPSHOT (applyState owes it
		// then); without, it follows this ACK.
		s.awaitingBars = history && !snap
	}
	if req != nil {
		b.abandon(m.ID, req) // the symbols the ACK left out were rejected
	}
}

// mapSID gives s the sid its ACK announced. A symbol keeps its sid for the
// life of the connection, except that the server may forget the sid of an
// unsubscribed symbol without data (PROTOCOL.md §6.2): such a symbol may
// come back with another sid, and its old sid may come to name another
// symbol. Only a symbol that is subscribed, or whose UNSUB the server has
// not processed yet, is sure to be remembered.
func (b *Book) mapSID(s *symbol, sid uint32) {
	if s.hasSID && s.sid != sid {
		if s.phase == live {
			b.violate(Violation{Kind: ViolationSID, Op: codec.OpAck, Symbol: s.name, SID: sid,
				Detail: fmt.Sprintf("sid changed from %d to %d", s.sid, sid)})
		}
		if b.bySID[s.sid] == s {
			delete(b.bySID, s.sid)
		}
	}
	if o := b.bySID[sid]; o != nil && o != s {
		if o.phase == live || o.phase == leaving {
			b.violate(Violation{Kind: ViolationSID, Op: codec.OpAck, Symbol: s.name, SID: sid,
				Detail: fmt.Sprintf("sid %d already names %s", sid, o.name)})
		}
		o.hasSID = false
	}
	s.sid, s.hasSID = sid, true
	b.bySID[sid] = s
}

func (b *Book) applyState(m *codec.Message, at time.Time) {
	s := b.bySID[m.SID]
	if s == nil {
		b.violate(Violation{Kind: ViolationUnknownSID, Op: m.Op, SID: m.SID, Seq: m.Seq, Detail: fmt.Sprintf("no ACK announced sid %d", m.SID)})
		return
	}
	switch s.phase {
	case leaving:
		b.late++
		b.checkSeq(s, m)
		s.seq, s.hasSeq = m.Seq, true
		return
	case idle, pending:
		b.violate(Violation{Kind: ViolationNotSubscribed, Op: m.Op, Symbol: s.name, SID: m.SID, Seq: m.Seq,
			Detail: fmt.Sprintf("op %d seq %d for a symbol that is not subscribed", m.Op, m.Seq)})
		return
	}
	b.checkSeq(s, m)
	if m.Op == codec.OpSnapshot {
		if s.pendingSnaps == 0 {
			b.violate(Violation{Kind: ViolationExtraSnapshot, Op: m.Op, Symbol: s.name, SID: m.SID, Seq: m.Seq,
				Detail: fmt.Sprintf("SNAPSHOT seq %d that no SUB or SNAP asked for", m.Seq)})
		} else {
			s.pendingSnaps--
		}
		b.await(s, false)
		s.mask, s.values = m.Mask, m.Values
		// Every SNAPSHOT of a subscription with bar history is followed
		// by its BARS.
		s.awaitingBars = s.barsHistory
	} else {
		if s.awaitingSnap {
			b.violate(Violation{Kind: ViolationDeltaBeforeSnapshot, Op: m.Op, Symbol: s.name, SID: m.SID, Seq: m.Seq,
				Detail: fmt.Sprintf("DELTA seq %d before the SNAPSHOT", m.Seq)})
		}
		if s.awaitingBars && !s.awaitingSnap {
			b.violate(Violation{Kind: ViolationBars, Op: m.Op, Symbol: s.name, SID: m.SID, Seq: m.Seq,
				Detail: fmt.Sprintf("DELTA seq %d before the BARS", m.Seq)})
		}
		if s.hasSeq && m.Seq > s.seq+1 {
			b.skipped.Add(m.Seq - s.seq - 1)
		}
		for mask := m.Mask; mask != 0; mask &= mask - 1 {
			f := bits.TrailingZeros32(uint32(mask))
			s.values[f] = m.Values[f]
		}
		s.mask |= m.Mask
	}
	s.seq, s.hasSeq = m.Seq, true
	s.hasState, s.updated = true, at
}

// applyBars applies a BARS or BAR and checks guarantee 5.
func (b *Book) applyBars(m *codec.Message) {
	s := b.bySID[m.SID]
	if s == nil {
		b.violate(Violation{Kind: ViolationUnknownSID, Op: m.Op, SID: m.SID, Seq: m.Seq, Detail: fmt.Sprintf("no ACK announced sid %d", m.SID)})
		return
	}
	bad := func(format string, args ...any) {
		b.violate(Violation{Kind: ViolationBars, Op: m.Op, Symbol: s.name, SID: m.SID, Seq: m.Seq, PrevSeq: s.barSeq, Detail: fmt.Sprintf(format, args...)})
	}
	switch s.phase {
	case leaving:
		b.late++
		return
	case idle, pending:
		b.violate(Violation{Kind: ViolationNotSubscribed, Op: m.Op, Symbol: s.name, SID: m.SID, Seq: m.Seq,
			Detail: fmt.Sprintf("op %d seq %d for a symbol that is not subscribed", m.Op, m.Seq)})
		return
	}
	if m.Interval != s.barsInterval {
		bad("op %d of interval %q; the subscription asks for %q", m.Op, m.Interval, s.barsInterval)
		return
	}
	if s.hasBarSeq && m.Seq < s.barSeq {
		bad("op %d seq %d below the previous bars' %d", m.Op, m.Seq, s.barSeq)
	}
	if m.Op == codec.OpBars {
		switch {
		case s.awaitingSnap:
			bad("BARS before the SNAPSHOT")
		case !s.barsHistory:
			bad("BARS that no SUB asked for")
		}
		for i := 1; i < len(m.Bars); i++ {
			if m.Bars[i].T <= m.Bars[i-1].T {
				bad("BARS t %d after %d", m.Bars[i].T, m.Bars[i-1].T)
				break
			}
		}
		s.awaitingBars = false
		s.bars = append(s.bars[:0], m.Bars...)
	} else {
		if s.awaitingBars || s.awaitingSnap {
			bad("BAR t %d before the SNAPSHOT or BARS", m.Bar.T)
		}
		switch n := len(s.bars); {
		case n > 0 && m.Bar.T < s.bars[n-1].T:
			bad("BAR t %d after t %d", m.Bar.T, s.bars[n-1].T)
		case n > 0 && m.Bar.T == s.bars[n-1].T:
			s.bars[n-1] = m.Bar
		default:
			s.bars = append(s.bars, m.Bar)
		}
	}
	s.barSeq, s.hasBarSeq = max(s.barSeq, m.Seq), true
}

// checkSeq checks guarantee 2: seq never decreases, and every DELTA moves it.
func (b *Book) checkSeq(s *symbol, m *codec.Message) {
	if !s.hasSeq {
		return
	}
	var detail string
	switch {
	case m.Op == codec.OpDelta && m.Seq <= s.seq:
		detail = fmt.Sprintf("DELTA seq %d not above the previous %d", m.Seq, s.seq)
	case m.Op == codec.OpSnapshot && m.Seq < s.seq:
		detail = fmt.Sprintf("SNAPSHOT seq %d below the previous %d", m.Seq, s.seq)
	default:
		return
	}
	b.violate(Violation{Kind: ViolationSeq, Op: m.Op, Symbol: s.name, SID: m.SID, Seq: m.Seq, PrevSeq: s.seq, Detail: detail})
}

func (b *Book) symbol(name string) *symbol {
	s := b.byName[name]
	if s == nil {
		s = &symbol{name: name}
		b.byName[name] = s
	}
	return s
}

// violate records v; b.mu is held.
func (b *Book) violate(v Violation) {
	b.nViolation++
	if len(b.violations) >= MaxViolations {
		return
	}
	b.violations = append(b.violations, v)
	if b.log != nil {
		b.log.Warn("client: protocol violation", "kind", v.Kind.String(), "symbol", v.Symbol, "sid", v.SID, "seq", v.Seq, "detail", v.Detail)
	}
}

// Hello returns the server's HELLO, and false before it came.
func (b *Book) Hello() (Hello, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hello == nil {
		return Hello{}, false
	}
	h := *b.hello
	h.FieldNames = slices.Clone(h.FieldNames)
	return h, true
}

// FeedStatus returns the state and detail of the last STATUS: "live",
// "stale" or "recovering". The server sends STATUS on connect only when the
// feed is not live, so it is "live" until a STATUS says otherwise.
func (b *Book) FeedStatus() (state, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status == "" {
		return codec.StatusLive, ""
	}
	return b.status, b.detail
}

// State returns sym's seq and values by field name. ok is false when sym
// is not subscribed, or no SNAPSHOT or DELTA for it came since it was.
func (b *Book) State(sym string) (seq uint64, values map[string]float64, ok bool) {
	e, ok := b.Entry(sym)
	if !ok {
		return 0, nil, false
	}
	values = make(map[string]float64, e.Mask.Count())
	for f := range codec.NumFields {
		if e.Mask.Has(f) {
			values[codec.FieldNames[f]] = e.Values[f]
		}
	}
	return e.Seq, values, true
}

// Entry is State without allocation, for callers that read often.
func (b *Book) Entry(sym string) (Entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.byName[sym]
	if s == nil || s.phase != live || !s.hasState {
		return Entry{}, false
	}
	return Entry{Seq: s.seq, Mask: s.mask, Values: s.values, Updated: s.updated}, true
}

// Bars returns the bars of sym the server sent (the BARS and every BAR
// since, applied in order, oldest first), the interval they are of and
// the seq of the last of those messages. ok is false when sym is not
// subscribed with bars, or none came.
func (b *Book) Bars(sym string) (interval string, seq uint64, bars []codec.Bar, ok bool) {
	interval, seq, bars, ok = b.AppendBars(nil, sym)
	if ok && bars == nil {
		bars = []codec.Bar{} // an empty BARS holds no bar, and is some
	}
	return interval, seq, bars, ok
}

// AppendBars is Bars appending to dst, for callers that read often.
func (b *Book) AppendBars(dst []codec.Bar, sym string) (interval string, seq uint64, bars []codec.Bar, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.byName[sym]
	if s == nil || s.phase != live || s.barsInterval == "" || !s.hasBarSeq {
		return "", 0, dst, false
	}
	return s.barsInterval, s.barSeq, append(dst, s.bars...), true
}

// Ready reports whether every SUB sent was answered (by an ACK, or by the
// reply to a later request) and every symbol an ACK subscribed with a
// SNAPSHOT has had it: from then on, each subscribed symbol's Entry is the
// server's state as of its seq. A SNAP's SNAPSHOT is not waited for, since
// a congested server may merge it into one it owes already.
func (b *Book) Ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) == 0 && b.awaiting == 0
}

// Skipped returns how many seqs the DELTAs applied so far skipped over: the
// updates the server merged into a later DELTA (conflation), by maxHz or
// because the client read slowly. It takes no lock, so that a callback may
// read it for every message.
func (b *Book) Skipped() uint64 { return b.skipped.Load() }

// Symbols returns the subscribed symbols (those whose ACK came and that were
// not unsubscribed since), sorted.
func (b *Book) Symbols() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var syms []string
	for name, s := range b.byName {
		if s.phase == live {
			syms = append(syms, name)
		}
	}
	slices.Sort(syms)
	return syms
}

// Symbol returns the symbol that sid names, for callbacks that see only the
// sid of a SNAPSHOT or DELTA.
func (b *Book) Symbol(sid uint32) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.bySID[sid]; s != nil {
		return s.name, true
	}
	return "", false
}

// Violations returns the violations recorded so far (at most MaxViolations),
// oldest first.
func (b *Book) Violations() []Violation {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.violations)
}

// Stats returns a copy of the counters.
func (b *Book) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{
		Frames:     b.frames,
		Bytes:      b.bytes,
		Messages:   make(map[codec.Op]uint64),
		Late:       b.late,
		Errors:     make(map[int]uint64, len(b.errs)),
		Violations: b.nViolation,
	}
	for op, n := range b.ops {
		if n > 0 {
			st.Messages[codec.Op(op)] = n
		}
	}
	for op, n := range b.highOps {
		st.Messages[op] = n
	}
	for code, n := range b.errs {
		st.Errors[code] = n
	}
	if b.lastErr != nil {
		e := *b.lastErr
		st.LastError = &e
	}
	return st
}

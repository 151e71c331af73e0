// Package fanout delivers every change of the snapshot store, as a compact
// delta, to each client subscribed to the symbol, and runs the protocol v1
// session of each client: subscriptions, snapshots, conflation, heartbeats
// and slow-consumer handling. To subscriptions that ask, it also delivers
// the symbol's OHLCV bars, read from a BarSource (bars.go).
//
// The engine knows nothing of WebSocket: a client's connection is a
// Transport that takes whole frames. Publishing reads each symbol's
// subscriber list through an atomic pointer (copy-on-write), encodes each
// delta once per distinct (format, field projection) and appends the same
// bytes to every subscriber's outbound buffer; a pool of writer goroutines,
// one per core, takes the busy clients in turn and writes whatever each has
// buffered in as few frames as possible.
package fanout

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/config"
	"github.com/tickstream/tickstream/snapshot"
)

// Config tunes the engine. Zero values take the defaults noted
// (DefaultConfig).
type Config struct {
	// ServerID names this node in HELLO (default "tickstream").
	ServerID string
	// Heartbeat is the idle time after which a client gets a HEARTBEAT
	// (default 5s).
	Heartbeat time.Duration
	// SoftLimit is the outbound backlog, in bytes, past which a client is
	// switched to conflated delivery (default 256 KiB).
	SoftLimit int
	// SoftLag is how long a write may stay in flight before the client is
	// switched to conflated delivery, as one over SoftLimit is (default
	// 1s): a client on a slow link fills its socket long before it fills
	// SoftLimit with small deltas, and would otherwise see prices minutes
	// old. Measured on the hub's clock (every 2ms).
	SoftLag time.Duration
	// MaxStaleness is the freshness budget of a client: when the oldest
	// message queued for it that its socket has not taken is older than
	// this, the client is switched to conflated delivery, as one over
	// SoftLimit is (default 25ms). A client that is slow but not stuck
	// (a slow link, or a node that cannot write everything it is offered)
	// then gets the newest state of each symbol instead of a queue of
	// old ones. It switches back when a write ends with what is still
	// queued under half the budget old. Measured on the hub's clock,
	// which ticks every 2ms (every quarter of the budget when that is
	// shorter, at least 1ms).
	MaxStaleness time.Duration
	// HardLimit is the outbound backlog, in bytes, that a client may stay
	// over for at most SlowGrace before it is closed with 4008 (default 4 MiB).
	HardLimit int
	// SlowGrace is how long a client may stay over HardLimit (default 5s).
	SlowGrace time.Duration
	// MaxSubscriptions bounds the symbols one client may subscribe to
	// (default 5000); the excess of a SUB is refused with 413.
	MaxSubscriptions int
	// MaxReserved bounds the symbols without data (names the feed has not
	// sent yet) one client may hold (default 1000): those it subscribes,
	// and those it unsubscribed, kept so that a re-SUB gets the same sid
	// and forgotten oldest first when room is needed. A SUB past it is
	// refused with 413. The store bounds them in all
	// (snapshot.WithMaxReserved; 503 past it).
	MaxReserved int
	// MaxFrameSize is the size past which buffered messages are split into
	// several frames (default 64 KiB); one message is never split.
	MaxFrameSize int
	// FlushDelay holds a client this long in the writers' queue before its
	// buffer is collected, so that more messages share a frame (default 0:
	// write at once; messages that arrive during a write share the next
	// frame anyway).
	FlushDelay time.Duration
	// Bars is where subscriptions with the SUB option bars read their bars
	// (bars.go); nil when the node keeps none, and a SUB asking for bars is
	// refused. The source must see every change before the hub: the caller
	// makes it the store's observer after NewHub, and the hub its own.
	Bars BarSource
}

// DefaultConfig returns the engine's default settings, those a zero field
// of Config takes.
func DefaultConfig() Config {
	return Config{
		ServerID:         "tickstream",
		Heartbeat:        5 * time.Second,
		SoftLimit:        256 << 10,
		SoftLag:          time.Second,
		MaxStaleness:     25 * time.Millisecond,
		HardLimit:        4 << 20,
		SlowGrace:        5 * time.Second,
		MaxSubscriptions: 5000,
		MaxReserved:      1000,
		MaxFrameSize:     64 << 10,
	}
}

// Validate reports the first setting out of range, as a
// config.FieldError naming it. It checks the values as given: NewHub
// fills the zero fields from DefaultConfig first.
func (c Config) Validate() error {
	return config.First(
		config.Check(c.Heartbeat > 0, "Heartbeat", c.Heartbeat, "more than 0"),
		config.Check(c.SoftLimit > 0, "SoftLimit", c.SoftLimit, "more than 0"),
		config.Check(c.SoftLag > 0, "SoftLag", c.SoftLag, "more than 0"),
		config.Check(c.MaxStaleness > 0, "MaxStaleness", c.MaxStaleness, "more than 0"),
		config.Check(c.HardLimit >= c.SoftLimit, "HardLimit", c.HardLimit, "at least SoftLimit"),
		config.Check(c.SlowGrace > 0, "SlowGrace", c.SlowGrace, "more than 0"),
		config.Check(c.MaxSubscriptions > 0, "MaxSubscriptions", c.MaxSubscriptions, "at least 1"),
		config.Check(c.MaxReserved > 0, "MaxReserved", c.MaxReserved, "at least 1"),
		config.Check(c.MaxFrameSize > 0, "MaxFrameSize", c.MaxFrameSize, "more than 0"),
		config.Check(c.FlushDelay >= 0, "FlushDelay", c.FlushDelay, "0 or more"),
	)
}

// Stats are the engine's counters since it started.
type Stats struct {
	Clients       int64 // connected now
	Subscriptions int64 // live now
	Messages      uint64
	Bytes         uint64
	Frames        uint64
	Conflated     uint64 // updates merged into a later DELTA
	// ConflationStarts counts the times a client was switched to
	// conflated delivery, by cause.
	ConflationStarts [ConflationCauses]uint64
	// Conflating counts the clients in conflated delivery now.
	Conflating  int64
	Dropped     uint64 // messages and pending deltas discarded when their client closed
	SlowCloses  uint64 // clients closed with 4008
	Errors      map[int]uint64
	Published   uint64 // changes published
	WriteErrors uint64
	// Stuck counts the clients whose socket has taken nothing for
	// SoftLag, parked off the publish path now.
	Stuck int64
	// PublishTime is the time Publish took, for one change in
	// PublishSample.
	PublishTime Histogram
	// PublishAge is, for the same changes, their age when published: the
	// node's clock minus the change's ts, the event time the feed gave it
	// (changes without a ts are not counted; one ahead of the clock counts
	// as 0). It is the delay before the engine (producer, broker, ingest),
	// plus any offset between the feed's clock and the node's.
	PublishAge Histogram
	// WriteWait is, for each write to a client, the age of its oldest
	// message when the socket took it: how long messages waited in the
	// engine, for a worker and for the write itself (on the hub's clock,
	// to 2ms). Age that clients see beyond it is spent before the engine
	// (feed, ingest) or after it (the network, the client).
	WriteWait Histogram
}

type counters struct {
	clients, subs                            atomic.Int64
	messages, bytes, frames, conflated, slow atomic.Uint64
	published, writeErrors, dropped          atomic.Uint64
	stuck, conflating                        atomic.Int64
	conflationStarts                         [ConflationCauses]atomic.Uint64
	publishTime, publishAge, writeWait       histogram
	errMu                                    sync.Mutex
	errs                                     map[int]uint64
}

// Hub is the fanout engine: it tracks every client and subscription and
// delivers the store's changes. Create it with NewHub, which makes it the
// store's observer.
type Hub struct {
	cfg   Config
	store *snapshot.Store

	// topics holds the subscriber list of each symbol id. Ids are bounded
	// by the store (the feed's symbols and the reserved names held, whose
	// ids are reused once released), so the table is too; a slot is set
	// once, and the table is only copied when it grows.
	topicMu sync.Mutex // serializes topic creation
	topics  atomic.Pointer[[]atomic.Pointer[topic]]

	clientsMu sync.Mutex
	clients   map[*Client]struct{}

	statusMu sync.Mutex // orders status changes with their broadcast
	status   atomic.Pointer[status]

	encoders sync.Pool
	bufs     outBufPool // the clients' outbound buffers
	writers  *writerPool
	stats    counters

	// clock is the unix time in ns, refreshed every clockPeriod: the
	// publisher and the writers read it instead of time.Now (46 ns here,
	// needed several times per delivery) for the staleness, idle and slow
	// checks, which need no finer precision. period is the heartbeat
	// tick, on which every client is visited.
	clock       atomic.Int64
	clockPeriod time.Duration
	period      time.Duration
	// epoch is when the hub started: mono counts from it.
	epoch time.Time

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

type status struct{ state, detail string }

// NewHub returns a hub serving the symbols of store, and sets it as the
// store's observer (snapshot.Store.SetObserver): call it before the store
// applies its first update. It starts the heartbeat goroutine; Close stops
// it. Zero fields of cfg take their DefaultConfig value; NewHub refuses
// a Config that Validate refuses then.
func NewHub(store *snapshot.Store, cfg Config) (*Hub, error) {
	config.FillZero(&cfg, DefaultConfig())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	h := &Hub{
		cfg:     cfg,
		store:   store,
		clients: map[*Client]struct{}{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	h.stats.errs = map[int]uint64{}
	h.stats.publishTime.bounds = &PublishBuckets
	h.stats.publishAge.bounds = &AgeBuckets
	h.stats.writeWait.bounds = &AgeBuckets
	topics := []atomic.Pointer[topic]{}
	h.topics.Store(&topics)
	h.status.Store(&status{state: codec.StatusLive})
	h.encoders.New = func() any { return new(encoder) }
	h.period = max(min(cfg.Heartbeat/4, time.Second), 10*time.Millisecond)
	// The writer pool's check of blocked writes runs on the clock tick
	// too, hence at most 2ms.
	h.clockPeriod = min(max(cfg.MaxStaleness/4, time.Millisecond), 2*time.Millisecond)
	h.epoch = time.Now()
	h.clock.Store(h.epoch.UnixNano())
	h.writers = newWriterPool(h)
	store.SetObserver(h)
	go h.heartbeats()
	return h, nil
}

// Config returns the hub's configuration with its defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

// Store returns the store the hub serves.
func (h *Hub) Store() *snapshot.Store { return h.store }

// Close stops the heartbeat goroutine and closes every client with code and
// reason (1001 for a shutdown).
func (h *Hub) Close(code codec.CloseCode, reason string) {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	for _, c := range h.clientList() {
		c.close(code, reason)
	}
	h.writers.close()
}

func (h *Hub) clientList() []*Client {
	h.clientsMu.Lock()
	defer h.clientsMu.Unlock()
	list := make([]*Client, 0, len(h.clients))
	for c := range h.clients {
		list = append(list, c)
	}
	return list
}

// mono returns t in nanoseconds since the hub started, on the monotonic
// clock: 8 bytes where a time.Time takes 24, and immune to steps of the
// wall clock.
func (h *Hub) mono(t time.Time) int64 { return int64(t.Sub(h.epoch)) }

// monoTime is the time.Time of mono's ns.
func (h *Hub) monoTime(ns int64) time.Time { return h.epoch.Add(time.Duration(ns)) }

// Status returns the feed state and its detail.
func (h *Hub) Status() (state, detail string) {
	s := h.status.Load()
	return s.state, s.detail
}

// SetStatus changes the feed state (codec.StatusLive, StatusStale or
// StatusRecovering) and tells every client when it changed.
func (h *Hub) SetStatus(state, detail string) {
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	if old := h.status.Load(); old.state == state {
		h.status.Store(&status{state, detail})
		return
	}
	h.status.Store(&status{state, detail})
	for _, c := range h.clientList() {
		c.sendStatus(state, detail)
	}
}

// Stats returns a copy of the engine's counters.
func (h *Hub) Stats() Stats {
	s := Stats{
		Clients:       h.stats.clients.Load(),
		Subscriptions: h.stats.subs.Load(),
		Messages:      h.stats.messages.Load(),
		Bytes:         h.stats.bytes.Load(),
		Frames:        h.stats.frames.Load(),
		Conflated:     h.stats.conflated.Load(),
		Dropped:       h.stats.dropped.Load(),
		SlowCloses:    h.stats.slow.Load(),
		Published:     h.stats.published.Load(),
		WriteErrors:   h.stats.writeErrors.Load(),
		Stuck:         h.stats.stuck.Load(),
		Conflating:    h.stats.conflating.Load(),
		PublishTime:   h.stats.publishTime.load(),
		PublishAge:    h.stats.publishAge.load(),
		WriteWait:     h.stats.writeWait.load(),
		Errors:        map[int]uint64{},
	}
	for i := range s.ConflationStarts {
		s.ConflationStarts[i] = h.stats.conflationStarts[i].Load()
	}
	h.stats.errMu.Lock()
	for k, v := range h.stats.errs {
		s.Errors[k] = v
	}
	h.stats.errMu.Unlock()
	return s
}

func (h *Hub) countError(code int) {
	h.stats.errMu.Lock()
	h.stats.errs[code]++
	h.stats.errMu.Unlock()
}

// topic returns the subscriber list of a symbol id, creating it if create.
func (h *Hub) topic(id uint32, create bool) *topic {
	if ts := *h.topics.Load(); int(id) < len(ts) {
		if t := ts[id].Load(); t != nil {
			return t
		}
	}
	if !create {
		return nil
	}
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	ts := *h.topics.Load()
	if int(id) < len(ts) {
		if t := ts[id].Load(); t != nil {
			return t
		}
	} else {
		grown := make([]atomic.Pointer[topic], max(int(id)+1, 2*len(ts)))
		for i := range ts {
			grown[i].Store(ts[i].Load())
		}
		h.topics.Store(&grown)
		ts = grown
	}
	t := &topic{}
	ts[id].Store(t)
	return t
}

// Publish delivers one change of the store to the symbol's subscribers. The
// store calls it in seq order per symbol (snapshot.Observer); it never
// blocks on a client.
func (h *Hub) Publish(ch snapshot.Change) {
	// Timing every change would cost two clock reads and an observation,
	// about 90 ns, on the ingest path of each record: the symbol's own seq
	// picks one change in PublishSample without a counter shared by the
	// partitions.
	if ch.Next.Seq%PublishSample != 0 {
		h.publish(&ch)
		return
	}
	start := time.Now()
	if ch.Next.Mask.Has(codec.FieldTS) {
		ts := time.UnixMicro(int64(ch.Next.Values[codec.FieldTS]))
		h.stats.publishAge.observe(max(start.Sub(ts), 0))
	}
	h.publish(&ch)
	h.stats.publishTime.observe(time.Since(start))
}

func (h *Hub) publish(ch *snapshot.Change) {
	h.stats.published.Add(1)
	t := h.topic(ch.Symbol.ID, false)
	if t == nil {
		return
	}
	subs := t.subs.Load()
	if subs == nil || len(*subs) == 0 {
		return
	}
	enc := h.encoders.Get().(*encoder)
	enc.reset()
	for _, s := range *subs {
		s.client.deliver(s, ch, enc)
	}
	h.encoders.Put(enc)
}

// heartbeats sends a HEARTBEAT to every client idle for the heartbeat
// interval, and closes clients that stayed over the hard limit too long.
func (h *Hub) heartbeats() {
	defer close(h.done)
	tick := time.NewTicker(h.period)
	defer tick.Stop()
	clock := time.NewTicker(h.clockPeriod)
	defer clock.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-clock.C:
			h.clock.Store(now.UnixNano())
			h.writers.check(now.UnixNano())
		case now := <-tick.C:
			h.clock.Store(now.UnixNano())
			for _, c := range h.clientList() {
				c.tick(now)
			}
		}
	}
}

// encoder encodes a change's DELTA once per distinct (format, projection)
// and hands the same bytes to every subscriber that needs them.
type encoder struct {
	buf     []byte
	entries [8]encEntry
	n       int
	bars    barCache
}

type encEntry struct {
	format   codec.Format
	mask     codec.FieldMask
	from, to int
}

func (e *encoder) reset() {
	e.buf = e.buf[:0]
	e.n = 0
	e.bars.reset()
}

// delta returns the DELTA of change ch restricted to mask, in format f.
func (e *encoder) delta(ch *snapshot.Change, f codec.Format, mask codec.FieldMask) []byte {
	for i := 0; i < e.n; i++ {
		if en := &e.entries[i]; en.format == f && en.mask == mask {
			return e.buf[en.from:en.to]
		}
	}
	from := len(e.buf)
	e.buf = f.AppendState(e.buf, codec.OpDelta, ch.Symbol.ID, ch.Next.Seq, mask, &ch.Next.Values)
	if e.n == len(e.entries) {
		// Too many shapes to remember: the bytes stay valid (the buffer
		// only grows during one publish), they are just not reused.
		return e.buf[from:]
	}
	e.entries[e.n] = encEntry{format: f, mask: mask, from: from, to: len(e.buf)}
	e.n++
	return e.buf[from:]
}

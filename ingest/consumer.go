// Package ingest reads price updates from a Kafka topic and hands each
// decoded update to the snapshot store, in partition order.
//
// Every node needs the whole snapshot, so the consumer reads every
// partition of the topic itself (one kafka-go Reader per partition, no
// consumer group). A record that cannot be decoded, or that the store
// refuses, is counted by reason, logged with its topic, partition and
// offset, and skipped: it never stops a partition.
//
// Each partition publishes the next offset to read after applying a record,
// and Quiesce lets a checkpointer see the store and those offsets at one
// consistent instant, so that a warm restart neither loses nor repeats an
// update.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/backoff"
	"github.com/tickstream/tickstream/internal/config"
)

// Start positions for partitions that have no saved offset. A negative
// duration, such as "-1h", is a third kind: the records produced from that
// long before the consumer was made, found by their timestamps.
const (
	StartEarliest = "earliest" // the whole retained log
	StartLatest   = "latest"   // only records produced from now on
)

// ParseStart checks a start position and returns the duration of a
// time-based one (0 for StartEarliest and StartLatest).
func ParseStart(s string) (time.Duration, error) {
	switch s {
	case StartEarliest, StartLatest:
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d >= 0 {
		return 0, fmt.Errorf("ingest: start position %q: want %s, %s or a negative duration such as -1h", s, StartEarliest, StartLatest)
	}
	return d, nil
}

// Config configures a Consumer. Brokers and Topic are required; zero
// values of the others take their DefaultConfig value.
type Config struct {
	Brokers []string
	Topic   string
	// Start is where partitions without a Resume offset start:
	// StartEarliest (default), StartLatest or a negative duration (see
	// ParseStart). It applies to the partitions found when the consumer
	// starts; a partition added to the topic later is read from its
	// beginning, since all of it is new.
	Start string
	// Resume maps partitions to the next offset to read, as saved by a
	// checkpoint. An offset the log no longer holds (retention) resumes at
	// the log's start; one beyond the log's end, which means the topic was
	// recreated, falls back to Start.
	Resume map[int]int64
	// DiscoverEvery is how often the topic is checked for new partitions
	// (default 30s).
	DiscoverEvery time.Duration
	// Dialer carries TLS and SASL settings; nil dials in plain text.
	Dialer *kafka.Dialer
	// MaxWait bounds how long a fetch waits for data (default 500ms). It
	// is also the connection's read deadline: keep it above the round trip.
	MaxWait time.Duration
	// StaleAfter is how long the brokers may fail to answer before the
	// feed is declared stale (default 3s).
	StaleAfter time.Duration
	// Logger receives the consumer's logs (default slog.Default()).
	Logger *slog.Logger
	// OnStatus is called when the feed's state changes: FeedStale
	// when the brokers stop answering, FeedRecovering when they
	// answer again but ingest is behind the log, FeedLive once it
	// has caught up. detail is for people.
	OnStatus func(state FeedState, detail string)
}

// Applier takes each decoded update: the snapshot store.
type Applier interface {
	// Apply is called from one goroutine per partition, in offset order
	// within the partition; u is reused afterwards. An error refuses the
	// record: it is counted, logged and skipped as an undecodable one is,
	// under the reason its Reason() string method names ("other" without
	// one), as for snapshot.ErrFull (symbol_table_full).
	Apply(u *codec.Update) error
}

// Consumer reads every partition of the price topic.
type Consumer struct {
	cfg Config
	to  Applier
	log *slog.Logger

	// startAt is the time a time-based Start looks offsets up by.
	startAt time.Time

	mu         sync.Mutex
	parts      map[int]*partition
	discovered bool      // the first discovery has run: later partitions are new
	metaAlive  time.Time // last successful discovery, or the start

	records  atomic.Uint64
	rejected sync.Map // reason string -> *atomic.Uint64
	ready    atomic.Bool
	state    atomic.Uint32 // a FeedState
	logGate  logGate

	health health // owned by Run's goroutine
	// rebuild is set by a partition that found its log truncated or
	// recreated: the feed is recovering until ingest has caught up.
	rebuildMu sync.Mutex
	rebuild   *rebuildNotice
	lost      atomic.Uint64 // records deleted from the log before ingest read them
	resets    atomic.Uint64 // partitions found recreated (their log ends before ingest's position)
	outages   atomic.Uint64
	catchUp   atomic.Int64 // ns from the brokers answering again to live, last outage
	outage    atomic.Int64 // ns from stale to the brokers answering again, last outage
}

type partition struct {
	id int
	// reader is replaced by the partition's goroutine when it repositions
	// after an out-of-range offset; others read it under Consumer.mu.
	reader *kafka.Reader
	// target is the end of the log when the partition was first seen: the
	// consumer is caught up once every partition has read that far.
	target int64
	// applying is held while a record is applied and next moved past it,
	// and by Quiesce: one lock per partition, so that the appliers of
	// different partitions share nothing on the per-record path.
	applying sync.Mutex
	next     atomic.Int64 // next offset to read; every record before it is applied
	hwm      atomic.Int64 // high-water mark seen with the last fetch
	lastTime atomic.Int64 // timestamp (unix µs) of the last record read
	alive    atomic.Int64 // unix ns of the last sign of a working broker
}

// DefaultConfig returns the consumer's default settings, those a zero
// field of Config takes.
func DefaultConfig() Config {
	return Config{
		Start:         StartEarliest,
		DiscoverEvery: 30 * time.Second,
		MaxWait:       500 * time.Millisecond,
		StaleAfter:    3 * time.Second,
		Dialer:        &kafka.Dialer{Timeout: 5 * time.Second, DualStack: true},
		Logger:        slog.Default(),
	}
}

// Validate reports the first setting out of range, as a
// config.FieldError naming it. It checks the values as given: New fills
// the zero fields from DefaultConfig first.
func (c Config) Validate() error {
	_, startErr := ParseStart(c.Start)
	return config.First(
		config.Check(len(c.Brokers) > 0, "Brokers", c.Brokers, "at least one host:port"),
		config.Check(c.Topic != "", "Topic", c.Topic, "a topic name"),
		config.Check(startErr == nil, "Start", c.Start, StartEarliest+", "+StartLatest+" or a negative duration such as -1h"),
		config.Check(c.DiscoverEvery > 0, "DiscoverEvery", c.DiscoverEvery, "more than 0"),
		config.Check(c.MaxWait > 0, "MaxWait", c.MaxWait, "more than 0"),
		config.Check(c.StaleAfter > 0, "StaleAfter", c.StaleAfter, "more than 0"),
	)
}

// New returns a consumer that hands every update of cfg.Topic to to. Zero
// fields of cfg take their DefaultConfig value; New refuses a Config that
// Validate refuses then.
func New(cfg Config, to Applier) (*Consumer, error) {
	config.FillZero(&cfg, DefaultConfig())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	ago, _ := ParseStart(cfg.Start)
	c := &Consumer{cfg: cfg, to: to, parts: map[int]*partition{}, startAt: time.Now().Add(ago), metaAlive: time.Now()}
	c.log = cfg.Logger.With("topic", cfg.Topic)
	return c, nil
}

// Run consumes until ctx ends. It finds the topic's partitions (waiting for
// the topic to exist), starts a reader for each, picks up partitions added
// later, and watches the brokers' health. It returns nil when ctx ends.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	health := time.NewTicker(time.Second)
	defer health.Stop()
	discover := time.NewTimer(0)
	defer discover.Stop()
	attempt := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-discover.C:
			n, err := c.discover(ctx, &wg)
			switch {
			case err != nil:
				attempt++
				c.log.Warn("ingest: cannot list partitions", "err", err, "attempt", attempt)
				discover.Reset(retry.Delay(attempt))
			default:
				attempt = 0
				if n > 0 {
					c.log.Info("ingest: reading partitions", "new", n, "total", c.partitionCount())
				}
				discover.Reset(c.cfg.DiscoverEvery)
			}
		case now := <-health.C:
			c.checkHealth(now)
		}
	}
}

// retry spaces the attempts of a failing metadata request.
var retry = backoff.Policy{First: 200 * time.Millisecond, Max: 5 * time.Second}

func (c *Consumer) partitionCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.parts)
}

func (c *Consumer) client() *kafka.Client {
	tr := &kafka.Transport{DialTimeout: c.cfg.Dialer.Timeout, TLS: c.cfg.Dialer.TLS, SASL: c.cfg.Dialer.SASLMechanism}
	return &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}
}

// discover starts a reader for every partition not read yet.
func (c *Consumer) discover(ctx context.Context, wg *sync.WaitGroup) (int, error) {
	cl := c.client()
	defer cl.Transport.(*kafka.Transport).CloseIdleConnections()
	meta, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.cfg.Topic}})
	if err != nil {
		return 0, fmt.Errorf("ingest: metadata of %s: %w", c.cfg.Topic, err)
	}
	if len(meta.Topics) == 0 {
		return 0, fmt.Errorf("ingest: topic %s: not in metadata", c.cfg.Topic)
	}
	if err := meta.Topics[0].Error; err != nil {
		return 0, fmt.Errorf("ingest: topic %s: %w", c.cfg.Topic, err)
	}
	var fresh []int
	c.mu.Lock()
	c.metaAlive = time.Now()
	for _, p := range meta.Topics[0].Partitions {
		if _, ok := c.parts[p.ID]; !ok {
			fresh = append(fresh, p.ID)
		}
	}
	initial := !c.discovered
	c.mu.Unlock()
	if len(fresh) == 0 {
		return 0, nil
	}
	starts, ends, err := c.startOffsets(ctx, cl, fresh, initial)
	if err != nil {
		return 0, err
	}
	now := time.Now().UnixNano()
	for _, id := range fresh {
		p := &partition{id: id, target: ends[id]}
		p.next.Store(starts[id])
		p.hwm.Store(ends[id])
		p.alive.Store(now)
		r, err := c.newReader(id, starts[id])
		if err != nil {
			return 0, err
		}
		p.reader = r
		c.mu.Lock()
		c.parts[id] = p
		c.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.read(ctx, p)
		}()
	}
	c.mu.Lock()
	c.discovered = true
	c.mu.Unlock()
	c.updateReady()
	return len(fresh), nil
}

// newReader returns a reader of partition id positioned at offset.
func (c *Consumer) newReader(id int, offset int64) (*kafka.Reader, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.cfg.Brokers,
		Topic:     c.cfg.Topic,
		Partition: id,
		Dialer:    c.cfg.Dialer,
		MinBytes:  1,
		MaxBytes:  10 << 20,
		MaxWait:   c.cfg.MaxWait,
		// Without it a group-less Reader that finds its offset beyond
		// the end of the log (a topic recreated under it) retries
		// forever in silence (kafka-go #891): ingest decides instead.
		OffsetOutOfRangeError: true,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.log.Debug("ingest: kafka reader", "partition", id, "msg", fmt.Sprintf(msg, args...))
		}),
	})
	// Without a consumer group a Reader ignores StartOffset and starts at
	// the first offset: the position is set explicitly instead.
	if err := r.SetOffset(offset); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("ingest: partition %d: seek to %d: %w", id, offset, err)
	}
	return r, nil
}

// startOffsets resolves where each fresh partition starts, and the end of
// its log now. Partitions found after the initial discovery are new to the
// topic and start at their beginning.
func (c *Consumer) startOffsets(ctx context.Context, cl *kafka.Client, fresh []int, initial bool) (starts, ends map[int]int64, err error) {
	list := func(req func(int) kafka.OffsetRequest) (map[int]kafka.PartitionOffsets, error) {
		reqs := make([]kafka.OffsetRequest, 0, len(fresh))
		for _, id := range fresh {
			reqs = append(reqs, req(id))
		}
		res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: reqs}})
		if err != nil {
			return nil, fmt.Errorf("ingest: offsets of %s: %w", c.cfg.Topic, err)
		}
		out := make(map[int]kafka.PartitionOffsets, len(fresh))
		for _, po := range res.Topics[c.cfg.Topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("ingest: offsets of %s partition %d: %w", c.cfg.Topic, po.Partition, po.Error)
			}
			out[po.Partition] = po
		}
		return out, nil
	}
	// Kafka refuses a partition twice in one request: one request per kind.
	last, err := list(kafka.LastOffsetOf)
	if err != nil {
		return nil, nil, err
	}
	first, err := list(kafka.FirstOffsetOf)
	if err != nil {
		return nil, nil, err
	}
	var byTime map[int]kafka.PartitionOffsets
	if initial && c.cfg.Start != StartEarliest && c.cfg.Start != StartLatest {
		if byTime, err = list(func(id int) kafka.OffsetRequest { return kafka.TimeOffsetOf(id, c.startAt) }); err != nil {
			return nil, nil, err
		}
	}
	starts, ends = make(map[int]int64, len(fresh)), make(map[int]int64, len(fresh))
	for _, id := range fresh {
		lo, hi := first[id].FirstOffset, last[id].LastOffset
		ends[id] = hi
		cold := lo
		switch {
		case !initial, c.cfg.Start == StartEarliest:
		case c.cfg.Start == StartLatest:
			cold = hi
		default:
			// No record at or after the time (offset -1, or no answer):
			// start at the end.
			cold = hi
			for off := range byTime[id].Offsets {
				if off >= 0 {
					cold = max(off, lo)
				}
			}
		}
		saved, ok := c.cfg.Resume[id]
		switch {
		case !ok:
			starts[id] = cold
		case saved < lo:
			c.log.Error("ingest: records after the checkpoint were deleted from the log before ingest read them: they are lost; resuming at the log's start",
				"partition", id, "offset", saved, "log_start", lo, "lost", lo-saved)
			c.lost.Add(uint64(lo - saved))
			c.noteRebuild(fmt.Sprintf("records %d to %d of partition %d of %s were deleted (retention) before ingest read them: prices they changed may be stale until updated again",
				saved, lo-1, id, c.cfg.Topic))
			starts[id] = lo
		case saved > hi:
			c.log.Error("ingest: checkpoint offset is beyond the end of the log: the topic was recreated (or truncated); reading the new log from the start position over the checkpoint's state",
				"partition", id, "offset", saved, "log_start", lo, "log_end", hi, "start", cold)
			c.resets.Add(1)
			c.noteRebuild(fmt.Sprintf("the log of partition %d of %s ends at %d, before the checkpoint's offset %d: the topic was recreated; rebuilding from offset %d",
				id, c.cfg.Topic, hi, saved, cold))
			starts[id] = cold
		default:
			starts[id] = saved
		}
	}
	return starts, ends, nil
}

// read consumes one partition until ctx ends, and then closes its reader.
//
// An error from the reader is taken out and logged without waiting: the
// reader retries by itself with a backoff on its dials, and queues each
// failure in front of the records that follow (up to its queue capacity),
// so sleeping after each would hold the records back for minutes after an
// outage.
func (c *Consumer) read(ctx context.Context, p *partition) {
	defer func() {
		c.mu.Lock()
		_ = p.reader.Close()
		c.mu.Unlock()
	}()
	var u codec.Update
	var fails failureLog
	for {
		m, err := p.reader.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			fails.failed(c.log, p.id, err, time.Now())
			if errors.Is(err, kafka.OffsetOutOfRange) {
				// The reader has stopped: it waits to be told where to go.
				c.outOfRange(ctx, p)
			}
			continue
		}
		if fails.n > 0 {
			fails.recovered(c.log, p.id, time.Now())
		}
		p.alive.Store(time.Now().UnixNano())
		p.hwm.Store(m.HighWaterMark)
		p.lastTime.Store(m.Time.UnixMicro())
		c.handle(p, &m, &u)
		if !c.ready.Load() && m.Offset+1 >= p.target {
			c.updateReady()
		}
	}
}

// failureLog keeps a partition's read failures from flooding the log: the
// first of a run is logged, then one line every failureLogEvery with the
// count, and one when records flow again.
type failureLog struct {
	n      int
	since  time.Time
	logged time.Time
}

const failureLogEvery = 10 * time.Second

func (f *failureLog) failed(log *slog.Logger, part int, err error, now time.Time) {
	f.n++
	if f.n == 1 {
		f.since = now
	}
	if f.n == 1 || now.Sub(f.logged) >= failureLogEvery {
		f.logged = now
		log.Warn("ingest: read failed", "partition", part, "err", err, "failures", f.n, "since", f.since.Format(time.RFC3339Nano))
	}
}

func (f *failureLog) recovered(log *slog.Logger, part int, now time.Time) {
	log.Info("ingest: partition reads again", "partition", part, "failures", f.n, "after", now.Sub(f.since).Round(time.Millisecond))
	*f = failureLog{}
}

// outOfRange repositions a partition whose reader found its offset outside
// the log. An offset beyond the log's end means the topic was deleted and
// recreated (kafka-go has no topic IDs to tell otherwise): the new log is
// read from its start over the state the store holds, so that no seq
// moves backwards. An offset before the log's start means records were
// deleted before ingest read them: they are counted as lost. Either way
// the feed is recovering until ingest has caught up.
func (c *Consumer) outOfRange(ctx context.Context, p *partition) {
	next := p.next.Load()
	var shortSince time.Time
	for attempt := 1; ; attempt++ {
		first, last, err := c.bounds(ctx, p.id)
		if err == nil && next > last && (shortSince.IsZero() || time.Since(shortSince) < recreatedAfter) {
			// A broker that restarts after a crash serves a high-water
			// mark below the records it holds until it has caught up: a
			// log that stays short is a recreated one.
			if shortSince.IsZero() {
				shortSince = time.Now()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if err == nil {
			to := next
			switch {
			case next > last:
				c.log.Error("ingest: the log ends before the offset ingest reached: the topic was deleted and recreated (or truncated); rebuilding the partition from the log's start",
					"partition", p.id, "offset", next, "log_start", first, "log_end", last)
				c.resets.Add(1)
				c.noteRebuild(fmt.Sprintf("the log of partition %d of %s was recreated (it ends at %d, before offset %d): rebuilding from offset %d over the last known state",
					p.id, c.cfg.Topic, last, next, first))
				to = first
			case next < first:
				c.log.Error("ingest: records were deleted from the log before ingest read them: they are lost; resuming at the log's start",
					"partition", p.id, "offset", next, "log_start", first, "lost", first-next)
				c.lost.Add(uint64(first - next))
				c.noteRebuild(fmt.Sprintf("records %d to %d of partition %d of %s were deleted before ingest read them: prices they changed may be stale until updated again",
					next, first-1, p.id, c.cfg.Topic))
				to = first
			}
			if err = c.reposition(ctx, p, to, last); err == nil {
				return
			}
		}
		c.log.Warn("ingest: cannot reposition a partition whose offset is out of range", "partition", p.id, "offset", next, "err", err, "attempt", attempt)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.Delay(attempt)):
		}
	}
}

// recreatedAfter is how long a partition's log must end before ingest's
// position for the topic to be taken as recreated.
const recreatedAfter = 10 * time.Second

// bounds returns the first offset and the end of partition id's log.
func (c *Consumer) bounds(ctx context.Context, id int) (first, last int64, err error) {
	cl := c.client()
	defer cl.Transport.(*kafka.Transport).CloseIdleConnections()
	list := func(req kafka.OffsetRequest) (kafka.PartitionOffsets, error) {
		res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: {req}}})
		if err != nil {
			return kafka.PartitionOffsets{}, fmt.Errorf("ingest: offsets of %s partition %d: %w", c.cfg.Topic, id, err)
		}
		for _, po := range res.Topics[c.cfg.Topic] {
			if po.Partition == id {
				if po.Error != nil {
					return po, fmt.Errorf("ingest: offsets of %s partition %d: %w", c.cfg.Topic, id, po.Error)
				}
				return po, nil
			}
		}
		return kafka.PartitionOffsets{}, fmt.Errorf("ingest: offsets of %s partition %d: no answer", c.cfg.Topic, id)
	}
	lo, err := list(kafka.FirstOffsetOf(id))
	if err != nil {
		return 0, 0, err
	}
	hi, err := list(kafka.LastOffsetOf(id))
	if err != nil {
		return 0, 0, err
	}
	return lo.FirstOffset, hi.LastOffset, nil
}

// reposition makes the partition read from offset with a new reader (the
// old one stopped at the out-of-range offset), end being the log's end.
func (c *Consumer) reposition(ctx context.Context, p *partition, offset, end int64) error {
	r, err := c.newReader(p.id, offset)
	if err != nil {
		return err
	}
	p.applying.Lock()
	p.next.Store(offset)
	p.hwm.Store(max(end, offset))
	p.applying.Unlock()
	c.mu.Lock()
	old := p.reader
	p.reader = r
	p.target = min(p.target, end)
	c.mu.Unlock()
	_ = old.Close()
	c.log.Info("ingest: partition repositioned", "partition", p.id, "offset", offset, "log_end", end)
	return ctx.Err()
}

// handle decodes and applies one record and publishes the partition's next
// offset, both under the partition's applying lock so that Quiesce never
// sees the one without the other.
func (c *Consumer) handle(p *partition, m *kafka.Message, u *codec.Update) {
	if m.Offset < p.next.Load() {
		// Already applied: a reader that reconnects may fetch from an
		// earlier batch boundary.
		return
	}
	err := codec.DecodeRecord(m.Key, m.Value, u)
	if err == nil && !u.Mask.Has(codec.FieldTS) {
		u.Set(codec.FieldTS, float64(time.Now().UnixMicro()))
	}
	p.applying.Lock()
	if err == nil {
		err = c.to.Apply(u)
	}
	p.next.Store(m.Offset + 1)
	p.applying.Unlock()
	if err != nil {
		c.reject(p.id, m.Offset, err)
		return
	}
	c.records.Add(1)
}

// Quiesce calls fn while no record is being applied, with the next offset
// to read of every partition: at that instant the store holds exactly the
// updates of the records before those offsets. Partitions resumed from
// Config.Resume but not read yet keep their resume offset. fn must be
// quick, since every partition waits for it.
func (c *Consumer) Quiesce(fn func(offsets map[int]int64)) {
	// Holding mu keeps discovery from adding a partition meanwhile: one
	// that is not in parts has not applied anything.
	c.mu.Lock()
	defer c.mu.Unlock()
	offsets := make(map[int]int64, len(c.cfg.Resume))
	for id, off := range c.cfg.Resume {
		offsets[id] = off
	}
	for _, p := range c.parts {
		p.applying.Lock()
		defer p.applying.Unlock() // when fn has returned
		offsets[p.id] = p.next.Load()
	}
	fn(offsets)
}

func (c *Consumer) reject(part int, offset int64, err error) {
	reason := codec.RecordReason(err)
	var refusal interface{ Reason() string }
	if errors.As(err, &refusal) {
		reason = refusal.Reason()
	}
	v, _ := c.rejected.LoadOrStore(reason, new(atomic.Uint64))
	n := v.(*atomic.Uint64).Add(1)
	if c.logGate.allow(time.Now()) {
		c.log.Warn("ingest: record skipped", "partition", part, "offset", offset, "reason", reason, "err", err, "count", n)
	}
}

// updateReady marks the consumer ready once every partition has read up to
// the end of the log as it was when the partition was found.
func (c *Consumer) updateReady() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.parts) == 0 {
		return
	}
	for _, p := range c.parts {
		if p.target > 0 && p.next.Load() < p.target {
			return
		}
	}
	if !c.ready.Swap(true) {
		c.log.Info("ingest: caught up", "partitions", len(c.parts), "records", c.records.Load())
	}
}

// PartitionStats describes one partition's progress.
type PartitionStats struct {
	Partition  int
	Next       int64 // next offset to read
	End        int64 // high-water mark (end of the log) last seen
	Lag        int64 // records behind the end of the log
	LagSeconds float64
}

// Stats are the consumer's counters.
type Stats struct {
	Records    uint64            // records applied
	Rejected   map[string]uint64 // records skipped, by reason
	Partitions []PartitionStats
	// Lost counts records deleted from the log (retention) before ingest
	// read them; Recreated the partitions found with a log that ends
	// before ingest's position (a topic deleted and recreated).
	Lost, Recreated uint64
	// Outages counts the times the feed went stale. LastOutage is how
	// long the last one lasted, until the brokers answered again, and
	// LastCatchUp how long ingest then took to be live (0 until then).
	Outages                 uint64
	LastOutage, LastCatchUp time.Duration
}

// Stats returns the consumer's counters and the progress of every partition.
func (c *Consumer) Stats() Stats {
	s := Stats{
		Records: c.records.Load(), Rejected: map[string]uint64{},
		Lost: c.lost.Load(), Recreated: c.resets.Load(),
		Outages: c.outages.Load(), LastOutage: time.Duration(c.outage.Load()), LastCatchUp: time.Duration(c.catchUp.Load()),
	}
	c.rejected.Range(func(k, v any) bool {
		s.Rejected[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	now := time.Now()
	c.mu.Lock()
	for _, p := range c.parts {
		ps := PartitionStats{Partition: p.id, Next: p.next.Load(), End: p.hwm.Load()}
		if ps.End > ps.Next {
			ps.Lag = ps.End - ps.Next
			if t := p.lastTime.Load(); t > 0 {
				ps.LagSeconds = now.Sub(time.UnixMicro(t)).Seconds()
			}
		}
		s.Partitions = append(s.Partitions, ps)
	}
	c.mu.Unlock()
	sort.Slice(s.Partitions, func(i, j int) bool { return s.Partitions[i].Partition < s.Partitions[j].Partition })
	return s
}

// logGate lets through at most 10 log lines a second, so that a flood of
// bad records cannot flood the logs; the counters still see every one.
type logGate struct {
	mu     sync.Mutex
	second int64
	n      int
}

func (g *logGate) allow(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := now.Unix(); s != g.second {
		g.second, g.n = s, 0
	}
	g.n++
	return g.n <= 10
}

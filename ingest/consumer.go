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

// Config configures a Consumer. Brokers and Topic are required.
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
	// OnStatus is called when the feed's state changes: codec.StatusStale
	// when the brokers stop answering, codec.StatusRecovering when they
	// answer again but ingest is behind the log, codec.StatusLive once it
	// has caught up. detail is for people.
	OnStatus func(state, detail string)
}

// Apply receives each decoded update. It is called from one goroutine per
// partition, in offset order within the partition; u is reused afterwards.
// An error refuses the record: it is counted, logged and skipped as an
// undecodable one is, under the reason its Reason() string method names
// ("other" without one).
type Apply func(u *codec.Update) error

// Consumer reads every partition of the price topic.
type Consumer struct {
	cfg   Config
	apply Apply
	log   *slog.Logger

	// startAt is the time a time-based Start looks offsets up by.
	startAt time.Time

	mu         sync.Mutex
	parts      map[int]*partition
	discovered bool      // the first discovery has run: later partitions are new
	metaAlive  time.Time // last successful discovery, or the start

	records  atomic.Uint64
	rejected sync.Map // reason string -> *atomic.Uint64
	ready    atomic.Bool
	state    atomic.Pointer[string] // codec.StatusLive, StatusStale or StatusRecovering
	logGate  logGate
}

type partition struct {
	id     int
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

// New returns a consumer that hands every update of cfg.Topic to apply.
func New(cfg Config, apply Apply) (*Consumer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("ingest: no brokers")
	}
	if cfg.Topic == "" {
		return nil, errors.New("ingest: no topic")
	}
	if cfg.Start == "" {
		cfg.Start = StartEarliest
	}
	ago, err := ParseStart(cfg.Start)
	if err != nil {
		return nil, err
	}
	if cfg.DiscoverEvery <= 0 {
		cfg.DiscoverEvery = 30 * time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 500 * time.Millisecond
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &kafka.Dialer{Timeout: 5 * time.Second, DualStack: true}
	}
	c := &Consumer{cfg: cfg, apply: apply, parts: map[int]*partition{}, startAt: time.Now().Add(ago), metaAlive: time.Now()}
	c.log = cfg.Logger.With("topic", cfg.Topic)
	live := codec.StatusLive
	c.state.Store(&live)
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
			c.closeReaders()
			return nil
		case <-discover.C:
			n, err := c.discover(ctx, &wg)
			switch {
			case err != nil:
				attempt++
				c.log.Warn("ingest: cannot list partitions", "err", err, "attempt", attempt)
				discover.Reset(backoff(attempt))
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

func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 6)
	return min(d, 5*time.Second)
}

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
		p.reader = kafka.NewReader(kafka.ReaderConfig{
			Brokers:   c.cfg.Brokers,
			Topic:     c.cfg.Topic,
			Partition: id,
			Dialer:    c.cfg.Dialer,
			MinBytes:  1,
			MaxBytes:  10 << 20,
			MaxWait:   c.cfg.MaxWait,
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
				c.log.Debug("ingest: kafka reader", "partition", id, "msg", fmt.Sprintf(msg, args...))
			}),
		})
		// Without a consumer group a Reader ignores StartOffset and starts
		// at the first offset: the position is set explicitly instead.
		if err := p.reader.SetOffset(starts[id]); err != nil {
			_ = p.reader.Close()
			return 0, fmt.Errorf("ingest: partition %d: seek to %d: %w", id, starts[id], err)
		}
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
			c.log.Warn("ingest: records after the checkpoint were deleted by retention: they are lost",
				"partition", id, "checkpoint", saved, "log_start", lo)
			starts[id] = lo
		case saved > hi:
			c.log.Error("ingest: checkpoint offset is beyond the end of the log (was the topic recreated?): starting from the start position",
				"partition", id, "checkpoint", saved, "log_end", hi, "start", cold)
			starts[id] = cold
		default:
			starts[id] = saved
		}
	}
	return starts, ends, nil
}

// read consumes one partition until ctx ends.
func (c *Consumer) read(ctx context.Context, p *partition) {
	var u codec.Update
	failures := 0
	for {
		m, err := p.reader.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			// The reader retries by itself and reports only after several
			// attempts: back off so that a lasting fault is not a hot loop.
			failures++
			c.log.Warn("ingest: read failed", "partition", p.id, "err", err, "failures", failures)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff(failures)):
			}
			continue
		}
		failures = 0
		p.alive.Store(time.Now().UnixNano())
		p.hwm.Store(m.HighWaterMark)
		p.lastTime.Store(m.Time.UnixMicro())
		c.handle(p, &m, &u)
		if !c.ready.Load() && m.Offset+1 >= p.target {
			c.updateReady()
		}
	}
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
		err = c.apply(u)
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

func (c *Consumer) closeReaders() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.parts {
		_ = p.reader.Close()
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

// checkHealth declares the feed stale when a partition's reader has shown
// no sign of a working broker (a fetch or a record) for StaleAfter,
// recovering when every reader works again but is behind the log, and live
// once it has caught up.
func (c *Consumer) checkHealth(now time.Time) {
	c.mu.Lock()
	var dead []int
	var lag int64
	for _, p := range c.parts {
		if st := p.reader.Stats(); st.Fetches > 0 || st.Messages > 0 {
			p.alive.Store(now.UnixNano())
		}
		if st := p.reader.Lag(); st >= 0 {
			p.hwm.Store(p.next.Load() + st)
			lag += st
		}
		if now.Sub(time.Unix(0, p.alive.Load())) > c.cfg.StaleAfter {
			dead = append(dead, p.id)
		}
	}
	unreachable := len(c.parts) == 0 && now.Sub(c.metaAlive) > c.cfg.StaleAfter
	c.mu.Unlock()
	sort.Ints(dead)
	prev := *c.state.Load()
	state := feedState(prev, len(dead) == 0 && !unreachable, lag)
	if state == prev {
		return
	}
	c.state.Store(&state)
	var detail string
	switch state {
	case codec.StatusStale:
		detail = fmt.Sprintf("no answer from the brokers for partitions %v of %s", dead, c.cfg.Topic)
		if unreachable {
			detail = fmt.Sprintf("cannot list the partitions of %s", c.cfg.Topic)
		}
		c.log.Warn("ingest: feed stale", "partitions", dead, "detail", detail)
	case codec.StatusRecovering:
		detail = fmt.Sprintf("the brokers answer again; ingest is %d records behind the log of %s", lag, c.cfg.Topic)
		c.log.Info("ingest: feed recovering", "lag", lag)
	default:
		detail = "ingest is reading every partition"
		c.log.Info("ingest: feed live again")
	}
	if c.cfg.OnStatus != nil {
		c.cfg.OnStatus(state, detail)
	}
}

// feedState is the feed's next state: stale while a broker does not
// answer; after an outage, recovering until ingest is back at the end of
// the log, so that clients know the prices are still catching up.
func feedState(prev string, brokersAnswer bool, lag int64) string {
	switch {
	case !brokersAnswer:
		return codec.StatusStale
	case prev != codec.StatusLive && lag > 0:
		return codec.StatusRecovering
	}
	return codec.StatusLive
}

// Ready reports whether ingest has caught up with the log as it was when
// each partition was found.
func (c *Consumer) Ready() bool { return c.ready.Load() }

// Live reports whether the feed is live: every partition's broker answers
// and ingest is not catching up after an outage.
func (c *Consumer) Live() bool { return *c.state.Load() == codec.StatusLive }

// State returns the feed's state: codec.StatusLive, StatusStale or
// StatusRecovering.
func (c *Consumer) State() string { return *c.state.Load() }

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
}

// Stats returns the consumer's counters and the progress of every partition.
func (c *Consumer) Stats() Stats {
	s := Stats{Records: c.records.Load(), Rejected: map[string]uint64{}}
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

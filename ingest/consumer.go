// Package ingest reads price updates from a Kafka topic and hands each
// decoded update to the snapshot store, in partition order.
//
// Every node needs the whole snapshot, so the consumer reads every
// partition of the topic itself (one kafka-go Reader per partition, no
// consumer group). A record that cannot be decoded is counted by reason,
// logged with its topic, partition and offset, and skipped: it never stops
// a partition and never reaches the store.
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

// Start positions for partitions that have no saved offset.
const (
	StartEarliest = "earliest" // the whole retained log
	StartLatest   = "latest"   // only records produced from now on
)

// Config configures a Consumer. Brokers and Topic are required.
type Config struct {
	Brokers []string
	Topic   string
	// Start is StartEarliest (default) or StartLatest.
	Start string
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
	// OnStatus is called when the feed goes stale (live false) or comes
	// back; detail is for people.
	OnStatus func(live bool, detail string)
}

// Apply receives each decoded update. It is called from one goroutine per
// partition, in offset order within the partition; u is reused afterwards.
type Apply func(u *codec.Update)

// Consumer reads every partition of the price topic.
type Consumer struct {
	cfg   Config
	apply Apply
	log   *slog.Logger

	mu    sync.Mutex
	parts map[int]*partition

	records  atomic.Uint64
	rejected sync.Map // reason string -> *atomic.Uint64
	ready    atomic.Bool
	live     atomic.Bool
	logGate  logGate
}

type partition struct {
	id     int
	reader *kafka.Reader
	// target is the end of the log when the partition was first seen: the
	// consumer is caught up once every partition has read that far.
	target   int64
	next     atomic.Int64 // next offset to read
	hwm      atomic.Int64 // high-water mark seen with the last fetch
	lastTime atomic.Int64 // timestamp (unix µs) of the last record read
	alive    atomic.Int64 // unix ns of the last sign of a working broker
	done     chan struct{}
}

// New returns a consumer that hands every update of cfg.Topic to apply.
func New(cfg Config, apply Apply) (*Consumer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("ingest: no brokers")
	}
	if cfg.Topic == "" {
		return nil, errors.New("ingest: no topic")
	}
	switch cfg.Start {
	case "":
		cfg.Start = StartEarliest
	case StartEarliest, StartLatest:
	default:
		return nil, fmt.Errorf("ingest: start position %q: want %s or %s", cfg.Start, StartEarliest, StartLatest)
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
	c := &Consumer{cfg: cfg, apply: apply, parts: map[int]*partition{}}
	c.log = cfg.Logger.With("topic", cfg.Topic)
	c.live.Store(true)
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
				discover.Reset(30 * time.Second)
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
	for _, p := range meta.Topics[0].Partitions {
		if _, ok := c.parts[p.ID]; !ok {
			fresh = append(fresh, p.ID)
		}
	}
	c.mu.Unlock()
	if len(fresh) == 0 {
		return 0, nil
	}
	req := make([]kafka.OffsetRequest, 0, len(fresh))
	for _, id := range fresh {
		req = append(req, kafka.LastOffsetOf(id))
	}
	offs, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: req}})
	if err != nil {
		return 0, fmt.Errorf("ingest: offsets of %s: %w", c.cfg.Topic, err)
	}
	ends := map[int]int64{}
	for _, po := range offs.Topics[c.cfg.Topic] {
		if po.Error != nil {
			return 0, fmt.Errorf("ingest: offsets of %s partition %d: %w", c.cfg.Topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	now := time.Now().UnixNano()
	for _, id := range fresh {
		p := &partition{id: id, target: ends[id], done: make(chan struct{})}
		start := kafka.FirstOffset
		if c.cfg.Start == StartLatest {
			start = kafka.LastOffset
			p.target = 0
		}
		p.alive.Store(now)
		p.reader = kafka.NewReader(kafka.ReaderConfig{
			Brokers:     c.cfg.Brokers,
			Topic:       c.cfg.Topic,
			Partition:   id,
			Dialer:      c.cfg.Dialer,
			MinBytes:    1,
			MaxBytes:    10 << 20,
			MaxWait:     c.cfg.MaxWait,
			StartOffset: start,
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
				c.log.Debug("ingest: kafka reader", "partition", id, "msg", fmt.Sprintf(msg, args...))
			}),
		})
		c.mu.Lock()
		c.parts[id] = p
		c.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.read(ctx, p)
		}()
	}
	c.updateReady()
	return len(fresh), nil
}

// read consumes one partition until ctx ends.
func (c *Consumer) read(ctx context.Context, p *partition) {
	defer close(p.done)
	var u codec.Update
	for {
		m, err := p.reader.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			c.log.Warn("ingest: read failed", "partition", p.id, "err", err)
			continue
		}
		p.alive.Store(time.Now().UnixNano())
		p.next.Store(m.Offset + 1)
		p.hwm.Store(m.HighWaterMark)
		p.lastTime.Store(m.Time.UnixMicro())
		if err := codec.DecodeRecord(m.Key, m.Value, &u); err != nil {
			c.reject(p.id, m.Offset, err)
		} else {
			if !u.Mask.Has(codec.FieldTS) {
				u.Set(codec.FieldTS, float64(time.Now().UnixMicro()))
			}
			c.records.Add(1)
			c.apply(&u)
		}
		if !c.ready.Load() && m.Offset+1 >= p.target {
			c.updateReady()
		}
	}
}

func (c *Consumer) reject(part int, offset int64, err error) {
	reason := codec.RecordReason(err)
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
// no sign of a working broker (a fetch or a record) for StaleAfter, and
// live again when every reader works.
func (c *Consumer) checkHealth(now time.Time) {
	c.mu.Lock()
	var dead []int
	for _, p := range c.parts {
		if st := p.reader.Stats(); st.Fetches > 0 || st.Messages > 0 {
			p.alive.Store(now.UnixNano())
		}
		if st := p.reader.Lag(); st >= 0 {
			p.hwm.Store(p.next.Load() + st)
		}
		if now.Sub(time.Unix(0, p.alive.Load())) > c.cfg.StaleAfter {
			dead = append(dead, p.id)
		}
	}
	c.mu.Unlock()
	sort.Ints(dead)
	live := len(dead) == 0
	if c.live.Swap(live) == live {
		return
	}
	detail := "ingest is reading every partition"
	if !live {
		detail = fmt.Sprintf("no answer from the brokers for partitions %v of %s", dead, c.cfg.Topic)
		c.log.Warn("ingest: feed stale", "partitions", dead)
	} else {
		c.log.Info("ingest: feed live again")
	}
	if c.cfg.OnStatus != nil {
		c.cfg.OnStatus(live, detail)
	}
}

// Ready reports whether ingest has caught up with the log as it was when
// each partition was found.
func (c *Consumer) Ready() bool { return c.ready.Load() }

// Live reports whether every partition's broker answers.
func (c *Consumer) Live() bool { return c.live.Load() }

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

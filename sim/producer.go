package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/backoff"
)

// DefaultTopic is the price topic of protocol v1.
const DefaultTopic = "ticks"

// DefaultBatchTimeout is how long the Kafka writer holds a partial batch
// unless ProducerConfig says otherwise. kafka-go's own default, one second,
// would stall every paced write for that long.
const DefaultBatchTimeout = 5 * time.Millisecond

const (
	// pace is the interval between two writes of a paced run: at 2000
	// updates per second a write carries about ten records, instead of
	// one request per record.
	pace = 5 * time.Millisecond
	// maxBatch bounds the records of one write.
	maxBatch = 1000
	// lastFlushWait bounds how long a write of a Run may go on past its
	// duration.
	lastFlushWait = 2 * time.Second
)

// retry spaces the attempts of a failed write, and of a topic request to
// brokers that do not answer.
var retry = backoff.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// Topic is the price topic; DefaultTopic when empty.
	Topic string
	// Format is the encoding of record values: codec.Binary (a
	// MessagePack map, the default) or codec.JSON (a JSON object).
	Format codec.Format
	// RequiredAcks is the acknowledgement a write waits for: kafka.RequireOne
	// (the leader has the records; the default) or kafka.RequireAll (every
	// in-sync replica has them). kafka.RequireNone is the zero value and so
	// cannot be asked for: a producer that never hears of failed writes
	// would hide the broker trouble a simulator is often run to provoke.
	RequiredAcks kafka.RequiredAcks
	// BatchTimeout bounds how long the writer holds a partial batch;
	// DefaultBatchTimeout when zero.
	BatchTimeout time.Duration
	// Transport carries the connections to the brokers; set its TLS or SASL
	// fields to reach a secured cluster. When nil the Producer makes a
	// plain TCP one, and closes its connections in Close.
	Transport *kafka.Transport
	// Logger receives a warning for every failed write; slog.Default()
	// when nil.
	Logger *slog.Logger
}

// Producer writes updates to a Kafka topic, keyed by symbol so that the
// updates of a symbol stay on one partition and in order. Its methods may
// be called concurrently.
type Producer struct {
	w         *kafka.Writer
	format    codec.Format
	log       *slog.Logger
	transport *kafka.Transport // owned, closed by Close; nil when the caller's
}

// Stats counts the work of a Run or a Replay.
type Stats struct {
	Records int64         // records written and acknowledged
	Bytes   int64         // key and value bytes of those records
	Errors  int64         // failed write attempts, each retried
	Skipped int64         // bad lines of a replay skipped (ReplayOptions.SkipBad)
	Elapsed time.Duration // from the start of the call to its end
	// LastError is the cause of the last failed write attempt, nil when
	// none failed: what to tell a user when nothing was written.
	LastError error
}

// Rate returns the records written per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Records) / s.Elapsed.Seconds()
}

// NewProducer returns a Producer as configured. It does not connect: the
// first write does.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("sim: no Kafka broker address")
	}
	for _, b := range cfg.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, fmt.Errorf("sim: broker address %q: %w", b, err)
		}
	}
	if cfg.Format != codec.Binary && cfg.Format != codec.JSON {
		return nil, fmt.Errorf("sim: unknown record format %d", cfg.Format)
	}
	acks := cfg.RequiredAcks
	switch acks {
	case kafka.RequireNone:
		acks = kafka.RequireOne
	case kafka.RequireOne, kafka.RequireAll:
	default:
		return nil, fmt.Errorf("sim: RequiredAcks %d: want kafka.RequireOne or kafka.RequireAll", acks)
	}
	if cfg.BatchTimeout < 0 {
		return nil, fmt.Errorf("sim: negative BatchTimeout %v", cfg.BatchTimeout)
	}
	p := &Producer{format: cfg.Format, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.Default()
	}
	transport := cfg.Transport
	if transport == nil {
		// Not kafka.DefaultTransport: its idle connections would outlive
		// the Producer, with nobody left to close them.
		transport = &kafka.Transport{}
		p.transport = transport
	}
	topic := cfg.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	batchTimeout := cfg.BatchTimeout
	if batchTimeout == 0 {
		batchTimeout = DefaultBatchTimeout
	}
	p.w = &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchSize:    maxBatch,
		BatchTimeout: batchTimeout,
		RequiredAcks: acks,
		// A few quick attempts inside kafka-go ride out a leader change;
		// longer trouble comes back to flush, which logs it and retries
		// with its own, longer backoff.
		MaxAttempts:     3,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 500 * time.Millisecond,
		Transport:       transport,
	}
	return p, nil
}

// Close flushes and closes the writer. Records of a write whose context
// ended are still sent.
func (p *Producer) Close() error {
	err := p.w.Close()
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("sim: close Kafka writer: %w", err)
	}
	return nil
}

// Run writes the full state of every symbol of m (Market.Initial), so that
// each has a snapshot from the start, then m's updates (Market.Next) at rate
// per second, in a write every few milliseconds. It stops when duration has
// passed since the call (0 runs until ctx is done) or when ctx is done,
// returning a nil error in both cases. Failed writes are logged and retried
// with backoff until they succeed, ctx is done or duration has passed: a
// broker outage slows a run down but does not end it, nor make it outlast
// duration by more than one write attempt. When the writes cannot keep up with rate,
// Run falls behind by at most a second of updates and forgoes the rest, so
// that it never bursts to catch up. Run returns an error only for invalid
// arguments or a closed Producer.
func (p *Producer) Run(ctx context.Context, m *Market, rate float64, duration time.Duration) (Stats, error) {
	start := time.Now()
	var st Stats
	if !(rate > 0) || math.IsInf(rate, 0) {
		return st, fmt.Errorf("sim: rate %v: want a positive, finite number of updates per second", rate)
	}
	if duration < 0 {
		return st, fmt.Errorf("sim: negative duration %v", duration)
	}
	// A failed write is not retried past the end of duration, and a
	// write that hangs ends lastFlushWait after it, so that an outage
	// cannot stretch the run.
	writeCtx := ctx
	var end time.Time
	if duration > 0 {
		end = start.Add(duration)
		var cancel context.CancelFunc
		writeCtx, cancel = context.WithDeadline(ctx, end.Add(lastFlushWait))
		defer cancel()
	}
	finish := func(err error) (Stats, error) {
		st.Elapsed = time.Since(start)
		if writeCtx.Err() != nil || errors.Is(err, errRetriesOver) {
			err = nil
		}
		return st, err
	}
	b := batch{format: p.format, retryUntil: end}
	var u codec.Update
	for i := range m.syms {
		m.Initial(start, i, &u)
		b.add(&u)
		if len(b.msgs) == maxBatch || i == len(m.syms)-1 {
			if err := p.flush(writeCtx, &b, &st); err != nil {
				return finish(err)
			}
		}
	}

	burst := max(1, int64(rate)) // the most Run may fall behind
	ticker := time.NewTicker(pace)
	defer ticker.Stop()
	paceStart := time.Now()
	prev := paceStart
	var made int64
	for {
		select {
		case <-ctx.Done():
			return finish(nil)
		case <-ticker.C:
		}
		now := time.Now()
		last := !end.IsZero() && !now.Before(end)
		if last {
			now = end
		}
		due := int64(rate*now.Sub(paceStart).Seconds()) - made
		if due > burst {
			made += due - burst
			due = burst
		}
		for k := int64(0); k < due; {
			n := min(due-k, maxBatch)
			for j := range n {
				// Spread the timestamps over the interval, as the
				// events of a real feed are.
				m.Next(prev.Add(now.Sub(prev)*time.Duration(k+j+1)/time.Duration(due)), &u)
				b.add(&u)
			}
			k += n
			if err := p.flush(writeCtx, &b, &st); err != nil {
				return finish(err)
			}
		}
		made += max(due, 0)
		if due > 0 {
			prev = now
		}
		if last {
			return finish(nil)
		}
	}
}

// History writes n of m's updates (Market.Next) stamped evenly over [from,
// to), oldest first, as fast as the broker takes them: a past for the market
// before Run goes live, so that a node reading the topic from the start
// builds bars (and a day's shape) from event times it has never seen live.
// Failed writes are retried as in Run until ctx is done. It returns ctx.Err()
// when ctx ends first.
func (p *Producer) History(ctx context.Context, m *Market, from, to time.Time, n int) (Stats, error) {
	start := time.Now()
	var st Stats
	if n < 0 || !from.Before(to) {
		return st, fmt.Errorf("sim: history of %d updates over [%v, %v): want n >= 0 and from before to", n, from, to)
	}
	span := to.Sub(from)
	b := batch{format: p.format}
	var u codec.Update
	for i := range n {
		m.Next(from.Add(time.Duration(float64(span)*float64(i)/float64(n))), &u)
		b.add(&u)
		if len(b.msgs) == maxBatch || i == n-1 {
			if err := p.flush(ctx, &b, &st); err != nil {
				st.Elapsed = time.Since(start)
				return st, err
			}
		}
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// ReplayOptions configures Producer.Replay.
type ReplayOptions struct {
	// Format is the format of the file: FormatJSONL, FormatCSV, or "" to
	// detect it (see ReadReplay).
	Format string
	// Speed paces the replay by the ts of the records: 1 is real time, 2
	// twice as fast; 0 writes as fast as the broker takes them. Records
	// without ts are written without waiting.
	Speed float64
	// SkipBad reports a bad line to Stderr and goes on; without it the
	// first bad line ends the replay with an error naming it.
	SkipBad bool
	// Stderr receives the reports of skipped lines; nil discards them.
	Stderr io.Writer
}

// Replay writes the updates of a recorded file read from r (see ReadReplay)
// in order, their ts unchanged. Records are written in batches: a batch goes
// when it is full, when the next record is due later (with Speed), and at
// the end of the input, which suits files better than a slow pipe. Failed
// writes are retried as in Run. On a bad line without SkipBad, the records
// before it are written and its error is returned. Replay returns ctx.Err()
// when ctx ends before the input does.
func (p *Producer) Replay(ctx context.Context, r io.Reader, opts ReplayOptions) (Stats, error) {
	start := time.Now()
	var st Stats
	if !(opts.Speed >= 0) || math.IsInf(opts.Speed, 0) {
		return st, fmt.Errorf("sim: replay speed %v: want 0 or a positive, finite factor", opts.Speed)
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	var bad func(error) error
	if opts.SkipBad {
		bad = func(err error) error {
			st.Skipped++
			fmt.Fprintf(stderr, "skipped %v\n", err)
			return nil
		}
	}
	b := batch{format: p.format}
	// The first record with a ts fixes the origin: a record of ts t is
	// due at wallStart + (t - tsStart)/Speed.
	var tsStart float64
	var wallStart time.Time
	err := readReplay(r, opts.Format, func(_ int, u *codec.Update) error {
		if opts.Speed > 0 && u.Mask.Has(codec.FieldTS) {
			ts := u.Values[codec.FieldTS]
			if wallStart.IsZero() {
				tsStart, wallStart = ts, time.Now()
			}
			due := wallStart.Add(time.Duration((ts - tsStart) / opts.Speed * float64(time.Microsecond)))
			if time.Until(due) > pace {
				if err := p.flush(ctx, &b, &st); err != nil {
					return err
				}
				if err := sleep(ctx, time.Until(due)); err != nil {
					return err
				}
			}
		}
		b.add(u)
		if len(b.msgs) == maxBatch {
			return p.flush(ctx, &b, &st)
		}
		return nil
	}, bad)
	if ctx.Err() == nil {
		// Everything read before the end or a bad line goes out.
		if ferr := p.flush(ctx, &b, &st); err == nil {
			err = ferr
		}
	}
	st.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		return st, fmt.Errorf("sim: replay interrupted: %w", ctx.Err())
	}
	return st, err
}

// batch is the records of one write. Keys and values share one buffer, so
// that a steady run allocates nothing per record.
type batch struct {
	format codec.Format
	msgs   []kafka.Message
	buf    []byte
	// retryUntil, when set, is the last moment a failed write may be
	// retried.
	retryUntil time.Time
}

// errRetriesOver ends a flush whose batch may not be retried any more.
var errRetriesOver = errors.New("sim: no time left to retry the write")

// add appends u as a record. u.Sym is copied: during a replay it aliases the
// reader's line buffer.
func (b *batch) add(u *codec.Update) {
	start := len(b.buf)
	b.buf = append(b.buf, u.Sym...)
	keyEnd := len(b.buf)
	// The value carries sym too, so that a record read off the topic is,
	// in JSON, a line of a replay file as it is.
	if b.format == codec.JSON {
		b.buf = codec.AppendRecordJSON(b.buf, u, true)
	} else {
		b.buf = codec.AppendRecord(b.buf, u, true)
	}
	// Capped slices: when buf grows, the records already added keep
	// pointing at the old array, which nothing writes to any more.
	b.msgs = append(b.msgs, kafka.Message{
		Key:   b.buf[start:keyEnd:keyEnd],
		Value: b.buf[keyEnd:len(b.buf):len(b.buf)],
	})
}

// flush writes the batch, retrying what fails until it is written, ctx is
// done or the batch's retryUntil has passed, and empties it. After an error the batch must not be reused: the
// writer may still hold its records.
func (p *Producer) flush(ctx context.Context, b *batch, st *Stats) error {
	msgs := b.msgs
	for attempt := 1; len(msgs) > 0; attempt++ {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil {
			st.count(msgs...)
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, io.ErrClosedPipe) {
			return fmt.Errorf("sim: producer is closed: %w", err)
		}
		cause := err
		var werr kafka.WriteErrors
		if errors.As(err, &werr) && len(werr) == len(msgs) {
			// Keep only the records that failed, in order, so that a
			// retry neither duplicates the others nor reorders a
			// partition.
			failed := msgs[:0]
			for i, e := range werr {
				if e == nil {
					st.count(msgs[i])
					continue
				}
				cause = e
				failed = append(failed, msgs[i])
			}
			msgs = failed
		}
		st.Errors++
		st.LastError = cause
		wait := retry.Delay(attempt)
		p.log.Warn("kafka write failed; retrying", "topic", p.w.Topic, "records", len(msgs),
			"backoff", wait, "err", cause)
		if !b.retryUntil.IsZero() {
			// The last attempt is at retryUntil, not a backoff after it.
			left := time.Until(b.retryUntil)
			if left <= 0 {
				return errRetriesOver
			}
			wait = min(wait, left)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
	b.msgs, b.buf = b.msgs[:0], b.buf[:0]
	return nil
}

func (s *Stats) count(msgs ...kafka.Message) {
	for i := range msgs {
		s.Records++
		s.Bytes += int64(len(msgs[i].Key) + len(msgs[i].Value))
	}
}

// sleep waits for d or until ctx is done, returning ctx.Err() then.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

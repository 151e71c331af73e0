package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Stream is a producer that writes a log at a steady rate and keeps writing
// through broker outages, as a live feed does: records fall due at the
// rate, and whatever is due is written as soon as the brokers take it, so
// that an outage leaves a backlog that lands in a burst when they return.
// A write that failed is retried as a whole, so a write the broker applied
// but could not acknowledge is written twice (at least once, like any
// producer without idempotence): count what the topic holds with
// EndOffsets rather than with the log's length.
type Stream struct {
	written  atomic.Int64
	failures atomic.Int64
	cancel   context.CancelFunc
	done     chan error
}

// StartStream starts writing msgs to topic at rate records a second, keyed
// by symbol with the Hash balancer (as Produce does). It stops when the
// test ends if Wait has not returned by then.
func StartStream(t testing.TB, brokers []string, topic string, msgs []kafka.Message, rate int) *Stream {
	t.Helper()
	if rate <= 0 {
		t.Fatalf("kafkatest: StartStream: rate must be > 0, got %d", rate)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- s.run(ctx, brokers, topic, msgs, rate) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// maxStreamChunk bounds one write, so that a backlog lands in a few
// large batches rather than one.
const maxStreamChunk = 5000

func (s *Stream) run(ctx context.Context, brokers []string, topic string, msgs []kafka.Message, rate int) error {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    maxStreamChunk,
		BatchBytes:   8 << 20,
		MaxAttempts:  2,
		WriteTimeout: 5 * time.Second,
		ReadTimeout:  5 * time.Second,
		Transport:    tr,
	}
	defer w.Close()
	out := make([]kafka.Message, len(msgs))
	copy(out, msgs)
	start := time.Now()
	sent := 0
	for sent < len(out) {
		due := min(len(out), int(time.Since(start).Seconds()*float64(rate))+1)
		if due <= sent {
			select {
			case <-ctx.Done():
				return fmt.Errorf("kafkatest: stream to %s stopped after %d of %d records: %w", topic, sent, len(out), ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		chunk := out[sent:min(due, sent+maxStreamChunk)]
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := w.WriteMessages(wctx, chunk...)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("kafkatest: stream to %s stopped after %d of %d records: %w", topic, sent, len(out), ctx.Err())
			}
			s.failures.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		sent += len(chunk)
		s.written.Store(int64(sent))
	}
	return nil
}

// Written returns the number of records of the log written so far.
func (s *Stream) Written() int64 { return s.written.Load() }

// Failures returns the number of writes that failed and were retried.
func (s *Stream) Failures() int64 { return s.failures.Load() }

// Wait waits until the whole log is written, or timeout has passed.
func (s *Stream) Wait(timeout time.Duration) error {
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		s.cancel()
		return errors.New("kafkatest: stream not written within " + timeout.String())
	}
}

// EndOffsets returns the end offset (the offset the next record will get)
// of every partition of topic, or an error when the brokers do not answer.
func EndOffsets(ctx context.Context, brokers []string, topic string, partitions int) (map[int]int64, error) {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second, Transport: tr}
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("kafkatest: end offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, partitions)
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("kafkatest: end offset of %s partition %d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	if len(out) != partitions {
		return nil, fmt.Errorf("kafkatest: end offsets of %s: %d of %d partitions answered", topic, len(out), partitions)
	}
	return out, nil
}

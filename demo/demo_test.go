package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/kafkatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, kafkatest.LeakIgnores...)
}

// TestFeed runs the simulator for its Duration and reads back what it
// wrote: decodable records of the configured symbols, on the topic of the
// broker whose address Brokers gives.
func TestFeed(t *testing.T) {
	f, err := Start(Config{Topic: "quotes", Partitions: 1, Symbols: 5, Rate: 500, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.Brokers(), Topic: "quotes", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	syms := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var u codec.Update
	for len(syms) < 5 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %d symbols: %v", len(syms), err)
		}
		if err := codec.DecodeRecord(m.Key, m.Value, &u); err != nil {
			t.Fatalf("offset %d: %v", m.Offset, err)
		}
		syms[string(u.Sym)] = true
	}
}

// TestFeedHistory writes a past, then runs live: the topic holds the
// history's updates stamped over the last History, oldest first, then the
// live run's, which go on from the prices the history left.
func TestFeedHistory(t *testing.T) {
	f, err := Start(Config{Topic: "quotes", Partitions: 1, Symbols: 5, Rate: 2, History: time.Hour, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := time.Now()
	n, err := f.WriteHistory(ctx)
	if err != nil || n != 7200 {
		t.Fatalf("WriteHistory: %d updates, %v; want 2/s over an hour, 7200", n, err)
	}
	if err := f.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.Brokers(), Topic: "quotes", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var u codec.Update
	var prev float64
	for i := int64(0); i < n+5; i++ { // the history, then the live run's initial state of the 5 symbols
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if err := codec.DecodeRecord(m.Key, m.Value, &u); err != nil {
			t.Fatalf("offset %d: %v", m.Offset, err)
		}
		ts := u.Values[codec.FieldTS]
		past := ts < float64(before.UnixMicro())
		switch {
		case ts < prev:
			t.Fatalf("offset %d: ts %v after %v", m.Offset, ts, prev)
		case i < n && (!past || ts < float64(before.Add(-time.Hour-time.Second).UnixMicro())):
			t.Fatalf("offset %d: history record with ts %v, want one in the hour before %d", m.Offset, ts, before.UnixMicro())
		case i >= n && past:
			t.Fatalf("offset %d: live record with ts %v, before the start %d", m.Offset, ts, before.UnixMicro())
		}
		prev = ts
	}
}

func TestConfigValidateHistory(t *testing.T) {
	for _, h := range []time.Duration{-time.Second, MaxHistory + time.Second} {
		c := DefaultConfig()
		c.History = h
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "History") {
			t.Errorf("History %v: %v, want an error naming History", h, err)
		}
	}
}

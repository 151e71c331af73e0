package demo

import (
	"context"
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

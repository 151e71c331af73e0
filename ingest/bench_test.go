package ingest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/snapshot"
)

// BenchmarkIngest measures the per-record work of a partition goroutine —
// decode, apply to the store, publish the offset — without the network, in
// records per second. Run it on one core:
//
//	go test -run '^$' -bench Ingest -cpu 1 ./ingest/
func BenchmarkIngest(b *testing.B) {
	formats := []struct {
		name   string
		format codec.Format
	}{
		{"msgpack", codec.Binary},
		{"json", codec.JSON},
	}
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			msgs := kafkatest.Log(kafkatest.LogConfig{Seed: 41, Records: 1 << 14, Symbols: 1000, Format: f.format})
			store := snapshot.New()
			c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "ticks", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, store)
			if err != nil {
				b.Fatal(err)
			}
			p := &partition{}
			var u codec.Update
			var bytes int64
			for _, m := range msgs {
				bytes += int64(len(m.Key) + len(m.Value))
			}
			b.SetBytes(bytes / int64(len(msgs)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := &msgs[i&(len(msgs)-1)]
				m.Offset = int64(i)
				c.handle(p, m, &u)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if c.records.Load() != uint64(b.N) {
				b.Fatalf("applied %d of %d records", c.records.Load(), b.N)
			}
		})
	}
}

// BenchmarkIngestKafka reads a log of 200 000 MessagePack records over 4
// partitions from the embedded broker through kafka-go, from the first
// offset to the last, and applies them: each op is one whole log. The broker
// runs in the same process, so records/s is what consumer and broker reach
// together on the cores given:
//
//	go test -run '^$' -bench IngestKafka -benchtime 3x ./ingest/
func BenchmarkIngestKafka(b *testing.B) {
	const records = 200_000
	broker := startBroker(b, 4)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 43, Records: records, Symbols: 1000})
	kafkatest.Produce(b, broker.Addrs(), testTopic, nil, log)
	b.ResetTimer()
	for range b.N {
		f := run(b, broker.Addrs(), testTopic, Config{})
		waitUntil(b, 5*time.Minute, "the whole log", func() bool { return f.consumer.Stats().Records >= records })
		b.StopTimer()
		f.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

//go:build kafka

package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/kafkatest"
)

// TestKafkaClusterRollingRestart restarts the three brokers of a KRaft
// cluster one after the other, waiting for the replicas to sync in between,
// as a rolling upgrade does, while a producer writes with acks=all (issue
// 10, item 5). kafka-go's readers have been reported to stop delivering
// after a broker restart (kafka-go #387): ingest must keep reading through
// every restart, never go stale, and read every record.
func TestKafkaClusterRollingRestart(t *testing.T) {
	brokers := kafkatest.ClusterBrokers(t)
	const (
		parts = 6
		rate  = 1000
	)
	topic := kafkatest.CreateTopic(t, brokers, parts)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 40, Records: 60_000, Symbols: 100})
	f := run(t, brokers, topic, Config{})
	read := func() int64 {
		var n int64
		for _, p := range f.consumer.Stats().Partitions {
			n += p.Next
		}
		return n
	}
	stream := kafkatest.StartStream(t, brokers, topic, log, rate)
	waitUntil(t, time.Minute, "records flowing", func() bool { return read() > 2000 })

	// The longest time ingest went without reading a record while the
	// producer was writing.
	var (
		mu      sync.Mutex
		longest time.Duration
	)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		last, lastAt := read(), time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			now := time.Now()
			if n := read(); n != last {
				last, lastAt = n, now
			} else if stream.Written() < int64(len(log)) {
				mu.Lock()
				longest = max(longest, now.Sub(lastAt))
				mu.Unlock()
			}
		}
	}()
	start := time.Now()
	for b := 1; b <= 3; b++ {
		kafkatest.RestartClusterBroker(t, b)
		kafkatest.WaitInSync(t, brokers, topic)
	}
	restarts := time.Since(start)
	if err := stream.Wait(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kafkatest.EndOffsets(ctx, brokers, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	for _, e := range ends {
		end += e
	}
	waitUntil(t, time.Minute, "every record read", func() bool { return read() == end })
	close(stop)
	<-watched

	t.Logf("3 brokers restarted in %v while %d records were written (%d writes retried); longest pause of ingest while the producer wrote: %v",
		restarts.Round(time.Millisecond), end, stream.Failures(), longest.Round(time.Millisecond))
	if longest > 10*time.Second {
		t.Errorf("ingest read nothing for %v during the rolling restart", longest)
	}
	for len(f.status) > 0 {
		if s := <-f.status; s == FeedStale {
			t.Errorf("the feed went stale during the rolling restart")
		}
	}
}

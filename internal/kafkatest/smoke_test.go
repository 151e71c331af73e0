//go:build kafka

package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

const (
	smokePartitions = 4
	smokeRecords    = 10_000
	smokeKeys       = 64
	smokeTimeout    = 90 * time.Second
)

// TestSmokePlaintext writes 10,000 keyed records to a 4-partition topic over
// the PLAINTEXT listener and reads every partition back.
func TestSmokePlaintext(t *testing.T) {
	brokers := Brokers(t)
	t.Logf("Kafka %s at %v", versionOrUnknown(), brokers)
	topic := CreateTopic(t, brokers, smokePartitions)
	roundTrip(t, brokers, topic, nil)
}

// TestSmokeSCRAM512 does the same over the SASL_PLAINTEXT listener with
// SCRAM-SHA-512 (the topic itself is created over PLAINTEXT).
func TestSmokeSCRAM512(t *testing.T) {
	brokers := Brokers(t)
	saslBrokers := SASLBrokers(t)
	topic := CreateTopic(t, brokers, smokePartitions)
	roundTrip(t, saslBrokers, topic, SCRAMMechanism(t, scram.SHA512))
}

// TestSmokeSASLMechanisms checks that every mechanism the broker enables
// authenticates kafka-go, and that a wrong password is refused.
func TestSmokeSASLMechanisms(t *testing.T) {
	saslBrokers := SASLBrokers(t)
	user, pass := SCRAMUser()
	mech := func(m sasl.Mechanism, err error) sasl.Mechanism {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		name   string
		mech   sasl.Mechanism
		wantOK bool
	}{
		{"SCRAM-SHA-256", mech(scram.Mechanism(scram.SHA256, user, pass)), true},
		{"SCRAM-SHA-512", mech(scram.Mechanism(scram.SHA512, user, pass)), true},
		{"PLAIN", plain.Mechanism{Username: user, Password: pass}, true},
		{"SCRAM-SHA-512/wrong-password", mech(scram.Mechanism(scram.SHA512, user, "wrong")), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tr := &kafka.Transport{SASL: tc.mech, DialTimeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			client := &kafka.Client{Addr: kafka.TCP(saslBrokers...), Transport: tr, Timeout: 10 * time.Second}
			md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
			switch {
			case tc.wantOK && err != nil:
				t.Fatalf("Kafka %s: Metadata over SASL %s failed: %v", versionOrUnknown(), tc.name, err)
			case tc.wantOK && len(md.Brokers) == 0:
				t.Fatalf("Kafka %s: Metadata over SASL %s returned no brokers", versionOrUnknown(), tc.name)
			case !tc.wantOK && err == nil:
				t.Fatalf("Kafka %s: SASL %s was accepted; want an authentication failure", versionOrUnknown(), tc.name)
			case !tc.wantOK:
				t.Logf("refused as wanted: %v", err)
			}
		})
	}
}

// TestSmokeConsumerGroup reads a topic through a consumer group (JoinGroup,
// SyncGroup, OffsetFetch, OffsetCommit, Heartbeat, LeaveGroup): the
// consumer-group request versions are what KIP-896 (Kafka 4.0) cut most.
func TestSmokeConsumerGroup(t *testing.T) {
	brokers := Brokers(t)
	topic := CreateTopic(t, brokers, smokePartitions)
	const n = 1000
	ctx, cancel := context.WithTimeout(context.Background(), smokeTimeout)
	defer cancel()

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 500}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("k%02d", i%16)), Value: []byte(strconv.Itoa(i))}
	}
	op(t, "Writer.WriteMessages (Produce)", w.WriteMessages(ctx, msgs...))
	op(t, "Writer.Close", w.Close())

	group := "kafkatest-group-" + topic
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, Topic: topic, GroupID: group,
		StartOffset: kafka.FirstOffset, MaxWait: 250 * time.Millisecond,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		CommitInterval: 0, // synchronous commits
		ErrorLogger:    kafka.LoggerFunc(func(f string, a ...any) { t.Logf("kafka-go reader: "+f, a...) }),
	})
	closed := false
	defer func() { // stop the reader's goroutines (and their logging) on early failure too
		if !closed {
			r.Close()
		}
	}()
	seen := make(map[string]bool, n)
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("Kafka %s: consumer group %q: FetchMessage after %d/%d records "+
				"(group join/sync/offset-fetch or Fetch failed): %v", versionOrUnknown(), group, len(seen), n, err)
		}
		seen[string(m.Value)] = true
		if len(seen)%250 == 0 || len(seen) == n {
			op(t, "Reader.CommitMessages (OffsetCommit)", r.CommitMessages(ctx, m))
		}
	}
	closed = true
	op(t, "Reader.Close (LeaveGroup)", r.Close())
}

// roundTrip writes smokeRecords records with the Hash balancer and reads each
// partition back with its own group-less Reader, then checks that every record
// came back once, in order per key, on the partition the balancer chose.
func roundTrip(t *testing.T, brokers []string, topic string, mech sasl.Mechanism) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), smokeTimeout)
	defer cancel()
	start := time.Now()

	// Write.
	tr := &kafka.Transport{SASL: mech, DialTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    1000,
		Transport:    tr,
	}
	msgs := make([]kafka.Message, smokeRecords)
	perKey := make(map[string]int, smokeKeys)
	for i := range msgs {
		key := fmt.Sprintf("key-%02d", i%smokeKeys)
		seq := perKey[key]
		perKey[key]++
		msgs[i] = kafka.Message{Key: []byte(key), Value: []byte(key + "/" + strconv.Itoa(seq))}
	}
	op(t, "Writer.WriteMessages (Produce)", w.WriteMessages(ctx, msgs...))
	op(t, "Writer.Close", w.Close())
	if s := w.Stats(); s.Errors != 0 {
		t.Errorf("writer stats report %d errors", s.Errors)
	}
	wrote := time.Since(start)

	// End offsets per partition, to know when each reader is done.
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 10 * time.Second}
	reqs := make([]kafka.OffsetRequest, smokePartitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	op(t, "Client.ListOffsets", err)
	end := make([]int64, smokePartitions)
	var total int64
	for _, po := range lo.Topics[topic] {
		op(t, fmt.Sprintf("Client.ListOffsets partition %d", po.Partition), po.Error)
		end[po.Partition] = po.LastOffset
		total += po.LastOffset
	}
	if total != smokeRecords {
		t.Fatalf("end offsets %v sum to %d, want %d records", end, total, smokeRecords)
	}

	// Read: one Reader per partition, no consumer group.
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, SASLMechanism: mech}
	got := make([][]kafka.Message, smokePartitions)
	errs := make([]error, smokePartitions)
	var wg sync.WaitGroup
	for p := 0; p < smokePartitions; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			got[p], errs[p] = readPartition(ctx, brokers, dialer, topic, p, end[p])
		}(p)
	}
	wg.Wait()
	for p, err := range errs {
		op(t, fmt.Sprintf("Reader (partition %d, no group: ListOffsets+Fetch)", p), err)
	}

	// Check.
	balancer := &kafka.Hash{}
	parts := []int{0, 1, 2, 3}
	next := make(map[string]int, smokeKeys)
	keyPartition := make(map[string]int, smokeKeys)
	n := 0
	for p, ms := range got {
		for i, m := range ms {
			if m.Partition != p || m.Offset != int64(i) {
				t.Fatalf("partition %d record %d: got partition %d offset %d", p, i, m.Partition, m.Offset)
			}
			key := string(m.Key)
			want := key + "/" + strconv.Itoa(next[key])
			if string(m.Value) != want {
				t.Fatalf("partition %d offset %d: value %q, want %q (out of order or lost)", p, m.Offset, m.Value, want)
			}
			next[key]++
			if q, ok := keyPartition[key]; ok && q != p {
				t.Fatalf("key %q on partitions %d and %d", key, q, p)
			}
			keyPartition[key] = p
			if bp := balancer.Balance(kafka.Message{Key: m.Key}, parts...); bp != p {
				t.Fatalf("key %q on partition %d, Hash balancer says %d", key, p, bp)
			}
			n++
		}
	}
	if n != smokeRecords {
		t.Fatalf("read %d records, want %d", n, smokeRecords)
	}
	for key, c := range perKey {
		if next[key] != c {
			t.Fatalf("key %q: read %d records, want %d", key, next[key], c)
		}
	}
	counts := make([]int, smokePartitions)
	for p := range got {
		counts[p] = len(got[p])
	}
	auth := "PLAINTEXT"
	if mech != nil {
		auth = "SASL " + mech.Name()
	}
	t.Logf("Kafka %s, %s: %d records, %d keys, per partition %v; write %v, total %v",
		versionOrUnknown(), auth, n, len(perKey), counts, wrote.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func readPartition(ctx context.Context, brokers []string, dialer *kafka.Dialer, topic string, p int, end int64) ([]kafka.Message, error) {
	out := make([]kafka.Message, 0, end)
	if end == 0 {
		return out, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     brokers,
		Topic:       topic,
		Partition:   p,
		Dialer:      dialer,
		MinBytes:    1,
		MaxBytes:    1 << 20,
		MaxWait:     250 * time.Millisecond,
		StartOffset: kafka.FirstOffset,
		MaxAttempts: 3,
	})
	defer r.Close()
	for int64(len(out)) < end {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return out, fmt.Errorf("after %d/%d records: %w", len(out), end, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// op fails the test with the kafka-go operation and broker version when err
// is set, so an incompatibility names the request that the broker refused.
func op(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	hint := ""
	if strings.Contains(err.Error(), "Unsupported Version") || errors.Is(err, kafka.UnsupportedVersion) {
		hint = " (the broker refused this request version: kafka-go/broker protocol incompatibility, cf. KIP-896)"
	}
	t.Fatalf("Kafka %s: kafka-go %s failed: %v%s", versionOrUnknown(), what, err, hint)
}

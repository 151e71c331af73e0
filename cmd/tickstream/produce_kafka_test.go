//go:build kafka

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/internal/kafkatest"
)

// kafkaTopicName returns a topic name of its own for this test, deleted
// from the broker when the test ends.
func kafkaTopicName(t *testing.T) string {
	t.Helper()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	topic := "produce-test." + hex.EncodeToString(rnd[:])
	brokers := kafkatest.Brokers(t)
	t.Cleanup(func() {
		tr := &kafka.Transport{}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
		res, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
		if err == nil {
			err = res.Errors[topic]
		}
		if err != nil && !strings.Contains(err.Error(), "Unknown Topic") {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})
	return topic
}

// kafkaTopic returns the partitions, replication factor and records of a
// topic, through the PLAINTEXT listener.
func kafkaTopic(t *testing.T, topic string) (partitions, replicas int, records int64) {
	t.Helper()
	addr := kafkatest.Brokers(t)[0]
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	for _, p := range parts {
		lc, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		end, err := lc.ReadLastOffset()
		lc.Close()
		if err != nil {
			t.Fatal(err)
		}
		records += end
	}
	return len(parts), len(parts[0].Replicas), records
}

// TestProduceKafkaCreatesTopic runs produce against real Apache Kafka, on
// each listener of the test broker, for a topic that does not exist: it
// creates the topic as asked, says so, writes, and finds the topic the
// second time.
func TestProduceKafkaCreatesTopic(t *testing.T) {
	user, pass := kafkatest.SCRAMUser()
	ca, cert, key := kafkatest.TLSFiles(t)
	tests := []struct {
		name       string
		args       []string
		partitions int
	}{
		{"plaintext", []string{"--brokers", strings.Join(kafkatest.Brokers(t), ","), "--partitions", "3", "--replication-factor", "1"}, 3},
		{"brokers' defaults", []string{"--brokers", strings.Join(kafkatest.Brokers(t), ","), "--partitions", "-1"}, 4},
		{"SASL SCRAM-SHA-512", []string{"--brokers", strings.Join(kafkatest.SASLBrokers(t), ","), "--partitions", "2",
			"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", user, "--sasl-password", pass}, 2},
		{"SASL PLAIN", []string{"--brokers", strings.Join(kafkatest.SASLBrokers(t), ","),
			"--sasl-mechanism", "PLAIN", "--sasl-user", user, "--sasl-password", pass}, 4},
		{"TLS client certificate", []string{"--brokers", strings.Join(kafkatest.SSLBrokers(t), ","), "--partitions", "1",
			"--tls-ca", ca, "--tls-cert", cert, "--tls-key", key}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case has its own topic; in turn they took half a minute.
			t.Parallel()
			topic := kafkaTopicName(t)
			for i, want := range []string{"created the topic", "topic exists"} {
				var stdout, stderr bytes.Buffer
				// --duration counts the connection too: on a loaded machine
				// a TLS handshake with the broker has taken over a second.
				args := append([]string{"--topic", topic, "--symbols", "5", "--rate", "100", "--duration", "3s"}, tt.args...)
				if err := runProduce(t.Context(), args, &stdout, &stderr); err != nil {
					t.Fatalf("run %d: %v; stderr:\n%s", i+1, err, &stderr)
				}
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("run %d: stderr %q, want %q", i+1, stderr.String(), want)
				}
				if !strings.HasPrefix(stdout.String(), "produced ") {
					t.Errorf("run %d: summary %q", i+1, stdout.String())
				}
			}
			parts, replicas, records := kafkaTopic(t, topic)
			t.Logf("Kafka %s: topic with %d partitions, %d replicas, %d records", kafkatest.Version(), parts, replicas, records)
			if parts != tt.partitions || replicas != 1 {
				t.Errorf("topic has %d partitions and %d replicas, want %d and 1", parts, replicas, tt.partitions)
			}
			if records < 2*5 {
				t.Errorf("%d records on the topic, want at least the initial states of two runs", records)
			}
		})
	}
}

// TestProduceKafkaRefused checks that a topic the broker cannot create (3
// replicas on a single broker) stops produce at once, exit 1, with how to
// create it.
func TestProduceKafkaRefused(t *testing.T) {
	topic := kafkaTopicName(t)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(t.Context(), []string{"produce", "--brokers", strings.Join(kafkatest.Brokers(t), ","), "--topic", topic,
		"--replication-factor", "3"}, &stdout, &stderr)
	elapsed := time.Since(start)
	t.Logf("Kafka %s refused in %v: %s", kafkatest.Version(), elapsed, stderr.String())
	if code != 1 || !strings.Contains(stderr.String(), "Invalid Replication Factor") ||
		!strings.Contains(stderr.String(), "kafka-topics.sh --bootstrap-server") {
		t.Errorf("exit %d, stderr %q; want 1, the broker's refusal and how to create the topic", code, stderr.String())
	}
	if elapsed > 10*time.Second {
		t.Errorf("refusal took %v, want at once", elapsed)
	}
}

// TestProduceKafkaOutage stops the broker while produce writes, and keeps it
// down past --duration: produce retries until the end, not past it, and
// exits 0 having written what it could before the outage.
func TestProduceKafkaOutage(t *testing.T) {
	topic := kafkaTopicName(t)
	done := make(chan int, 1)
	var stdout, stderr syncBuffer
	start := time.Now()
	go func() {
		done <- run(t.Context(), []string{"produce", "--brokers", strings.Join(kafkatest.Brokers(t), ","), "--topic", topic,
			"--symbols", "5", "--rate", "100", "--duration", "8s"}, &stdout, &stderr)
	}()
	for !strings.Contains(stderr.String(), "simulating") {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("produce did not start writing; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	kafkatest.StopBroker(t)
	stopped := time.Since(start)
	code := <-done
	elapsed := time.Since(start)
	t.Logf("Kafka %s stopped at %v; produce of 8s ended after %v: %s", kafkatest.Version(), stopped, elapsed, stdout.String())
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "kafka write failed; retrying") {
		t.Errorf("no retry during the outage; stderr:\n%s", stderr.String())
	}
	if elapsed > 8*time.Second+kafkaDialTimeout || elapsed < 8*time.Second {
		t.Errorf("produce of 8s took %v with the broker down, want 8s: retries until the end, none past it", elapsed)
	}
}

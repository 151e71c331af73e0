//go:build kafka

package ingest

import (
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/kafkatest"
)

// TestKafkaMalformedRecords runs a mixed stream of MessagePack, JSON and
// bad records through a real broker: the bad ones are counted by reason
// and skipped, and the state is that of the good ones.
func TestKafkaMalformedRecords(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, 4)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 21, Records: 20_000, Symbols: 200, JSONEvery: 3, BadEvery: 11})
	f := run(t, brokers, topic, Config{})
	kafkatest.Produce(t, brokers, topic, nil, log)
	f.waitRead(uint64(len(log)))
	f.check(log)
}

// TestKafkaSASL consumes over the broker's SASL listener with every
// mechanism it enables; a wrong password never gets data and the feed is
// reported stale.
func TestKafkaSASL(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	saslBrokers := kafkatest.SASLBrokers(t)
	user, pass := kafkatest.SCRAMUser()
	topic := kafkatest.CreateTopic(t, brokers, 2)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 22, Records: 3000, Symbols: 50})
	kafkatest.Produce(t, brokers, topic, nil, log)
	tests := []struct {
		name string
		sec  Security
		ok   bool
	}{
		{"SCRAM-SHA-256", Security{SASLMechanism: SASLSCRAMSHA256, SASLUser: user, SASLPassword: pass}, true},
		{"SCRAM-SHA-512", Security{SASLMechanism: "scram-sha-512", SASLUser: user, SASLPassword: pass}, true},
		{"PLAIN", Security{SASLMechanism: SASLPlain, SASLUser: user, SASLPassword: pass}, true},
		{"SCRAM-SHA-512 wrong password", Security{SASLMechanism: SASLSCRAMSHA512, SASLUser: user, SASLPassword: "wrong"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.sec.Dialer(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			f := run(t, saslBrokers, topic, Config{Dialer: d, StaleAfter: time.Second})
			if !tt.ok {
				expectStatus(t, f.status, FeedStale)
				if f.consumer.Ready() || f.consumer.Stats().Records != 0 {
					t.Fatalf("a wrong password read data: %+v", f.consumer.Stats())
				}
				return
			}
			f.waitRead(uint64(len(log)))
			f.check(log)
		})
	}
}

// TestKafkaStartByTime looks the start offsets up by record time on a real
// broker: only records from the last hour are read.
func TestKafkaStartByTime(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, 3)
	old := kafkatest.Log(kafkatest.LogConfig{Seed: 23, Records: 2000, Symbols: 40})
	fresh := kafkatest.Log(kafkatest.LogConfig{Seed: 24, Records: 2000, Symbols: 40})
	for i := range old {
		old[i].Time = time.Now().Add(-3 * time.Hour)
	}
	kafkatest.Produce(t, brokers, topic, nil, old)
	kafkatest.Produce(t, brokers, topic, nil, fresh)
	f := run(t, brokers, topic, Config{Start: "-1h"})
	f.waitRead(uint64(len(fresh)))
	waitUntil(t, 20*time.Second, "caught up", f.consumer.Ready)
	f.check(fresh)
}

// TestKafkaTLS consumes over the broker's SSL listener, which requires a
// client certificate: with the test CA and the client's certificate the log
// is read in full; without the certificate, or without trusting the CA, no
// record is read and the feed is reported stale.
func TestKafkaTLS(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	sslBrokers := kafkatest.SSLBrokers(t)
	ca, cert, key := kafkatest.TLSFiles(t)
	topic := kafkatest.CreateTopic(t, brokers, 2)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 23, Records: 3000, Symbols: 50})
	kafkatest.Produce(t, brokers, topic, nil, log)
	tests := []struct {
		name string
		sec  Security
		ok   bool
	}{
		{"mutual TLS", Security{CAFile: ca, CertFile: cert, KeyFile: key}, true},
		{"no client certificate", Security{CAFile: ca}, false},
		{"CA not trusted", Security{TLS: true, CertFile: cert, KeyFile: key}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.sec.Dialer(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			f := run(t, sslBrokers, topic, Config{Dialer: d, StaleAfter: time.Second})
			if !tt.ok {
				expectStatus(t, f.status, FeedStale)
				if f.consumer.Ready() || f.consumer.Stats().Records != 0 {
					t.Fatalf("read data without a valid TLS setup: %+v", f.consumer.Stats())
				}
				return
			}
			f.waitRead(uint64(len(log)))
			f.check(log)
		})
	}
}

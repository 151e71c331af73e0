// Package kafkatest connects integration tests to the real Apache Kafka broker
// that testenv/kafka/kafka.sh runs on 127.0.0.1 (single node, KRaft).
//
// The package itself builds everywhere; tests that need a broker carry the
// build tag `kafka` and are run by `make test-kafka`, which starts each broker
// line in turn (newest 3.9.x and newest 4.x) and exports:
//
//	TICKSTREAM_KAFKA_BROKERS       PLAINTEXT bootstrap list, e.g. 127.0.0.1:9092
//	TICKSTREAM_KAFKA_SASL_BROKERS  SASL_PLAINTEXT bootstrap list, e.g. 127.0.0.1:9094
//	                               (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN; see SCRAMUser)
//	TICKSTREAM_KAFKA_SSL_BROKERS   SSL bootstrap list, e.g. 127.0.0.1:9095 (client
//	                               certificate required; see TLSFiles)
//	TICKSTREAM_KAFKA_TLS_DIR       the folder of that listener's CA and client
//	                               certificate (`kafka.sh tls-dir`)
//	TICKSTREAM_KAFKA_VERSION       the broker version, e.g. 4.4.0
//
// By hand:
//
//	testenv/kafka/kafka.sh up 4.4.0
//	TICKSTREAM_KAFKA_BROKERS=127.0.0.1:9092 TICKSTREAM_KAFKA_SASL_BROKERS=127.0.0.1:9094 \
//	    go test -tags kafka -run Smoke ./internal/kafkatest/
//	testenv/kafka/kafka.sh down
//
// Without the variables a test is skipped with that hint, except under CI=true,
// where a missing broker is a failure rather than a silent skip.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.uber.org/goleak"
)

// LeakIgnores are the goroutines kafka-go keeps for the life of the
// process (its shared transport's idle-connection reaper), for goleak.
var LeakIgnores = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*Transport).RoundTrip.func1"),
	goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
}

// Environment variables read by this package; make test-kafka sets them.
const (
	// EnvBrokers holds the comma-separated PLAINTEXT bootstrap addresses.
	EnvBrokers = "TICKSTREAM_KAFKA_BROKERS"
	// EnvSASLBrokers holds the comma-separated SASL_PLAINTEXT bootstrap addresses.
	EnvSASLBrokers = "TICKSTREAM_KAFKA_SASL_BROKERS"
	// EnvSSLBrokers holds the comma-separated SSL bootstrap addresses.
	EnvSSLBrokers = "TICKSTREAM_KAFKA_SSL_BROKERS"
	// EnvTLSDir holds the folder of the SSL listener's CA and client
	// certificate, as kafka.sh makes them.
	EnvTLSDir = "TICKSTREAM_KAFKA_TLS_DIR"
	// EnvVersion holds the version of the running broker, e.g. "3.9.2".
	EnvVersion = "TICKSTREAM_KAFKA_VERSION"
	// EnvClusterBrokers holds the PLAINTEXT addresses of the three brokers
	// of the test cluster (kafka.sh cluster-up), when it runs instead of
	// the single broker.
	EnvClusterBrokers = "TICKSTREAM_KAFKA_CLUSTER_BROKERS"
)

// ClusterBrokers returns the addresses of the test cluster's three brokers
// from TICKSTREAM_KAFKA_CLUSTER_BROKERS, with the same skip/fail rule as
// Brokers. make test-kafka runs the tests named TestKafkaCluster* against
// the cluster, and the others against the single broker.
func ClusterBrokers(t testing.TB) []string {
	t.Helper()
	return fromEnv(t, EnvClusterBrokers)
}

// The SCRAM (and PLAIN) credentials that kafka.sh creates when it formats the
// broker's storage.
const (
	scramUser = "tickstream"
	scramPass = "tickstream-secret"
)

// opTimeout bounds each admin round trip made by this package.
const opTimeout = 30 * time.Second

// Brokers returns the PLAINTEXT bootstrap addresses from TICKSTREAM_KAFKA_BROKERS.
// When the variable is unset the test is skipped with instructions, or fails
// when CI=true.
func Brokers(t testing.TB) []string {
	t.Helper()
	return fromEnv(t, EnvBrokers)
}

// SASLBrokers returns the SASL_PLAINTEXT bootstrap addresses from
// TICKSTREAM_KAFKA_SASL_BROKERS, with the same skip/fail rule as Brokers.
// Authenticate with SCRAMUser, e.g. through SCRAMMechanism.
func SASLBrokers(t testing.TB) []string {
	t.Helper()
	return fromEnv(t, EnvSASLBrokers)
}

// SSLBrokers returns the SSL bootstrap addresses from
// TICKSTREAM_KAFKA_SSL_BROKERS, with the same skip/fail rule as Brokers.
// Connect with the files of TLSFiles.
func SSLBrokers(t testing.TB) []string {
	t.Helper()
	return fromEnv(t, EnvSSLBrokers)
}

// TLSFiles returns the PEM files of the SSL listener: the CA that signed the
// broker's certificate, and a client certificate and key it accepts.
func TLSFiles(t testing.TB) (ca, cert, key string) {
	t.Helper()
	dir := strings.TrimSpace(os.Getenv(EnvTLSDir))
	if dir == "" {
		fromEnv(t, EnvTLSDir)
	}
	return dir + "/ca.pem", dir + "/client.pem", dir + "/client-key.pem"
}

// SCRAMUser returns the user and password that the test broker accepts on its
// SASL listener, for SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN.
func SCRAMUser() (user, pass string) {
	return scramUser, scramPass
}

// SCRAMMechanism returns a kafka-go SASL mechanism for SCRAMUser with the given
// algorithm (scram.SHA256 or scram.SHA512), for kafka.Transport.SASL or
// kafka.Dialer.SASLMechanism.
func SCRAMMechanism(t testing.TB, algo scram.Algorithm) sasl.Mechanism {
	t.Helper()
	user, pass := SCRAMUser()
	m, err := scram.Mechanism(algo, user, pass)
	if err != nil {
		t.Fatalf("kafkatest: scram mechanism %s: %v", algo.Name(), err)
	}
	return m
}

// Version returns the version of the broker under test (TICKSTREAM_KAFKA_VERSION),
// or "" when it is not known.
func Version() string {
	return strings.TrimSpace(os.Getenv(EnvVersion))
}

// CreateTopic creates a topic with a unique name and the given number of
// partitions through brokers, waits until every partition has a leader, and
// deletes the topic in t.Cleanup. It returns the topic name. Each partition
// has a replica on every broker, up to three (one on the single test
// broker, three on the test cluster).
func CreateTopic(t testing.TB, brokers []string, partitions int) string {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("kafkatest: CreateTopic: partitions must be >= 1, got %d", partitions)
	}
	topic := topicName(t)
	// A transport of its own whose connections are closed after use:
	// tests that check for leaked goroutines must not find its readers.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: opTimeout, Transport: tr}

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		t.Fatalf("kafkatest: metadata of Kafka %s: %v", versionOrUnknown(), err)
	}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: min(3, max(1, len(md.Brokers)))}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("kafkatest: CreateTopics %q (%d partitions) on Kafka %s: %v", topic, partitions, versionOrUnknown(), err)
	}

	t.Cleanup(func() {
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		res, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
		if err == nil {
			err = res.Errors[topic]
		}
		if err != nil {
			t.Logf("kafkatest: DeleteTopics %q on Kafka %s: %v", topic, versionOrUnknown(), err)
		}
	})

	if err := waitForLeaders(ctx, client, topic, partitions); err != nil {
		t.Fatalf("kafkatest: topic %q on Kafka %s: %v", topic, versionOrUnknown(), err)
	}
	return topic
}

// WaitInSync waits until every replica of every partition of topic is in
// sync, as a rolling restart must before it stops the next broker.
func WaitInSync(t testing.TB, brokers []string, topic string) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: opTimeout, Transport: tr}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil {
			synced := true
			for _, p := range md.Topics[0].Partitions {
				if len(p.Isr) < len(p.Replicas) {
					synced = false
				}
			}
			if synced {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: the replicas of %s not in sync within 2 minutes (last error %v)", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitForLeaders polls Metadata until the topic shows the wanted number of
// partitions, each with a leader and no error.
func waitForLeaders(ctx context.Context, client *kafka.Client, topic string, partitions int) error {
	var last error
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		switch {
		case err != nil:
			last = err
		case len(md.Topics) != 1:
			last = fmt.Errorf("metadata returned %d topics", len(md.Topics))
		case md.Topics[0].Error != nil:
			last = md.Topics[0].Error
		case len(md.Topics[0].Partitions) != partitions:
			last = fmt.Errorf("metadata shows %d of %d partitions", len(md.Topics[0].Partitions), partitions)
		default:
			last = nil
			for _, p := range md.Topics[0].Partitions {
				if p.Error != nil || p.Leader.Host == "" {
					last = fmt.Errorf("partition %d has no leader yet (err=%v)", p.ID, p.Error)
					break
				}
			}
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func fromEnv(t testing.TB, name string) []string {
	t.Helper()
	if addrs := fromEnvQuiet(name); len(addrs) > 0 {
		return addrs
	}
	const how = "run `make test-kafka` (starts a real Apache Kafka broker from testenv/kafka), " +
		"or `testenv/kafka/kafka.sh up` and set " + EnvBrokers + "=127.0.0.1:9092 " + EnvSASLBrokers + "=127.0.0.1:9094"
	if os.Getenv("CI") == "true" {
		t.Fatalf("kafkatest: %s is not set but CI=true: a kafka-tagged test ran without a broker; %s", name, how)
	}
	t.Skipf("kafkatest: %s is not set; %s", name, how)
	return nil
}

// topicName makes a valid, unique topic name that still says which test made it.
func topicName(t testing.TB) string {
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('.')
		}
		if b.Len() >= 100 {
			break
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("kafkatest: random topic suffix: %v", err)
	}
	return "kafkatest." + b.String() + "." + hex.EncodeToString(rnd[:])
}

func versionOrUnknown() string {
	if v := Version(); v != "" {
		return v
	}
	return "(unknown version)"
}

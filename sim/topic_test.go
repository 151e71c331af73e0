package sim

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// emptyCluster starts an in-process Kafka broker with no topic.
func emptyCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// producerAt returns a Producer of topic to brokers, closed when the test
// ends, and the buffer its log goes to.
func producerAt(t *testing.T, brokers []string, topic string) (*Producer, *syncBuffer) {
	t.Helper()
	log := new(syncBuffer)
	p, err := NewProducer(ProducerConfig{Brokers: brokers, Topic: topic, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, log
}

func TestEnsureTopic(t *testing.T) {
	c := emptyCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	p, _ := producerAt(t, c.ListenAddrs(), "fresh")
	info, err := p.EnsureTopic(ctx, TopicSpec{Partitions: 3, ReplicationFactor: 1})
	if err != nil || !info.Created || info.Partitions != 3 {
		t.Fatalf("EnsureTopic of a missing topic = %+v, %v; want created with 3 partitions", info, err)
	}
	// The topic takes writes at once, without a retry.
	st, err := p.Run(ctx, NewMarket(Config{Symbols: 5, Seed: 1}), 100, 200*time.Millisecond)
	if err != nil || st.Records < 5 || st.Errors != 0 {
		t.Errorf("Run after EnsureTopic = %+v, %v; want records and no errors", st, err)
	}
	info, err = p.EnsureTopic(ctx, TopicSpec{Partitions: 8, ReplicationFactor: BrokerDefault})
	if err != nil || info.Created || info.Partitions != 3 {
		t.Errorf("EnsureTopic of an existing topic = %+v, %v; want it found as it is, 3 partitions", info, err)
	}
	if _, err := p.EnsureTopic(ctx, TopicSpec{Partitions: 0, ReplicationFactor: 1}); err == nil {
		t.Error("EnsureTopic with 0 partitions: no error")
	}
}

// TestEnsureTopicRefused checks that a cluster's refusal to create the topic
// ends EnsureTopic at once with a TopicError.
func TestEnsureTopicRefused(t *testing.T) {
	c := emptyCluster(t)
	c.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.(*kmsg.CreateTopicsRequest).Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic, st.ErrorCode = rt.Topic, int16(kafka.TopicAuthorizationFailed)
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	p, _ := producerAt(t, c.ListenAddrs(), "forbidden")
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	start := time.Now()
	_, err := p.EnsureTopic(ctx, TopicSpec{Partitions: 4, ReplicationFactor: BrokerDefault})
	var te *TopicError
	if !errors.As(err, &te) || !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Fatalf("EnsureTopic = %v, want a TopicError of Topic Authorization Failed", err)
	}
	if !strings.Contains(err.Error(), "refused to create it with 4 partitions, replicas of the brokers' default") {
		t.Errorf("error %q does not say what was asked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %v, want at once", d)
	}
}

// TestEnsureTopicUnreachable checks that EnsureTopic retries while no
// broker answers, and gives up when its context ends.
func TestEnsureTopicUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, log := producerAt(t, []string{addr}, testTopic)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = p.EnsureTopic(ctx, TopicSpec{Partitions: 4, ReplicationFactor: 1})
	elapsed := time.Since(start)
	t.Logf("EnsureTopic gave up after %v", elapsed)
	if err == nil || !strings.Contains(err.Error(), "unreachable until the run ended") {
		t.Errorf("EnsureTopic = %v, want an error saying Kafka was unreachable", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("EnsureTopic took %v after a 1s context", elapsed)
	}
	if !strings.Contains(log.String(), "kafka unreachable; retrying") {
		t.Errorf("log %q has no retry warning", log)
	}
}

// TestRunDurationWhileWritesFail checks that a Run whose every write fails
// retries until its duration has passed, then ends, and says why nothing was
// written.
func TestRunDurationWhileWritesFail(t *testing.T) {
	c := newCluster(t)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("injected failure"), true
	})
	p, _ := newProducer(t, c, 0)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	start := time.Now()
	st, err := p.Run(ctx, NewMarket(Config{Symbols: 5, Seed: 1}), 100, time.Second)
	elapsed := time.Since(start)
	t.Logf("Run of 1s with failing writes took %v, %d failed attempts", elapsed, st.Errors)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed > 2*time.Second || elapsed < time.Second {
		t.Errorf("Run of 1s took %v while writes failed, want to retry until the end, not past it", elapsed)
	}
	if st.Records != 0 || st.Errors == 0 || st.LastError == nil {
		t.Errorf("%+v, want no record, failed attempts and their last error", st)
	}
}

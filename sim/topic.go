package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// BrokerDefault, as TopicSpec's Partitions or ReplicationFactor, leaves the
// choice to the brokers' num.partitions and default.replication.factor
// (CreateTopics v4 and later: Apache Kafka 2.4 and later).
const BrokerDefault = -1

// topicReadyWait bounds the wait for a created topic's partitions to have
// leaders: past it the first writes retry as after a leader change.
const topicReadyWait = 10 * time.Second

// topicRequestTimeout bounds one metadata or create request.
const topicRequestTimeout = 10 * time.Second

// TopicSpec is how EnsureTopic creates a missing topic.
type TopicSpec struct {
	// Partitions is the number of partitions, or BrokerDefault.
	Partitions int
	// ReplicationFactor is the number of replicas of each partition, or
	// BrokerDefault.
	ReplicationFactor int
}

// TopicInfo describes the topic that EnsureTopic found or made.
type TopicInfo struct {
	// Created reports that EnsureTopic created the topic.
	Created bool
	// Partitions and ReplicationFactor are the topic's, as the cluster
	// reports them (ReplicationFactor is 0 when the metadata did not list
	// the replicas yet).
	Partitions        int
	ReplicationFactor int
}

// TopicError is a refusal of the cluster that retrying will not change: the
// topic is missing and may not or cannot be created as asked, or the
// credentials or certificates are refused.
type TopicError struct {
	Topic string
	Spec  TopicSpec
	Err   error
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("sim: topic %s: %v", e.Topic, e.Err)
}

func (e *TopicError) Unwrap() error { return e.Err }

// EnsureTopic makes sure that the Producer's topic exists, creating it as
// spec says when it is missing: kafka-go's Writer does not ask the brokers to
// create it, and brokers often refuse automatic creation anyway, so that
// writes to a missing topic would fail with Unknown Topic Or Partition for
// ever. While no broker answers it logs and retries with backoff until ctx
// ends, returning then an error that wraps the last failure; a refusal of
// the cluster is a *TopicError, returned at once.
func (p *Producer) EnsureTopic(ctx context.Context, spec TopicSpec) (TopicInfo, error) {
	if spec.Partitions == 0 || spec.Partitions < BrokerDefault {
		return TopicInfo{}, fmt.Errorf("sim: topic partitions %d: want at least 1, or BrokerDefault", spec.Partitions)
	}
	if spec.ReplicationFactor == 0 || spec.ReplicationFactor < BrokerDefault || spec.ReplicationFactor > 32767 {
		return TopicInfo{}, fmt.Errorf("sim: topic replication factor %d: want 1 to 32767, or BrokerDefault", spec.ReplicationFactor)
	}
	c := &kafka.Client{Addr: p.w.Addr, Transport: p.w.Transport, Timeout: topicRequestTimeout}
	for attempt := 1; ; attempt++ {
		info, err := p.ensureTopic(ctx, c, spec)
		if err == nil {
			return info, nil
		}
		var te *TopicError
		if errors.As(err, &te) {
			return info, err
		}
		if ctx.Err() != nil {
			return info, fmt.Errorf("sim: Kafka at %s unreachable until the run ended: %w", p.w.Addr, err)
		}
		delay := retry.Delay(attempt)
		p.log.Warn("kafka unreachable; retrying", "brokers", p.w.Addr.String(), "topic", p.w.Topic,
			"backoff", delay, "err", err)
		if sleep(ctx, delay) != nil {
			return info, fmt.Errorf("sim: Kafka at %s unreachable until the run ended: %w", p.w.Addr, err)
		}
	}
}

// ensureTopic is one attempt of EnsureTopic.
func (p *Producer) ensureTopic(ctx context.Context, c *kafka.Client, spec TopicSpec) (TopicInfo, error) {
	topic := p.w.Topic
	refused := func(err error) error { return &TopicError{Topic: topic, Spec: spec, Err: err} }
	info, err := describeTopic(ctx, c, topic, false)
	switch {
	case err == nil:
		return info, nil
	case permanent(err):
		return info, refused(err)
	case !errors.Is(err, kafka.UnknownTopicOrPartition):
		return info, err
	}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             topic,
		NumPartitions:     spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor,
	}}})
	if err != nil {
		if permanent(err) {
			return info, refused(err)
		}
		return info, err
	}
	created := true
	switch err := res.Errors[topic]; {
	case err == nil:
	case errors.Is(err, kafka.TopicAlreadyExists):
		created = false // made by someone else meanwhile
	case permanent(err):
		return info, refused(fmt.Errorf("missing, and the cluster refused to create it with %s: %w", spec, err))
	default:
		return info, err
	}
	// Wait for leaders, so that the first writes do not fail while the
	// brokers learn of the topic.
	wait, cancel := context.WithTimeout(ctx, topicReadyWait)
	defer cancel()
	for {
		info, err = describeTopic(wait, c, topic, true)
		if err == nil || sleep(wait, 50*time.Millisecond) != nil {
			info.Created = created
			return info, nil
		}
	}
}

// String writes the spec as a person reads it.
func (s TopicSpec) String() string {
	count := func(n int, what string) string {
		if n == BrokerDefault {
			return what + " of the brokers' default"
		}
		return fmt.Sprintf("%d %s", n, what)
	}
	return count(s.Partitions, "partitions") + ", " + count(s.ReplicationFactor, "replicas")
}

// describeTopic returns the topic's partitions and replication factor, or
// the cluster's error for it (kafka.UnknownTopicOrPartition when it does not
// exist); with leaders, an error too while a partition has no leader.
func describeTopic(ctx context.Context, c *kafka.Client, topic string, leaders bool) (TopicInfo, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return TopicInfo{}, err
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return TopicInfo{}, t.Error
		}
		if len(t.Partitions) == 0 {
			return TopicInfo{}, kafka.UnknownTopicOrPartition
		}
		info := TopicInfo{Partitions: len(t.Partitions), ReplicationFactor: len(t.Partitions[0].Replicas)}
		for _, part := range t.Partitions {
			switch {
			case !leaders:
			case part.Error != nil:
				return info, part.Error
			case part.Leader.Host == "":
				return info, kafka.LeaderNotAvailable
			}
		}
		return info, nil
	}
	return TopicInfo{}, kafka.UnknownTopicOrPartition
}

// permanent reports whether err is a refusal that retrying will not change:
// a Kafka error that is not temporary (not authorized, an invalid
// replication factor, a policy, failed SASL authentication), or a broker
// certificate this client does not trust.
func permanent(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return !kerr.Temporary()
	}
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		record  tls.RecordHeaderError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &record)
}

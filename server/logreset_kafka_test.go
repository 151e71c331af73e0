//go:build kafka

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// admin returns a client of the test broker whose connections are closed
// when the test ends.
func admin(t *testing.T, brokers []string) *kafka.Client {
	t.Helper()
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second, Transport: tr}
}

// firstOffsets returns the first offset each partition of topic holds.
func firstOffsets(ctx context.Context, cl *kafka.Client, topic string, parts int) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, parts)
	for p := range reqs {
		reqs[p] = kafka.FirstOffsetOf(p)
	}
	res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, po.Error
		}
		out[po.Partition] = po.FirstOffset
	}
	return out, nil
}

// TestKafkaCheckpointBehindRetention restarts a node from a checkpoint
// whose offsets the log no longer holds: retention deleted the records
// produced while the node was down (issue 10, item 5). The node must say
// so (a log line with topic, partition and offsets, the lost records
// counted, STATUS recovering with the reason, then live), and rebuild from
// the log's start over the checkpoint's state, without a retry loop.
func TestKafkaCheckpointBehindRetention(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const parts = 2
	topic := kafkatest.CreateTopic(t, brokers, parts)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 37, Records: 6000, Symbols: 60})
	before, deleted, after := log[:2000], log[2000:4000], log[4000:]
	ckpt := filepath.Join(t.TempDir(), "node.ckpt")
	cfg := setup{Node: node.Config{Brokers: brokers, Topic: topic, Checkpoint: ckpt, CheckpointInterval: 100 * time.Millisecond}}

	first := startNode(t, cfg)
	kafkatest.Produce(t, brokers, topic, nil, before)
	waitUntil(t, time.Minute, "the first part read", func() bool { return consumed("http://"+first.Addr()) == int64(len(before)) })
	first.stop()

	// While the node is down: records it never reads, then retention
	// deletes them. A segment rolls only when a record arrives after
	// segment.ms, so the last part is written once the deleted part has
	// aged past retention.ms.
	kafkatest.Produce(t, brokers, topic, nil, deleted)
	cl := admin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cl.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{
			{Name: "retention.ms", Value: "1000", ConfigOperation: kafka.ConfigOperationSet},
			{Name: "segment.ms", Value: "500", ConfigOperation: kafka.ConfigOperationSet},
		},
	}}})
	if err == nil && len(res.Resources) > 0 {
		err = res.Resources[0].Error
	}
	if err != nil {
		t.Fatalf("IncrementalAlterConfigs: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	// Timestamps ahead keep the last part from expiring in turn when its
	// segments roll.
	after = slices.Clone(after)
	for i := range after {
		after[i].Time = time.Now().Add(time.Hour)
	}
	kafkatest.Produce(t, brokers, topic, nil, after)
	ends := map[int]int64{}
	for p, recs := range kafkatest.Split(log[:4000], parts) {
		ends[p] = int64(len(recs))
	}
	waitUntil(t, time.Minute, "retention to delete the records the node did not read", func() bool {
		firsts, err := firstOffsets(ctx, cl, topic, parts)
		if err != nil {
			return false
		}
		for p := range parts {
			if firsts[p] < ends[p] {
				return false
			}
		}
		return true
	})
	// The deleted records are gone for good: set retention back, so that
	// what the node reads now stays.
	if _, err := cl.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{
			{Name: "retention.ms", ConfigOperation: kafka.ConfigOperationDelete},
			{Name: "segment.ms", ConfigOperation: kafka.ConfigOperationDelete},
		},
	}}}); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	second := startNode(t, cfg)
	base := "http://" + second.Addr()
	waitUntil(t, time.Minute, "the rest of the log read", func() bool { return consumed(base) == int64(len(log)) })
	waitUntil(t, 30*time.Second, "ready", func() bool { code, _, _ := readiness(base); return code == 200 })

	want, _ := kafkatest.Replay(append(before[:len(before):len(before)], after...))
	if d := kafkatest.DiffStates(served(t, base), want); d != "" {
		t.Errorf("state after the rebuild: %s", d)
	}
	out := logs.String()
	for _, line := range []string{"deleted from the log before ingest read them", "ingest: feed recovering", "ingest: feed live again"} {
		if !strings.Contains(out, line) {
			t.Errorf("the node did not log %q:\n%s", line, out)
		}
	}
	if !strings.Contains(out, "topic="+topic) || !strings.Contains(out, "log_start=") {
		t.Errorf("the loss is not logged with its topic and offsets:\n%s", out)
	}
	if got, want := second.node.Ingest().Stats().Lost, uint64(len(deleted)); got != want {
		t.Errorf("%d records counted as lost, want %d", got, want)
	}
	if m := scrape(t, base); !strings.Contains(m, fmt.Sprintf("\ntickstream_ingest_records_lost_total %d\n", len(deleted))) {
		t.Errorf("/metrics does not count the %d lost records", len(deleted))
	}
}

// TestKafkaTopicRecreated deletes the topic under a running node and
// creates it again with fewer records than the node had read (issue 10,
// item 5). kafka-go alone retries the old offsets forever (#891); the node
// must notice, tell its clients (recovering, then live), and read the new
// log from its start over the state it holds, so that no client sees a
// seq go backwards.
func TestKafkaTopicRecreated(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	// As many partitions as the broker gives a topic it creates by
	// itself: kafka-go's reader asks for it when it finds it missing.
	const parts = 4
	topic := kafkatest.CreateTopic(t, brokers, parts)
	old := kafkatest.Log(kafkatest.LogConfig{Seed: 38, Records: 8000, Symbols: 40})
	fresh := kafkatest.Log(kafkatest.LogConfig{Seed: 39, Records: 2000, Symbols: 40})
	var logs syncBuffer
	n := startNode(t, setup{Config: Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Node: node.Config{Brokers: brokers, Topic: topic}})
	base := "http://" + n.Addr()
	kafkatest.Produce(t, brokers, topic, nil, old)
	waitUntil(t, time.Minute, "the old log read", func() bool { return consumed(base) == int64(len(old)) })

	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("SYM%03d", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var statuses syncBuffer
	c, err := client.Dial(ctx, "ws://"+n.Addr()+"/ws?symbols="+strings.Join(names, ","), client.Options{
		OnMessage: func(m *codec.Message) {
			if m.Op == codec.OpStatus {
				fmt.Fprintf(&statuses, "%s;", m.State)
			}
		},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cl := admin(t, brokers)
	res, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatal(err)
	}
	// The node's readers may have the broker create it again first.
	waitUntil(t, time.Minute, "the topic created again", func() bool {
		res, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: parts, ReplicationFactor: 1}}})
		if err == nil {
			err = res.Errors[topic]
		}
		return err == nil || errors.Is(err, kafka.TopicAlreadyExists)
	})
	waitUntil(t, time.Minute, "the new topic's leaders", func() bool {
		_, err := kafkatest.EndOffsets(ctx, brokers, topic, parts)
		return err == nil
	})
	kafkatest.Produce(t, brokers, topic, nil, fresh)
	waitUntil(t, time.Minute, "the new log read", func() bool { return consumed(base) == int64(len(fresh)) })
	waitUntil(t, 30*time.Second, "live and ready", func() bool { code, _, _ := readiness(base); return code == 200 })

	// The state is the old one overlaid by the new log, seq included.
	want, _ := kafkatest.Replay(append(old[:len(old):len(old)], fresh...))
	if d := kafkatest.DiffStates(served(t, base), want); d != "" {
		t.Errorf("state after the topic was recreated: %s", d)
	}
	waitUntil(t, 10*time.Second, "the client told the feed is live", func() bool { s, _ := c.Book().FeedStatus(); return s == codec.StatusLive })
	if v := c.Book().Violations(); len(v) > 0 {
		t.Errorf("the client saw %d ordering violations, the first: %v", len(v), v[0])
	}
	if got := statuses.String(); !strings.Contains(got, codec.StatusRecovering+";") || !strings.HasSuffix(got, codec.StatusLive+";") {
		t.Errorf("the client saw STATUS %q, want recovering then live", got)
	}
	if got := n.node.Ingest().Stats().Recreated; got == 0 {
		t.Error("no partition counted as recreated")
	}
	if !strings.Contains(logs.String(), "the topic was deleted and recreated") {
		t.Errorf("the node did not log the recreation:\n%s", logs.String())
	}
	t.Logf("STATUS seen by the client: %s", statuses.String())
}

//go:build kafka

package server

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/ingest"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// TestScaleOut runs two nodes on loopback against one real Kafka topic, one
// started on a log already half written and both tailing the rest, and
// checks that they serve identical state: each node's store equals the
// replay of the log, and both answer the same snapshot to a client.
func TestScaleOut(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	// kafkatest.CreateTopic's client uses kafka-go's default transport,
	// whose idle connections outlive the test unless closed, after the
	// topic's deletion (cleanups run last-registered first).
	t.Cleanup(kafka.DefaultTransport.(*kafka.Transport).CloseIdleConnections)
	topic := kafkatest.CreateTopic(t, brokers, 4)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 17, Records: 20_000, Symbols: 150, JSONEvery: 5, BadEvery: 101})
	want, _ := kafkatest.Replay(log)
	half := len(log) / 2
	kafkatest.Produce(t, brokers, topic, nil, log[:half])

	start := func(id string) *Server {
		return startServer(t, setup{Node: node.Config{Brokers: brokers, Topic: topic, Start: ingest.StartEarliest, Fanout: fanout.Config{ServerID: id}}})
	}
	a, b := start("node-a"), start("node-b")
	kafkatest.Produce(t, brokers, topic, nil, log[half:])

	for _, n := range []*Server{a, b} {
		var diff string
		deadline := time.Now().Add(60 * time.Second)
		for diff = kafkatest.DiffStates(kafkatest.States(n.node.Store()), want); diff != ""; diff = kafkatest.DiffStates(kafkatest.States(n.node.Store()), want) {
			if time.Now().After(deadline) {
				t.Fatalf("node %s did not converge within 60s:\n%s", n.node.Hub().Config().ServerID, diff)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	snapshot := func(s *Server) client.SnapshotResponse {
		resp, err := http.Get("http://" + s.Addr() + "/api/v1/snapshot")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var out client.SnapshotResponse
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	sa, sb := snapshot(a), snapshot(b)
	if len(sa.Snapshots) != len(want) {
		t.Errorf("node-a serves %d symbols, the log has %d", len(sa.Snapshots), len(want))
	}
	if !reflect.DeepEqual(sa, sb) {
		t.Error("the two nodes serve different snapshots")
	}
}

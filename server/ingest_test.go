package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/checkpoint"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/internal/barstest"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// setup is what a test sets of a node, its edge and the demo feed.
type setup struct {
	// Config is the edge's; its Logger is the node's too unless Node has
	// one.
	Config
	// Node is the node's; without Brokers it consumes a demo feed made
	// with Demo and run until the test ends, as serve does.
	Node node.Config
	Demo demo.Config
}

// testNode is a running node and its edge that a test stops and restarts.
type testNode struct {
	*Server
	stop func()
}

// startNode runs a node and its edge until stop is called or the test
// ends.
func startNode(t testing.TB, cfg setup) *testNode {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = cfg.Logger
	}
	if len(cfg.Node.Brokers) == 0 {
		cfg.Demo.Topic = cfg.Node.Topic
		cfg.Node.Brokers = startFeed(t, cfg.Demo).Brokers()
	}
	n, err := node.New(cfg.Node)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(n, cfg.Config)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("server did not stop within 15s")
			}
		})
	}
	t.Cleanup(stop)
	return &testNode{s, stop}
}

// startFeed runs the demo feed until the test ends, after the node that
// consumes it has stopped (cleanups run last-registered first).
func startFeed(t testing.TB, cfg demo.Config) *demo.Feed {
	t.Helper()
	f, err := demo.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan error, 1)
	go func() { fed <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-fed; err != nil {
			t.Errorf("demo feed: %v", err)
		}
		f.Close()
	})
	return f
}

// waitRead waits until the node's ingest has read n records, applied or not.
func (n *testNode) waitRead(t *testing.T, want uint64) {
	t.Helper()
	waitUntil(t, 30*time.Second, "records read", func() bool { return n.read() >= want })
}

func (n *testNode) read() uint64 {
	st := n.node.Ingest().Stats()
	got := st.Records
	for _, k := range st.Rejected {
		got += k
	}
	return got
}

func (n *testNode) check(t *testing.T, log []kafka.Message) {
	t.Helper()
	want, _ := kafkatest.Replay(log)
	if d := kafkatest.DiffStates(kafkatest.States(n.node.Store()), want); d != "" {
		t.Fatal(d)
	}
	if b := n.node.Bars(); b != nil {
		if d := barstest.Replay(b.Intervals(), log).Diff(b, n.node.Store()); d != "" {
			t.Fatalf("bars differ from the reference's of the log:\n%s", d)
		}
	}
}

func testBroker(t *testing.T, partitions int) *embedded.Broker {
	t.Helper()
	b, err := embedded.Start("ticks", partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestWarmRestart stops a node, gracefully or as if killed (from a
// checkpoint taken mid-stream), and restarts it from its checkpoint while
// the log grows: the final state equals the one computed from the whole
// log, seq included, and a graceful restart reads no record twice.
func TestWarmRestart(t *testing.T) {
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 11, Records: 12_000, Symbols: 80, JSONEvery: 4, BadEvery: 97})
	first, second := log[:8000], log[8000:]
	tests := []struct {
		name   string
		killed bool
	}{
		{"graceful", false},
		{"killed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBroker(t, 4)
			file := filepath.Join(t.TempDir(), "node.ckpt")
			cfg := setup{Node: node.Config{Brokers: b.Addrs(), Checkpoint: file, CheckpointInterval: 20 * time.Millisecond}}
			a := startNode(t, cfg)
			crash := filepath.Join(t.TempDir(), "crash.ckpt")
			for i := 0; i < len(first); i += 1000 {
				kafkatest.Produce(t, b.Addrs(), "ticks", nil, first[i:i+1000])
				if i == 4000 {
					// A copy of whatever checkpoint exists mid-stream is what
					// a node killed now would restart from.
					a.waitRead(t, 1000)
					waitUntil(t, 10*time.Second, "a checkpoint", func() bool { return copyFile(file, crash) == nil })
				}
			}
			a.waitRead(t, uint64(len(first)))
			waitUntil(t, 10*time.Second, "the checkpoint metric", func() bool {
				return metric(t, a.Server, "tickstream_checkpoint_last_saved_timestamp_seconds") > 0
			})
			a.stop()
			if tt.killed {
				if err := os.Rename(crash, file); err != nil {
					t.Fatal(err)
				}
			}
			kafkatest.Produce(t, b.Addrs(), "ticks", nil, second)
			restarted := startNode(t, cfg)
			cp, err := checkpoint.ReadFile(file, "ticks")
			if err != nil {
				t.Fatal(err)
			}
			var resumed int64
			for _, off := range cp.Offsets {
				resumed += off
			}
			restarted.waitRead(t, uint64(int64(len(log))-resumed))
			restarted.check(t, log)
			if !tt.killed && resumed != int64(len(first)) {
				t.Fatalf("graceful stop saved offsets summing to %d, want %d", resumed, len(first))
			}
			if got, want := restarted.read(), uint64(int64(len(log))-resumed); got != want {
				t.Fatalf("restarted node read %d records, want %d", got, want)
			}
		})
	}
}

// metric returns the value of an unlabelled metric that s exposes.
func metric(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRefusedCheckpoint starts nodes over checkpoints that must not be
// trusted: each is refused with a message saying why, and the node starts
// cold and computes the state from the whole log.
func TestRefusedCheckpoint(t *testing.T) {
	valid := func(topic string) []byte {
		b, err := (&checkpoint.Checkpoint{Topic: topic, Offsets: map[int]int64{0: 5}}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	corrupt := valid("ticks")
	corrupt[12] ^= 0xff
	tests := []struct {
		name    string
		content []byte
		reason  string
	}{
		{"corrupt", corrupt, "corrupt checkpoint"},
		{"foreign file", []byte("#!/bin/sh\necho hello\n"), "not a tickstream checkpoint"},
		{"other topic", valid("quotes"), "checkpoint of another topic"},
		{"newer version", append([]byte("tickckpt\x00\x09"), make([]byte, 8)...), "unsupported checkpoint version 9"},
	}
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 12, Records: 2000, Symbols: 30})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBroker(t, 2)
			kafkatest.Produce(t, b.Addrs(), "ticks", nil, log)
			file := filepath.Join(t.TempDir(), "node.ckpt")
			if err := os.WriteFile(file, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			n := startNode(t, setup{Config: Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Node: node.Config{Brokers: b.Addrs(), Checkpoint: file}})
			n.waitRead(t, uint64(len(log)))
			n.check(t, log)
			if out := logs.String(); !strings.Contains(out, "checkpoint refused") || !strings.Contains(out, tt.reason) {
				t.Fatalf("log does not say the checkpoint was refused because %q:\n%s", tt.reason, out)
			}
		})
	}
}

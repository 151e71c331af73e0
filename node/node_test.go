package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/fanout"
	"github.com/tickstream/tickstream/internal/barstest"
	"github.com/tickstream/tickstream/internal/kafkatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, kafkatest.LeakIgnores...)
}

var quiet = slog.New(slog.DiscardHandler)

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no brokers", Config{}, "Brokers"},
		{"bad start", Config{Brokers: []string{"127.0.0.1:1"}, Start: "yesterday"}, "Start yesterday: want checkpoint, earliest"},
		{"engine's limits", Config{Brokers: []string{"127.0.0.1:1"}, Fanout: fanout.Config{SoftLimit: 8192, HardLimit: 4096}},
			"Fanout.HardLimit 4096: want at least SoftLimit"},
		{"bars' bound", Config{Brokers: []string{"127.0.0.1:1"}, Bars: bars.Config{MaxBytes: 1}},
			"Bars.MaxBytes 1: want at least 48"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quiet
			if n, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				if n != nil {
					n.Close()
				}
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestPipeline follows a known log from the broker through ingest and the
// store to the bars and the hub: the node's store ends equal to the log's
// replay, its bars equal to the reference's of the log, and the hub heard
// of every change the store made.
func TestPipeline(t *testing.T) {
	b, err := embedded.Start("ticks", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 5, Records: 3000, Symbols: 40, JSONEvery: 3, BadEvery: 50})
	want, _ := kafkatest.Replay(log)
	kafkatest.Produce(t, b.Addrs(), "ticks", nil, log)

	n, err := New(Config{Brokers: b.Addrs(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for kafkatest.DiffStates(kafkatest.States(n.Store()), want) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("the store did not reach the log's state:\n%s", kafkatest.DiffStates(kafkatest.States(n.Store()), want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ref := barstest.Replay(n.Bars().Intervals(), log)
	if ref.Count() == 0 {
		t.Fatal("the log makes no bar: the test compares nothing")
	}
	if diff := ref.Diff(n.Bars(), n.Store()); diff != "" {
		t.Errorf("the node's bars differ from the reference's:\n%s", diff)
	}
	var changes uint64
	for _, st := range want {
		changes += st.Seq
	}
	if got := n.Hub().Stats().Published; got != changes {
		t.Errorf("the hub heard of %d changes, the store made %d", got, changes)
	}
}

// TestBarsOff checks that a node without bars wires the store to the hub.
func TestBarsOff(t *testing.T) {
	n, err := New(Config{Brokers: []string{"127.0.0.1:1"}, BarsOff: true, Bars: bars.Config{MaxBytes: 1}, Logger: quiet})
	if err != nil {
		t.Fatal(err) // the bars' settings do not matter when they are off
	}
	defer n.Close()
	if n.Bars() != nil {
		t.Fatal("bars are off, yet the node has some")
	}
	if err := n.Store().Apply(&codec.Update{Sym: []byte("A"), Mask: 1 << codec.FieldLast}); err != nil {
		t.Fatal(err)
	}
	if got := n.Hub().Stats().Published; got != 1 {
		t.Fatalf("the hub heard of %d changes, want 1", got)
	}
}

// TestRestoreVersion1 starts a node over a checkpoint of version 1, which
// has no bars: the prices come back, the bars start empty, and the log
// says how to rebuild them.
func TestRestoreVersion1(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.ckpt")
	v1, err := os.ReadFile("../checkpoint/testdata/v1.ckpt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	n, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Checkpoint: file, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sym := n.Store().Lookup([]byte("AAPL"))
	if sym == nil || sym.Load().Seq != 42 {
		t.Fatalf("AAPL not restored: %v", sym)
	}
	if got, _ := n.Bars().AppendHistory(nil, sym, 0, 0, 0); len(got) != 0 {
		t.Fatalf("bars %v from a checkpoint without bars", got)
	}
	if !strings.Contains(logs.String(), "checkpoint: it holds no bars") || !strings.Contains(logs.String(), "--start -24h") {
		t.Fatalf("the log does not say the bars start empty:\n%s", logs.String())
	}
}

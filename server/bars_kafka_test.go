//go:build kafka

package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/bars"
	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/barstest"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// diffServedBars compares the bars a node serves over REST, for every
// symbol of the reference at every interval, with the reference's, and
// describes the first few differences ("" when there are none).
func diffServedBars(t *testing.T, base string, ref *barstest.Reference, ivs []bars.Interval) string {
	t.Helper()
	var diffs []string
	names := ref.Symbols()
	slices.Sort(names)
	for _, name := range names {
		for i, iv := range ivs {
			got, seq := restBars(t, base, fmt.Sprintf("/api/v1/bars?symbol=%s&interval=%s", name, iv.Name))
			want := ref.Bars(name, i)
			if !slices.Equal(got, want) {
				diffs = append(diffs, fmt.Sprintf("%s %s: %d bars, want %d; newest %v, want %v", name, iv.Name, len(got), len(want), lastBar(got), lastBar(want)))
			} else if len(want) > 0 && seq != ref.Seq(name) {
				diffs = append(diffs, fmt.Sprintf("%s %s: bars at seq %d, want %d", name, iv.Name, seq, ref.Seq(name)))
			}
		}
		if len(diffs) >= 5 {
			break
		}
	}
	return strings.Join(diffs, "\n")
}

// subscribeBars connects a client to the node at addr and subscribes it
// to names with the whole history of interval iv and its live bars.
func subscribeBars(t *testing.T, addr string, names []string, iv string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/ws", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	opts := codec.DefaultSubOptions()
	opts.Bars, opts.BarSince, opts.HasBarSince = iv, 0, true
	if _, err := c.Subscribe(names, &opts); err != nil {
		t.Fatal(err)
	}
	return c
}

// diffClientBars compares the bars a client's Book holds of interval i
// with the reference's, and reports the client's breaches of the
// contract.
func diffClientBars(c *client.Conn, ref *barstest.Reference, i int) string {
	var diffs []string
	names := ref.Symbols()
	slices.Sort(names)
	for _, name := range names {
		want := ref.Bars(name, i)
		_, seq, got, _ := c.Book().Bars(name)
		// The seq of the last BAR: the last change that moved a bar, at
		// most the symbol's.
		if !slices.Equal(got, want) || seq > ref.Seq(name) {
			diffs = append(diffs, fmt.Sprintf("%s: %d bars at seq %d, want %d at seq %d; newest %v, want %v", name, len(got), seq, len(want), ref.Seq(name), lastBar(got), lastBar(want)))
		}
		if len(diffs) >= 5 {
			break
		}
	}
	if v := c.Book().Violations(); len(v) > 0 {
		diffs = append(diffs, fmt.Sprintf("the client saw %d breaches of the contract, the first: %v", len(v), v[0]))
	}
	return strings.Join(diffs, "\n")
}

// waitBars waits up to 30 s for diff to report no difference, and fails
// with the last one it reported.
func waitBars(t *testing.T, who string, diff func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := diff()
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds other bars than the log's after 30s:\n%s", who, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastBar(bs []bars.Bar) any {
	if len(bs) == 0 {
		return "none"
	}
	return bs[len(bs)-1]
}

// TestKafkaBars produces a known log with event times and checks that the
// bars served over REST equal the reference computed from the produced
// records: on a node killed with SIGKILL mid-stream and restarted from its
// checkpoint, on a second node reading the same Kafka all along, and on
// nodes started cold (--start earliest, --start -24h) once the log is
// complete —
// and that WebSocket clients subscribed with bars, on the second node from
// before the tail of the log and on the restarted node from its restart,
// end with the same bars (their client.Book checks guarantee 5 all along).
func TestKafkaBars(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.CreateTopic(t, brokers, 4)
	log := barstest.Log(barstest.LogConfig{Seed: 41, Records: 30_000, Symbols: 40, Start: barsStart, Step: 200_000})
	ivs, err := bars.ParseIntervals(bars.DefaultIntervals)
	if err != nil {
		t.Fatal(err)
	}
	ref := barstest.Replay(ivs, log)
	dir := t.TempDir()
	logs, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	args := []string{"--brokers", strings.Join(brokers, ","), "--topic", topic,
		"--checkpoint", filepath.Join(dir, "node.ckpt"), "--checkpoint-interval", "200ms"}

	killed, base := startBinary(t, logs, nil, args...)
	other := startNode(t, setup{Node: node.Config{Brokers: brokers, Topic: topic}})
	const head = 10_000
	kafkatest.Produce(t, brokers, topic, nil, log[:head])
	waitUntil(t, time.Minute, "the head of the log read", func() bool { return consumed(base) == head })
	names := ref.Symbols()
	waitUntil(t, time.Minute, "the head of the log read by the second node", func() bool { return consumed("http://"+other.Addr()) == head })
	otherClient := subscribeBars(t, other.Addr(), names, "1m")
	produced := producePaced(brokers, topic, log[head:])
	killedAt := killMidStream(t, killed, base, head+3000, len(log))
	_, base = startBinary(t, logs, nil, args...)
	restartedClient := subscribeBars(t, strings.TrimPrefix(base, "http://"), names, "1s")
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "every record read after the restart", func() bool { return consumed(base) == int64(len(log)) })
	if d := diffServedBars(t, base, ref, ivs); d != "" {
		t.Fatalf("the node restarted after kill -9 serves other bars than the log's:\n%s", d)
	}
	waitBars(t, "the restarted node's client", func() string { return diffClientBars(restartedClient, ref, 0) })
	out, _ := os.ReadFile(logs.Name())
	if !strings.Contains(string(out), "checkpoint: warm start") || strings.Contains(string(out), "symbols_with_bars=0 ") {
		t.Fatalf("the restarted node did not start from a checkpoint with bars:\n%s", out)
	}

	otherBase := "http://" + other.Addr()
	waitUntil(t, time.Minute, "every record read by the second node", func() bool { return consumed(otherBase) == int64(len(log)) })
	if d := diffServedBars(t, otherBase, ref, ivs); d != "" {
		t.Fatalf("the second node serves other bars than the log's:\n%s", d)
	}
	waitBars(t, "the second node's client", func() string { return diffClientBars(otherClient, ref, 1) })

	// Cold starts, as a new node or one whose checkpoint is lost: from the
	// log's start, and from a day back (the log was all produced within
	// the test, so a day back is its start too).
	for _, start := range []string{"earliest", "-24h"} {
		_, coldBase := startBinary(t, logs, nil, "--brokers", strings.Join(brokers, ","), "--topic", topic, "--start", start)
		waitUntil(t, time.Minute, "every record read by the node started with --start "+start, func() bool { return consumed(coldBase) == int64(len(log)) })
		if d := diffServedBars(t, coldBase, ref, ivs); d != "" {
			t.Fatalf("the node started cold with --start %s serves other bars than the log's:\n%s", start, d)
		}
	}
	t.Logf("killed after reading about %d of %d records; %d bars compared on each of four nodes", killedAt, len(log), ref.Count())
}

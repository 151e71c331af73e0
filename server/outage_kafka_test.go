//go:build kafka

package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// outageWatcher is a client that records the STATUS states it receives
// and when the first DELTA after a given instant arrived.
type outageWatcher struct {
	conn *client.Conn

	mu       sync.Mutex
	statuses []string

	after      atomic.Int64 // unix ns: DELTAs from then on count
	firstDelta atomic.Int64 // unix ns of the first DELTA at or after after, or 0
}

func (w *outageWatcher) onMessage(m *codec.Message) {
	switch m.Op {
	case codec.OpStatus:
		w.mu.Lock()
		w.statuses = append(w.statuses, m.State)
		w.mu.Unlock()
	case codec.OpDelta:
		if a := w.after.Load(); a != 0 && w.firstDelta.Load() == 0 {
			if now := time.Now().UnixNano(); now >= a {
				w.firstDelta.Store(now)
			}
		}
	}
}

func (w *outageWatcher) states() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.statuses)
}

// readySample is one answer of /readyz.
type readySample struct {
	at       time.Time
	code     int
	status   string
	lag      int64
	consumed int64
}

// TestKafkaBrokerKilled kills the only broker with SIGKILL for more than
// 30 s while a producer keeps writing and 20 clients are subscribed, then
// starts it again (issue 10, item 1). Records must reach the clients within
// a few seconds of the broker answering again (the queued errors of the
// outage once held them back for minutes); every client must see STATUS
// stale, recovering and live once each, in that order; /readyz must answer
// 503 from the outage until ingest has read everything the log held when
// the broker came back, and the catch-up must be exported as a metric.
func TestKafkaBrokerKilled(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const (
		parts   = 3
		rate    = 500 // records a second
		clients = 20
		symbols = 20
		down    = 33 * time.Second
	)
	topic := kafkatest.CreateTopic(t, brokers, parts)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 36, Records: 25_000, Symbols: symbols})
	var logs syncBuffer
	n := startNode(t, setup{Config: Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Node: node.Config{Brokers: brokers, Topic: topic}})
	defer func() {
		if t.Failed() {
			t.Logf("node log:\n%s", logs.String())
		}
	}()
	base := "http://" + n.Addr()
	stream := kafkatest.StartStream(t, brokers, topic, log, rate)
	waitUntil(t, time.Minute, "the node ready and reading", func() bool {
		code, _, err := readiness(base)
		return err == nil && code == http.StatusOK && consumed(base) >= 1000
	})

	names := make([]string, symbols)
	for i := range names {
		names[i] = fmt.Sprintf("SYM%03d", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	watchers := make([]*outageWatcher, clients)
	for i := range watchers {
		w := &outageWatcher{}
		c, err := client.Dial(ctx, "ws://"+n.Addr()+"/ws?symbols="+strings.Join(names, ","), client.Options{OnMessage: w.onMessage, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		w.conn = c
		watchers[i] = w
	}

	var (
		mu             sync.Mutex
		samples        []readySample
		monitorErrs    int
		lastMonitorErr error
	)
	monitorDone := make(chan struct{})
	stopMonitor := make(chan struct{})
	go func() {
		defer close(monitorDone)
		for {
			select {
			case <-stopMonitor:
				return
			case <-time.After(100 * time.Millisecond):
			}
			code, r, err := readiness(base)
			if err != nil {
				mu.Lock()
				monitorErrs++
				lastMonitorErr = err
				mu.Unlock()
				continue
			}
			s := readySample{at: time.Now(), code: code, status: r.Status}
			for _, p := range r.Partitions {
				s.lag += p.Lag
				s.consumed += p.Offset
			}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stopMonitor:
		default:
			close(stopMonitor)
		}
		<-monitorDone
	}()

	killedAt := time.Now()
	kafkatest.KillBroker(t)
	waitUntil(t, 30*time.Second, "every client told the feed is stale", func() bool {
		for _, w := range watchers {
			if s, _ := w.conn.Book().FeedStatus(); s != codec.StatusStale {
				return false
			}
		}
		return true
	})
	staleAfter := time.Since(killedAt)

	// A probe tells when the broker answers for every partition again, and
	// what the log then holds: ingest must read at least that before the
	// node says it is ready.
	type upState struct {
		at   time.Time
		ends map[int]int64
	}
	upCh := make(chan upState, 1)
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go func() {
		for probeCtx.Err() == nil {
			pctx, pcancel := context.WithTimeout(probeCtx, time.Second)
			ends, err := kafkatest.EndOffsets(pctx, brokers, topic, parts)
			pcancel()
			if err == nil {
				at := time.Now()
				for _, w := range watchers {
					w.after.Store(at.UnixNano())
				}
				upCh <- upState{at, ends}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(time.Until(killedAt.Add(down)))
	kafkatest.StartBroker(t)
	var up upState
	select {
	case up = <-upCh:
	case <-time.After(time.Minute):
		t.Fatal("the broker did not answer ListOffsets within a minute of kafka.sh start")
	}
	var endAtUp int64
	for _, e := range up.ends {
		endAtUp += e
	}

	waitUntil(t, 2*time.Minute, "every client told the feed is live again", func() bool {
		for _, w := range watchers {
			if st := w.states(); len(st) == 0 || st[len(st)-1] != codec.StatusLive {
				return false
			}
		}
		return true
	})
	if err := stream.Wait(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	final, err := kafkatest.EndOffsets(ctx, brokers, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	var endAll int64
	for _, e := range final {
		endAll += e
	}
	// Generous: the bug this test guards against took minutes.
	waitUntil(t, 4*time.Minute, "every record read", func() bool { return consumed(base) == endAll })
	waitUntil(t, time.Minute, "ready", func() bool { code, _, _ := readiness(base); return code == http.StatusOK })
	time.Sleep(500 * time.Millisecond) // a few more samples: no flapping back
	close(stopMonitor)
	<-monitorDone

	// Records flowed again soon after the broker answered.
	var stalls []time.Duration
	for i, w := range watchers {
		first := w.firstDelta.Load()
		if first == 0 {
			t.Fatalf("client %d got no DELTA after the broker came back", i)
		}
		stalls = append(stalls, time.Unix(0, first).Sub(up.at))
	}
	slices.Sort(stalls)
	worst := stalls[len(stalls)-1]
	t.Logf("broker down %v (stale after %v); first DELTA after it answered again: median %v, worst %v over %d clients; %d producer writes failed meanwhile",
		up.at.Sub(killedAt).Round(time.Millisecond), staleAfter.Round(time.Millisecond),
		stalls[len(stalls)/2].Round(time.Millisecond), worst.Round(time.Millisecond), clients, stream.Failures())
	if worst > 10*time.Second {
		t.Errorf("a client waited %v for a DELTA after the broker answered again, want a few seconds", worst)
	}

	// Every client saw one outage and one recovery, without flapping.
	want := []string{codec.StatusStale, codec.StatusRecovering, codec.StatusLive}
	for i, w := range watchers {
		if got := w.states(); !slices.Equal(got, want) {
			t.Errorf("client %d saw STATUS %v, want %v", i, got, want)
		}
		select {
		case <-w.conn.Done():
			t.Errorf("client %d was disconnected: %d %s", i, w.conn.CloseCode(), w.conn.CloseReason())
		default:
		}
	}

	// /readyz: 503 from the outage until ingest had read the log as it was
	// when the broker came back, then 200 for good.
	var during []readySample
	for _, s := range samples {
		if s.at.After(killedAt.Add(staleAfter)) {
			during = append(during, s)
		}
	}
	firstOK := slices.IndexFunc(during, func(s readySample) bool { return s.code == http.StatusOK })
	if firstOK < 0 {
		t.Fatalf("/readyz never answered 200 after the outage (%d samples, the last %+v; %d failed requests, the last: %v)", len(during), during[len(during)-1], monitorErrs, lastMonitorErr)
	}
	if s := during[firstOK]; s.consumed < endAtUp {
		t.Errorf("/readyz answered 200 at %v with %d records read, before the %d the log held when the broker came back (lag reported %d)",
			s.at.Sub(up.at).Round(time.Millisecond), s.consumed, endAtUp, s.lag)
	}
	for _, s := range during[firstOK:] {
		if s.code != http.StatusOK {
			t.Errorf("/readyz flapped back to %d (%s) %v after the broker came back", s.code, s.status, s.at.Sub(up.at).Round(time.Millisecond))
			break
		}
	}
	maxLag := int64(0)
	for _, s := range during[:firstOK] {
		maxLag = max(maxLag, s.lag)
	}
	t.Logf("/readyz: 503 for %v after the broker answered again (largest lag seen while 503: %d records; %d records in the log then)",
		during[firstOK].at.Sub(up.at).Round(time.Millisecond), maxLag, endAtUp)

	// The catch-up is logged and exported.
	var feedLines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="ingest: feed`) || strings.Contains(l, "reads again") || strings.Contains(l, "reposition") || strings.Contains(l, "out of range") {
			feedLines = append(feedLines, l)
		}
	}
	t.Logf("node log, the feed's states:\n%s", strings.Join(feedLines, "\n"))
	if !strings.Contains(logs.String(), "caught up after the outage") {
		t.Error("the node did not log its catch-up after the outage")
	}
	metrics := scrape(t, base)
	for _, name := range []string{"tickstream_feed_outages_total 1", "tickstream_ingest_catchup_seconds "} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("/metrics has no line %q", name)
		}
	}
}

// scrape returns the text of a node's /metrics.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

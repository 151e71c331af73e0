package ingest

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/tickstream/tickstream/embedded"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/snapshot"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, kafkatest.LeakIgnores...)
}

const testTopic = "ticks"

// fixture is a consumer over an in-process broker that applies to a store.
type fixture struct {
	t        testing.TB
	store    *snapshot.Store
	consumer *Consumer
	status   chan FeedState
	stop     func()
}

func startBroker(t testing.TB, partitions int) *embedded.Broker {
	t.Helper()
	b, err := embedded.Start(testTopic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// run starts a consumer of topic with cfg and stops it when the test ends.
func run(t testing.TB, brokers []string, topic string, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t, store: snapshot.New(), status: make(chan FeedState, 16)}
	cfg.Brokers, cfg.Topic = brokers, topic
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.MaxWait = 200 * time.Millisecond
	cfg.OnStatus = func(state FeedState, _ string) { f.status <- state }
	c, err := New(cfg, f.store)
	if err != nil {
		t.Fatal(err)
	}
	f.consumer = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("consumer did not stop within 15s")
			}
		})
	}
	t.Cleanup(f.stop)
	return f
}

func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitRead waits until the consumer has read n records (applied or not).
func (f *fixture) waitRead(n uint64) {
	f.t.Helper()
	waitUntil(f.t, 30*time.Second, "records read", func() bool {
		st := f.consumer.Stats()
		got := st.Records
		for _, k := range st.Rejected {
			got += k
		}
		return got >= n
	})
}

func (f *fixture) check(want []kafka.Message) {
	f.t.Helper()
	exp, rejected := kafkatest.Replay(want)
	if d := kafkatest.DiffStates(kafkatest.States(f.store), exp); d != "" {
		f.t.Fatal(d)
	}
	if got := f.consumer.Stats().Rejected; !maps.Equal(got, rejected) {
		f.t.Fatalf("rejected %v, want %v", got, rejected)
	}
}

func endOffsets(t *testing.T, b *embedded.Broker, partitions int) map[int]int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: 10 * time.Second, Transport: tr}
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := cl.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{testTopic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, po := range res.Topics[testTopic] {
		out[po.Partition] = po.LastOffset
	}
	return out
}

func TestStartPositions(t *testing.T) {
	const parts = 3
	old := kafkatest.Log(kafkatest.LogConfig{Seed: 1, Records: 600, Symbols: 20})
	fresh := kafkatest.Log(kafkatest.LogConfig{Seed: 2, Records: 400, Symbols: 20})
	for i := range old {
		old[i].Time = time.Now().Add(-2 * time.Hour)
	}
	tests := []struct {
		name   string
		start  string
		resume func(ends map[int]int64) map[int]int64
		want   []kafka.Message
	}{
		{"earliest", StartEarliest, nil, append(old[:len(old):len(old)], fresh...)},
		{"latest", StartLatest, nil, fresh},
		{"by time", "-1h", nil, fresh},
		{"resume at the end", StartEarliest, func(ends map[int]int64) map[int]int64 { return ends }, fresh},
		{"resume at zero", StartLatest, func(map[int]int64) map[int]int64 { return map[int]int64{0: 0, 1: 0, 2: 0} }, append(old[:len(old):len(old)], fresh...)},
		{"resume beyond the end falls back", StartEarliest, func(ends map[int]int64) map[int]int64 {
			return map[int]int64{0: ends[0] + 1000, 1: ends[1], 2: ends[2]}
		}, append(kafkatest.Split(old, parts)[0], fresh...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBroker(t, parts)
			kafkatest.Produce(t, b.Addrs(), testTopic, nil, old)
			cfg := Config{Start: tt.start}
			if tt.resume != nil {
				cfg.Resume = tt.resume(endOffsets(t, b, parts))
			}
			f := run(t, b.Addrs(), testTopic, cfg)
			waitUntil(t, 20*time.Second, "caught up", f.consumer.Ready)
			kafkatest.Produce(t, b.Addrs(), testTopic, nil, fresh)
			f.waitRead(uint64(len(tt.want)))
			f.check(tt.want)
		})
	}
}

// TestMalformedRecords feeds a mixed stream of MessagePack, JSON and bad
// records: the bad ones are counted by reason and skipped, and the state is
// that of the good ones.
func TestMalformedRecords(t *testing.T) {
	b := startBroker(t, 4)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 3, Records: 5000, Symbols: 50, JSONEvery: 3, BadEvery: 7})
	f := run(t, b.Addrs(), testTopic, Config{})
	kafkatest.Produce(t, b.Addrs(), testTopic, nil, log)
	f.waitRead(uint64(len(log)))
	f.check(log)
	if len(f.consumer.Stats().Rejected) != 5 {
		t.Fatalf("rejected %v: want every reason of kafkatest.BadRecords", f.consumer.Stats().Rejected)
	}
}

// TestQuiesceIsConsistent takes pictures of the store and the offsets while
// records stream in, and checks each against the log: the state must be
// exactly that of the records before the offsets.
func TestQuiesceIsConsistent(t *testing.T) {
	const parts = 4
	b := startBroker(t, parts)
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 4, Records: 10_000, Symbols: 40})
	split := kafkatest.Split(log, parts)
	f := run(t, b.Addrs(), testTopic, Config{})
	type picture struct {
		offsets map[int]int64
		states  map[string]snapshot.State
	}
	var pics []picture
	done := make(chan error, 1)
	go func() {
		for i := 0; i < len(log); i += 250 {
			if err := kafkatest.ProduceErr(b.Addrs(), testTopic, nil, log[i:i+250]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for stop := false; !stop; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			stop = true
		case <-time.After(20 * time.Millisecond):
		}
		f.consumer.Quiesce(func(offsets map[int]int64) {
			pics = append(pics, picture{offsets, kafkatest.States(f.store)})
		})
	}
	f.waitRead(uint64(len(log)))
	f.consumer.Quiesce(func(offsets map[int]int64) {
		pics = append(pics, picture{offsets, kafkatest.States(f.store)})
	})
	for i, p := range pics {
		var before []kafka.Message
		for part, off := range p.offsets {
			before = append(before, split[part][:off]...)
		}
		exp, _ := kafkatest.Replay(before)
		if d := kafkatest.DiffStates(p.states, exp); d != "" {
			t.Fatalf("picture %d of %d at offsets %v: %s", i, len(pics), p.offsets, d)
		}
	}
	if last := pics[len(pics)-1].offsets; last[0]+last[1]+last[2]+last[3] != int64(len(log)) {
		t.Fatalf("last offsets %v do not cover the %d records", last, len(log))
	}
	t.Logf("%d consistent pictures", len(pics))
}

// TestNewPartitions checks that partitions added to the topic while the
// consumer runs are found and read from their beginning.
func TestNewPartitions(t *testing.T) {
	b := startBroker(t, 2)
	f := run(t, b.Addrs(), testTopic, Config{Start: StartLatest, DiscoverEvery: 100 * time.Millisecond})
	waitUntil(t, 20*time.Second, "caught up", f.consumer.Ready)
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: 10 * time.Second, Transport: tr}
	res, err := cl.CreatePartitions(context.Background(), &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: testTopic, Count: 4}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[testTopic]; err != nil {
		t.Fatal(err)
	}
	// Written before the consumer can have seen the new partitions.
	log := kafkatest.Log(kafkatest.LogConfig{Seed: 5, Records: 2000, Symbols: 30})
	kafkatest.Produce(t, b.Addrs(), testTopic, nil, log)
	waitUntil(t, 20*time.Second, "4 partitions", func() bool { return len(f.consumer.Stats().Partitions) == 4 })
	f.waitRead(uint64(len(log)))
	f.check(log)
}

// TestOutage switches the broker off and on: the feed goes stale, then
// live, and what was produced meanwhile is read once.
func TestOutage(t *testing.T) {
	b := startBroker(t, 2)
	f := run(t, b.Addrs(), testTopic, Config{StaleAfter: 500 * time.Millisecond})
	first := kafkatest.Log(kafkatest.LogConfig{Seed: 6, Records: 1000, Symbols: 10})
	second := kafkatest.Log(kafkatest.LogConfig{Seed: 7, Records: 1000, Symbols: 10})
	kafkatest.Produce(t, b.Addrs(), testTopic, nil, first)
	f.waitRead(uint64(len(first)))
	b.SetDown(true)
	expectStatus(t, f.status, FeedStale)
	if f.consumer.Live() {
		t.Fatal("Live() during the outage")
	}
	b.SetDown(false)
	expectStatus(t, f.status, FeedLive)
	kafkatest.Produce(t, b.Addrs(), testTopic, nil, second)
	f.waitRead(uint64(len(first) + len(second)))
	f.check(append(first, second...))
}

// expectStatus waits for the feed state want. A recovering state on the
// way to live is passed over: whether ingest is behind when the brokers
// come back depends on timing.
func expectStatus(t *testing.T, ch <-chan FeedState, want FeedState) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
			if want != FeedLive || got != FeedRecovering {
				t.Fatalf("feed state %q, want %q", got, want)
			}
		case <-timeout:
			t.Fatalf("no feed state %q within 15s", want)
		}
	}
}

// TestHealth drives the feed's state machine through outages and
// rebuilds, one health check a second, with a partition whose signs of
// life and lag the test sets.
func TestHealth(t *testing.T) {
	type step struct {
		alive   bool      // a fetch or record in the second before the check
		lag     int64     // records behind the end of the log
		rebuild bool      // a rebuild noticed in that second
		want    FeedState // state after the check
	}
	const (
		live = FeedLive
		stl  = FeedStale
		rec  = FeedRecovering
	)
	tests := []struct {
		name    string
		steps   []step
		outages uint64
		catchUp time.Duration // 0: not checked
	}{
		{"steady", []step{{true, 0, false, live}, {true, 40, false, live}, {true, 0, false, live}}, 0, 0},
		{"outage, then a backlog", []step{
			{true, 0, false, live}, {false, 0, false, live}, {false, 0, false, live},
			{false, 0, false, stl}, {false, 0, false, stl}, {false, 0, false, stl},
			{true, 900, false, rec}, {true, 300, false, rec}, {true, 0, false, live}, {true, 20, false, live},
		}, 1, 2 * time.Second},
		{"outage, nothing missed: recovering for one check", []step{
			{false, 0, false, live}, {false, 0, false, live}, {false, 0, false, live}, {false, 0, false, stl},
			{true, 0, false, rec}, {true, 0, false, live},
		}, 1, time.Second},
		{"relapse while recovering", []step{
			{false, 0, false, live}, {false, 0, false, live}, {false, 0, false, live}, {false, 0, false, stl},
			{true, 50, false, rec}, {false, 50, false, rec}, {false, 50, false, rec}, {false, 50, false, stl},
			{true, 0, false, rec}, {true, 0, false, live},
		}, 2, time.Second},
		{"rebuild while live", []step{
			{true, 0, false, live}, {true, 500, true, rec}, {true, 100, false, rec}, {true, 0, false, live},
		}, 0, 0},
		{"rebuild during an outage is told when the brokers answer", []step{
			{false, 0, false, live}, {false, 0, false, live}, {false, 0, false, live}, {false, 0, true, stl},
			{true, 10, false, rec}, {true, 0, false, live},
		}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got, want []FeedState
			var details []string
			c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "ticks", StaleAfter: 3 * time.Second,
				Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
				OnStatus: func(state FeedState, detail string) { got = append(got, state); details = append(details, detail) },
			}, snapshot.New())
			if err != nil {
				t.Fatal(err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "ticks"})
			defer r.Close()
			p := &partition{reader: r}
			now := time.Unix(1_000_000, 0)
			p.alive.Store(now.UnixNano())
			c.parts[0] = p
			state := FeedLive
			for i, s := range tt.steps {
				now = now.Add(time.Second)
				if s.alive {
					p.alive.Store(now.Add(-time.Millisecond).UnixNano())
				}
				p.next.Store(1000)
				p.hwm.Store(1000 + s.lag)
				if s.rebuild {
					c.noteRebuild("partition 0 was recreated")
				}
				c.checkHealth(now)
				if c.State() != s.want {
					t.Fatalf("step %d: state %s, want %s (changes %v)", i, c.State(), s.want, got)
				}
				if s.want != state {
					want = append(want, s.want)
					state = s.want
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("OnStatus %v, want %v", got, want)
			}
			st := c.Stats()
			if st.Outages != tt.outages {
				t.Errorf("Outages %d, want %d", st.Outages, tt.outages)
			}
			if tt.catchUp != 0 && st.LastCatchUp != tt.catchUp {
				t.Errorf("LastCatchUp %v, want %v", st.LastCatchUp, tt.catchUp)
			}
			for i, d := range details {
				if got[i] == FeedRecovering && strings.Contains(tt.name, "rebuild") && !strings.Contains(d, "recreated") {
					t.Errorf("recovering detail %q does not say why", d)
				}
			}
		})
	}
}

func TestParseStart(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"earliest", 0, true},
		{"latest", 0, true},
		{"-1h", -time.Hour, true},
		{"-90s", -90 * time.Second, true},
		{"1h", 0, false},
		{"0s", 0, false},
		{"checkpoint", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseStart(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseStart(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

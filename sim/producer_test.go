package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tickstream/tickstream/codec"
)

const (
	testTopic      = "ticks"
	testPartitions = 4
	testTimeout    = 30 * time.Second
)

// newCluster starts an in-process Kafka broker on loopback with the test
// topic, closed when the test ends.
func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(testPartitions, testTopic), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
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

// newProducer returns a Producer for the cluster, closed when the test
// ends, and the buffer its log goes to.
func newProducer(t *testing.T, c *kfake.Cluster, format codec.Format) (*Producer, *syncBuffer) {
	t.Helper()
	log := new(syncBuffer)
	p, err := NewProducer(ProducerConfig{
		Brokers: c.ListenAddrs(),
		Topic:   testTopic,
		Format:  format,
		Logger:  slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p, log
}

// consume reads every record of the test topic, by partition, with one
// Reader per partition and no consumer group, as the server does.
func consume(t *testing.T, c *kfake.Cluster) [][]kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	addr := c.ListenAddrs()[0]
	out := make([][]kafka.Message, testPartitions)
	for p := range testPartitions {
		conn, err := kafka.DialLeader(ctx, "tcp", addr, testTopic, p)
		if err != nil {
			t.Fatal(err)
		}
		end, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   []string{addr},
			Topic:     testTopic,
			Partition: p,
			MaxWait:   250 * time.Millisecond,
		})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("partition %d: %v", p, err)
			}
			out[p] = append(out[p], m)
			if m.Offset == end-1 {
				break
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// decoded is a record read back from the topic.
type decoded struct {
	partition int
	u         codec.Update
}

// decodeAll decodes the records, checking their format and that key and
// value agree on the symbol, and groups them by symbol in partition order.
func decodeAll(t *testing.T, parts [][]kafka.Message, format codec.Format) (bySym map[string][]decoded, n, size int64) {
	t.Helper()
	bySym = make(map[string][]decoded)
	for p, msgs := range parts {
		for _, m := range msgs {
			if isJSON := len(m.Value) > 0 && m.Value[0] == '{'; isJSON != (format == codec.JSON) {
				t.Fatalf("record %s is not in format %v", m.Value, format)
			}
			var u codec.Update
			if err := codec.DecodeRecord(nil, m.Value, &u); err != nil {
				t.Fatalf("partition %d offset %d: %v", p, m.Offset, err)
			}
			if string(u.Sym) != string(m.Key) {
				t.Fatalf("key %q, sym %q", m.Key, u.Sym)
			}
			u.Sym = bytes.Clone(u.Sym)
			bySym[string(m.Key)] = append(bySym[string(m.Key)], decoded{p, u})
			n++
			size += int64(len(m.Key) + len(m.Value))
		}
	}
	return bySym, n, size
}

func TestProducerRun(t *testing.T) {
	tests := []struct {
		name     string
		format   codec.Format
		symbols  int
		rate     float64
		duration time.Duration
	}{
		{"msgpack", codec.Binary, 50, 1000, time.Second},
		{"json", codec.JSON, 20, 300, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			p, log := newProducer(t, c, tt.format)
			m := NewMarket(Config{Symbols: tt.symbols, Seed: 1})
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			st, err := p.Run(ctx, m, tt.rate, tt.duration)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v, %.0f records/s", st, st.Rate())
			paced := tt.rate * tt.duration.Seconds()
			// Run never exceeds the rate; on a loaded machine it may
			// fall short of it.
			if min, max := int64(tt.symbols)+int64(0.5*paced), int64(tt.symbols)+int64(paced); st.Records < min || st.Records > max {
				t.Errorf("%d records, want %d to %d", st.Records, min, max)
			}
			if st.Errors != 0 {
				t.Errorf("%d write errors; log:\n%s", st.Errors, log)
			}
			if st.Elapsed < tt.duration || st.Elapsed > tt.duration+5*time.Second {
				t.Errorf("elapsed %v, want about %v", st.Elapsed, tt.duration)
			}

			bySym, n, size := decodeAll(t, consume(t, c), tt.format)
			if n != st.Records || size != st.Bytes {
				t.Errorf("topic holds %d records of %d bytes; Stats say %d of %d", n, size, st.Records, st.Bytes)
			}
			for _, sym := range m.Symbols() {
				recs := bySym[sym]
				if len(recs) == 0 {
					t.Errorf("%s: no record", sym)
					continue
				}
				if recs[0].u.Mask != codec.AllFields {
					t.Errorf("%s: first record has fields %b, want all (the initial state)", sym, recs[0].u.Mask)
				}
				b := &book{}
				for i, r := range recs {
					if r.partition != recs[0].partition {
						t.Fatalf("%s: records on partitions %d and %d", sym, recs[0].partition, r.partition)
					}
					if i > 0 && r.u.Values[codec.FieldTS] < b.v[codec.FieldTS] {
						t.Fatalf("%s: record %d has ts %v after %v", sym, i, r.u.Values[codec.FieldTS], b.v[codec.FieldTS])
					}
					if r.u.Mask.Has(codec.FieldVolume) && r.u.Values[codec.FieldVolume] < b.v[codec.FieldVolume] {
						t.Fatalf("%s: volume went down to %v", sym, r.u.Values[codec.FieldVolume])
					}
					for f := range codec.NumFields {
						if r.u.Mask.Has(f) {
							b.v[f] = r.u.Values[f]
						}
					}
				}
				if msg := checkBook(b); msg != "" {
					t.Errorf("%s: the state rebuilt from the topic is wrong: %s: %v", sym, msg, b.v)
				}
				delete(bySym, sym)
			}
			for sym := range bySym {
				t.Errorf("record of unknown symbol %q", sym)
			}
		})
	}
}

// TestProducerHistory writes a past and reads it back: every update of the
// market once, stamped evenly over the span, oldest first, then Run goes on
// from the state the history left.
func TestProducerHistory(t *testing.T) {
	c := newCluster(t)
	p, _ := newProducer(t, c, codec.Binary)
	m := NewMarket(Config{Symbols: 20, Seed: 3})
	to := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	from := to.Add(-time.Hour)
	const n = 3000
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	st, err := p.History(ctx, m, from, to, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v, %.0f records/s", st, st.Rate())
	if st.Records != n || st.Errors != 0 {
		t.Fatalf("%+v: want %d records, no error", st, n)
	}
	bySym, total, _ := decodeAll(t, consume(t, c), codec.Binary)
	if total != n {
		t.Fatalf("topic holds %d records, want %d", total, n)
	}
	var first, last float64 = math.Inf(1), math.Inf(-1)
	trades := 0
	for sym, recs := range bySym {
		prev := 0.0
		for i, r := range recs {
			ts := r.u.Values[codec.FieldTS]
			if !r.u.Mask.Has(codec.FieldTS) || ts < float64(from.UnixMicro()) || ts >= float64(to.UnixMicro()) {
				t.Fatalf("%s: record %d has ts %v, want one in [%d, %d)", sym, i, ts, from.UnixMicro(), to.UnixMicro())
			}
			if ts < prev {
				t.Fatalf("%s: record %d has ts %v after %v", sym, i, ts, prev)
			}
			prev = ts
			first, last = min(first, ts), max(last, ts)
			if r.u.Mask.Has(codec.FieldLast) {
				trades++
			}
		}
	}
	// Evenly spread: the first at from, the last one step before to.
	if step := float64(time.Hour.Microseconds()) / n; first != float64(from.UnixMicro()) || last < float64(to.UnixMicro())-2*step {
		t.Errorf("ts from %v to %v, want from %d to about %v", first, last, from.UnixMicro(), float64(to.UnixMicro())-step)
	}
	if trades < n/10 || len(bySym) < 10 {
		t.Errorf("%d trades of %d symbols: want the market's mix (a fifth trades, the popular symbols most)", trades, len(bySym))
	}

	if _, err := p.History(ctx, m, to, to, 1); err == nil {
		t.Error("History over an empty span: no error")
	}
}

func TestProducerRunUntilCanceled(t *testing.T) {
	c := newCluster(t)
	p, _ := newProducer(t, c, codec.Binary)
	// A second, not less: on a loaded machine the 10 initial records alone
	// have taken longer than 300ms to be acknowledged.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	st, err := p.Run(ctx, NewMarket(Config{Symbols: 10}), 200, 0)
	if err != nil {
		t.Fatalf("Run ended by its context: %v, want no error", err)
	}
	// Run's clock starts after the context's: Elapsed may be a little
	// under a second. That Run ended because the context did is what counts.
	if ctx.Err() == nil {
		t.Errorf("%+v: Run returned before its context ended", st)
	}
	if st.Records < 10 || st.Elapsed > 5*time.Second {
		t.Errorf("%+v: want the 10 initial records and more, over about a second", st)
	}
}

func TestProducerRunInvalid(t *testing.T) {
	p, err := NewProducer(ProducerConfig{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m := NewMarket(Config{Symbols: 1})
	tests := []struct {
		name     string
		rate     float64
		duration time.Duration
		err      string
	}{
		{"zero rate", 0, time.Second, "rate 0"},
		{"negative rate", -5, time.Second, "rate -5"},
		{"NaN rate", math.NaN(), time.Second, "rate NaN"},
		{"infinite rate", math.Inf(1), time.Second, "rate +Inf"},
		{"negative duration", 10, -time.Second, "negative duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := p.Run(t.Context(), m, tt.rate, tt.duration); err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

func TestProducerClosed(t *testing.T) {
	c := newCluster(t)
	p, err := NewProducer(ProducerConfig{Brokers: c.ListenAddrs(), Topic: testTopic})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, err := p.Run(ctx, NewMarket(Config{Symbols: 1}), 10, time.Second); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Run on a closed Producer: %v, want an error saying it is closed", err)
	}
}

func TestNewProducer(t *testing.T) {
	tests := []struct {
		name string
		cfg  ProducerConfig
		err  string // "" for success
	}{
		{"defaults", ProducerConfig{Brokers: []string{"127.0.0.1:9092"}}, ""},
		{"everything", ProducerConfig{
			Brokers: []string{"a:1", "[::1]:2"}, Topic: "prices", Format: codec.JSON,
			RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{},
		}, ""},
		{"no broker", ProducerConfig{}, "no Kafka broker"},
		{"no port", ProducerConfig{Brokers: []string{"localhost"}}, `broker address "localhost"`},
		{"bad acks", ProducerConfig{Brokers: []string{"a:1"}, RequiredAcks: 2}, "RequiredAcks 2"},
		{"bad format", ProducerConfig{Brokers: []string{"a:1"}, Format: 9}, "unknown record format"},
		{"negative batch timeout", ProducerConfig{Brokers: []string{"a:1"}, BatchTimeout: -1}, "negative BatchTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewProducer(tt.cfg)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.w.RequiredAcks == kafka.RequireNone || p.w.Topic == "" || p.w.BatchTimeout <= 0 {
					t.Errorf("writer acks %v, topic %q, batch timeout %v", p.w.RequiredAcks, p.w.Topic, p.w.BatchTimeout)
				}
				p.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

// jsonl returns n JSONL lines for symbols S0..S4 in turn, with ts one step
// apart from base.
func jsonl(n int, base int64, step time.Duration) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"sym":"S%d","ts":%d,"bid":%d.25,"bidSize":%d}`+"\n", i%5, base+int64(i)*step.Microseconds(), 100+i, 100*(i+1))
	}
	return b.String()
}

func TestProducerReplay(t *testing.T) {
	const base = 1_750_000_000_000_000
	tests := []struct {
		name    string
		input   string
		opts    ReplayOptions
		want    []string // describe(0, u) of every record, in input order
		skipped int64
		stderr  string // prefix of what Stderr receives
		err     string // prefix of Replay's error
	}{
		{
			name:  "jsonl as fast as possible",
			input: jsonl(12, base, time.Hour),
			want: func() []string {
				var out []string
				for i := range 12 {
					out = append(out, fmt.Sprintf("0 S%d ts=%d bid=%d.25 bidSize=%d", i%5, base+int64(i)*time.Hour.Microseconds(), 100+i, 100*(i+1)))
				}
				return out
			}(),
		},
		{
			name:  "csv in JSON records",
			input: "sym,ts,last,volume\nAAPL,1,187.23,100\nMSFT,,480.5,\nAAPL,3,,300\n",
			opts:  ReplayOptions{Format: FormatCSV},
			want:  []string{"0 AAPL ts=1 last=187.23 volume=100", "0 MSFT last=480.5", "0 AAPL ts=3 volume=300"},
		},
		{
			name:    "bad lines skipped",
			input:   `{"sym":"A","bid":1}` + "\n" + `{"bid":2}` + "\n" + `{"sym":"A","bid":3}` + "\n",
			opts:    ReplayOptions{SkipBad: true},
			want:    []string{"0 A bid=1", "0 A bid=3"},
			skipped: 1,
			stderr:  "skipped line 2: record has no symbol\n",
		},
		{
			name:  "bad line stops",
			input: "sym,bid\nA,1\nB,2\nA,x\nA,4\n",
			want:  []string{"0 A bid=1", "0 B bid=2"},
			err:   "line 4: field of the wrong type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			format := codec.Binary
			if strings.Contains(tt.name, "JSON") {
				format = codec.JSON
			}
			p, _ := newProducer(t, c, format)
			var stderr bytes.Buffer
			tt.opts.Stderr = &stderr
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			st, err := p.Replay(ctx, strings.NewReader(tt.input), tt.opts)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			if st.Records != int64(len(tt.want)) || st.Skipped != tt.skipped || st.Errors != 0 {
				t.Errorf("%+v, want %d records and %d skipped", st, len(tt.want), tt.skipped)
			}
			if !strings.HasPrefix(stderr.String(), tt.stderr) || (tt.stderr == "") != (stderr.Len() == 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
			bySym, _, _ := decodeAll(t, consume(t, c), format)
			// The input order, seen through each symbol's partition.
			seen := make(map[string]int)
			for i, w := range tt.want {
				sym := strings.Fields(w)[1]
				recs := bySym[sym]
				if seen[sym] >= len(recs) {
					t.Fatalf("record %d (%s) is missing", i, w)
				}
				if got := describe(0, &recs[seen[sym]].u); got != w {
					t.Errorf("record %d is %q, want %q", i, got, w)
				}
				seen[sym]++
			}
			for sym, recs := range bySym {
				if len(recs) != seen[sym] {
					t.Errorf("%s: %d records, want %d", sym, len(recs), seen[sym])
				}
			}
		})
	}
}

func TestProducerReplaySpeed(t *testing.T) {
	c := newCluster(t)
	p, _ := newProducer(t, c, codec.Binary)
	// Five records 100ms apart by ts: 400ms of market time.
	input := jsonl(5, 1_750_000_000_000_000, 100*time.Millisecond)
	tests := []struct {
		speed   float64
		atLeast time.Duration
	}{
		{2, 190 * time.Millisecond},
		{1, 390 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("speed ", tt.speed), func(t *testing.T) {
			st, err := p.Replay(t.Context(), strings.NewReader(input), ReplayOptions{Speed: tt.speed})
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != 5 || st.Elapsed < tt.atLeast || st.Elapsed > tt.atLeast+5*time.Second {
				t.Errorf("%+v, want 5 records in about %v", st, tt.atLeast)
			}
		})
	}
}

func TestProducerReplayInterrupted(t *testing.T) {
	c := newCluster(t)
	p, _ := newProducer(t, c, codec.Binary)
	// The second record is due an hour after the first.
	input := jsonl(3, 1_750_000_000_000_000, time.Hour)
	// A second, not less: on a loaded machine the 10 initial records alone
	// have taken longer than 300ms to be acknowledged.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	st, err := p.Replay(ctx, strings.NewReader(input), ReplayOptions{Speed: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's", err)
	}
	if st.Records != 1 {
		t.Errorf("%d records, want the one due before the interruption", st.Records)
	}
}

// TestProducerRetries fails every produce request for a while by closing
// the connection, longer than kafka-go retries on its own: the Producer must
// log, retry and deliver every record once, in order.
func TestProducerRetries(t *testing.T) {
	c := newCluster(t)
	healed := time.Now().Add(time.Second)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if time.Now().After(healed) {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		return nil, errors.New("injected failure"), true
	})
	p, log := newProducer(t, c, codec.Binary)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	st, err := p.Replay(ctx, strings.NewReader(jsonl(10, 1, time.Second)), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 10 || st.Errors == 0 {
		t.Errorf("%+v, want 10 records and some errors", st)
	}
	if !strings.Contains(log.String(), "kafka write failed; retrying") {
		t.Errorf("log %q has no retry warning", log)
	}
	bySym, n, _ := decodeAll(t, consume(t, c), codec.Binary)
	if n != 10 {
		t.Errorf("topic holds %d records, want 10", n)
	}
	for sym, recs := range bySym {
		for i := 1; i < len(recs); i++ {
			if recs[i].u.Values[codec.FieldTS] <= recs[i-1].u.Values[codec.FieldTS] {
				t.Errorf("%s: records out of order or repeated", sym)
			}
		}
	}
}

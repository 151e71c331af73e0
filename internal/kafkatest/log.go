package kafkatest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/snapshot"
)

// LogConfig describes a known log of price updates.
type LogConfig struct {
	Seed    uint64
	Records int
	Symbols int
	// Format of the record values; JSONEvery > 0 makes every JSONEvery-th
	// record JSON whatever Format says, for a mixed stream.
	Format    codec.Format
	JSONEvery int
	// BadEvery > 0 makes every BadEvery-th record malformed or of a wrong
	// type, cycling through the reasons in BadRecords.
	BadEvery int
}

// BadRecords are records ingest must count and skip, by the reason it
// counts them under.
var BadRecords = []struct {
	Reason     string
	Key, Value []byte
}{
	{"malformed", []byte("AAPL"), []byte("not a record")},
	{"malformed", []byte("AAPL"), []byte(`{"bid": 1.5`)},
	{"wrong_type", []byte("AAPL"), []byte(`{"bid": "1.5"}`)},
	{"wrong_type", []byte("AAPL"), []byte{0x81, 0xa3, 'a', 's', 'k', 0xc3}}, // {"ask": true}
	{"bad_value", []byte("AAPL"), []byte(`{"ts": -5}`)},
	{"no_symbol", nil, []byte(`{"bid": 2}`)},
	{"bad_symbol", []byte("BAD SYMBOL"), []byte(`{"bid": 2}`)},
	{"malformed", []byte("AAPL"), nil},
}

// Log returns a deterministic log of cfg.Records keyed records: updates of
// cfg.Symbols symbols carrying a timestamp and a random subset of fields
// drawn from few values, so that some updates change nothing.
func Log(cfg LogConfig) []kafka.Message {
	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	msgs := make([]kafka.Message, cfg.Records)
	ts := int64(1_764_000_000_000_000)
	var u codec.Update
	nbad := 0
	for i := range msgs {
		if cfg.BadEvery > 0 && i%cfg.BadEvery == cfg.BadEvery-1 {
			b := BadRecords[nbad%len(BadRecords)]
			nbad++
			msgs[i] = kafka.Message{Key: b.Key, Value: b.Value}
			continue
		}
		u.Reset()
		u.Sym = fmt.Appendf(nil, "SYM%03d", r.IntN(cfg.Symbols))
		if r.IntN(4) > 0 {
			ts += int64(r.IntN(1000))
			u.Set(codec.FieldTS, float64(ts))
		} else {
			// Equal timestamps too: an update whose fields are all
			// unchanged must not move seq.
			u.Set(codec.FieldTS, float64(ts))
		}
		for f := 1; f < codec.NumFields; f++ {
			if r.IntN(3) == 0 {
				u.Set(f, 100+float64(r.IntN(8))*0.25)
			}
		}
		var v []byte
		if cfg.Format == codec.JSON || (cfg.JSONEvery > 0 && i%cfg.JSONEvery == 0) {
			v = codec.AppendRecordJSON(nil, &u, false)
		} else {
			v = codec.AppendRecord(nil, &u, false)
		}
		msgs[i] = kafka.Message{Key: slices.Clone(u.Sym), Value: v}
	}
	return msgs
}

// Replay applies msgs in order to a fresh store, skipping what ingest
// skips, and returns every symbol's state and the skipped records by
// reason. It is the state a node must serve once it has read msgs.
func Replay(msgs []kafka.Message) (map[string]snapshot.State, map[string]uint64) {
	st := snapshot.New()
	rejected := map[string]uint64{}
	var u codec.Update
	for _, m := range msgs {
		if err := codec.DecodeRecord(m.Key, m.Value, &u); err != nil {
			rejected[codec.RecordReason(err)]++
			continue
		}
		st.Apply(&u)
	}
	return States(st), rejected
}

// States returns the state of every symbol of st that has data.
func States(st *snapshot.Store) map[string]snapshot.State {
	out := map[string]snapshot.State{}
	st.Range(func(sym *snapshot.Symbol) bool {
		if s := sym.Load(); s.Seq > 0 {
			out[sym.Name] = *s
		}
		return true
	})
	return out
}

// DiffStates describes how got differs from want (at most a few lines),
// or returns "" when they are equal, seq included.
func DiffStates(got, want map[string]snapshot.State) string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing, want seq %d", name, w.Seq))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s: got seq %d mask %x %v, want seq %d mask %x %v", name, g.Seq, g.Mask, g.Values, w.Seq, w.Mask, w.Values))
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected, seq %d", name, g.Seq))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	sort.Strings(diffs)
	more := ""
	if len(diffs) > 5 {
		more = fmt.Sprintf("\n... and %d more", len(diffs)-5)
		diffs = diffs[:5]
	}
	return fmt.Sprintf("%d of %d symbols differ:\n%s%s", len(diffs), len(want), strings.Join(diffs, "\n"), more)
}

// Produce writes msgs to topic in order, keyed by symbol with the Hash
// balancer (so each symbol's records stay in order on one partition), and
// waits until every partition leader has them. tr may be nil: Produce then
// uses a transport of its own and closes its connections before returning.
func Produce(t testing.TB, brokers []string, topic string, tr *kafka.Transport, msgs []kafka.Message) {
	t.Helper()
	if err := ProduceErr(brokers, topic, tr, msgs); err != nil {
		t.Fatal(err)
	}
}

// ProduceErr is Produce for goroutines other than the test's: it returns
// the error instead of failing the test.
func ProduceErr(brokers []string, topic string, tr *kafka.Transport, msgs []kafka.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if tr == nil {
		tr = &kafka.Transport{}
		defer tr.CloseIdleConnections()
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    5000,
		BatchBytes:   8 << 20,
		Transport:    tr,
	}
	defer w.Close()
	// A copy: the writer sets the partition and offset of what it writes.
	out := make([]kafka.Message, len(msgs))
	copy(out, msgs)
	const chunk = 10_000
	for i := 0; i < len(out); i += chunk {
		if err := w.WriteMessages(ctx, out[i:min(i+chunk, len(out))]...); err != nil {
			return fmt.Errorf("kafkatest: produce %d records to %s (Kafka %s): %w", len(out), topic, versionOrUnknown(), err)
		}
	}
	return nil
}

// Split returns the records each partition of a topic with n partitions
// receives from Produce, in offset order: the Hash balancer places a keyed
// record by its key alone. Records without a key are spread round-robin
// by the writer, so msgs must all have keys.
func Split(msgs []kafka.Message, n int) [][]kafka.Message {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	var h kafka.Hash
	out := make([][]kafka.Message, n)
	for _, m := range msgs {
		p := h.Balance(m, parts...)
		out[p] = append(out[p], m)
	}
	return out
}

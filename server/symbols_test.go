package server

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/client"
	"github.com/tickstream/tickstream/codec"
	"github.com/tickstream/tickstream/demo"
	"github.com/tickstream/tickstream/internal/kafkatest"
	"github.com/tickstream/tickstream/node"
)

// TestSubscriptionsDoNotFillTheFeed is issue 10 over the wire: a client's
// SUB of made-up names takes no room from the feed, whose new symbols get
// in (and reach the client that was waiting for one, under the sid of its
// ACK); the REST API lists the feed's symbols only; and when the feed
// itself reaches --max-symbols, each record it drops is counted, logged
// with its partition and offset, and exported.
func TestSubscriptionsDoNotFillTheFeed(t *testing.T) {
	logs := &syncBuffer{}
	s := startServer(t, setup{Config: Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}, Node: node.Config{MaxSymbols: 12}, Demo: demo.Config{Symbols: 10, Rate: 1000, Duration: 500 * time.Millisecond, Partitions: 1}})
	waitUntil(t, 20*time.Second, "the simulator's 10 symbols", func() bool { return s.node.Store().Len() == 10 })

	madeUp := []string{"ZZLATE"}
	for i := range 14 {
		madeUp = append(madeUp, fmt.Sprintf("ZZFAKE%d", i))
	}
	hog := dialWire(t, s.Addr(), "", codec.Binary)
	hog.send(codec.Binary.AppendSub(nil, 1, madeUp, nil))
	ack, _ := hog.waitMsg("the ACK", 0, func(m *codec.Message) bool { return m.Op == codec.OpAck && m.ID == 1 })
	if len(ack.Acks) != len(madeUp) {
		t.Errorf("SUB of %d made-up names: %d acknowledged", len(madeUp), len(ack.Acks))
	}
	hog.mu.Lock()
	for _, m := range hog.msgs {
		if m.Op == codec.OpError {
			t.Errorf("ERROR %d %q, %d symbols", m.Code, m.Text, len(m.Syms))
		}
	}
	hog.mu.Unlock()
	if n := s.node.Store().Len(); n != 10 {
		t.Errorf("subscriptions grew the feed's table to %d symbols", n)
	}
	var syms client.SymbolsResponse
	getJSON(t, "http://"+s.Addr()+"/api/v1/symbols?prefix=ZZ", &syms)
	var snap client.SnapshotResponse
	getJSON(t, "http://"+s.Addr()+"/api/v1/snapshot", &snap)
	if syms.Total != 0 || len(snap.Snapshots) != 10 {
		t.Errorf("REST lists names without data: symbols %v, snapshot of %d symbols", syms.Symbols, len(snap.Snapshots))
	}

	// The feed's new symbols get in up to --max-symbols; past it a record
	// is dropped, counted, logged and exported.
	sid := ack.Acks[slices.IndexFunc(ack.Acks, func(a codec.SymbolID) bool { return a.Sym == "ZZLATE" })].SID
	kafkatest.Produce(t, s.node.Config().Brokers, "ticks", nil, []kafka.Message{
		{Key: []byte("ZZLATE"), Value: []byte(`{"bid":7.5,"ts":1}`)},
		{Key: []byte("ZZNEW"), Value: []byte(`{"bid":1,"ts":1}`)},
		{Key: []byte("ZZOVER"), Value: []byte(`{"bid":1,"ts":1}`)},
	})
	delta, _ := hog.waitMsg("ZZLATE's DELTA", 0, func(m *codec.Message) bool { return m.Op == codec.OpDelta })
	if delta.SID != sid || delta.Seq != 1 || delta.Values[codec.FieldBid] != 7.5 {
		t.Errorf("DELTA sid %d seq %d bid %v, want sid %d seq 1 bid 7.5", delta.SID, delta.Seq, delta.Values[codec.FieldBid], sid)
	}
	waitUntil(t, 20*time.Second, "the record past --max-symbols counted", func() bool {
		return s.node.Ingest().Stats().Rejected["symbol_table_full"] == 1
	})
	if s.node.Store().Lookup([]byte("ZZNEW")) == nil || s.node.Store().Lookup([]byte("ZZOVER")) != nil || s.node.Store().Len() != 12 {
		t.Errorf("feed's table: %d symbols, ZZNEW %v, ZZOVER %v", s.node.Store().Len(),
			s.node.Store().Lookup([]byte("ZZNEW")) != nil, s.node.Store().Lookup([]byte("ZZOVER")) != nil)
	}
	if v := metric(t, s, `tickstream_ingest_rejected_total{reason="symbol_table_full"}`); v != 1 {
		t.Errorf("tickstream_ingest_rejected_total{reason=\"symbol_table_full\"} %v, want 1", v)
	}
	if v := metric(t, s, "tickstream_reserved_symbols"); v != float64(len(madeUp)-1) {
		t.Errorf("tickstream_reserved_symbols %v, want %d", v, len(madeUp)-1)
	}
	logged := false
	for _, line := range strings.Split(logs.String(), "\n") {
		logged = logged || strings.Contains(line, "record skipped") && strings.Contains(line, "topic=ticks") &&
			strings.Contains(line, "partition=0") && strings.Contains(line, "offset=") && strings.Contains(line, "reason=symbol_table_full")
	}
	if !logged {
		t.Errorf("no log line for the dropped record:\n%s", logs.String())
	}
}
